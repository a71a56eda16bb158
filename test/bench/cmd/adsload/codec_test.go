package main

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestFieldNumbersMatchTheProtos(t *testing.T) {
	num := func(m proto.Message, field string) protoreflect.FieldNumber {
		f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(field))
		require.NotNil(t, f, "%T has no field %s", m, field)
		return f.Number()
	}
	for _, c := range []struct {
		msg   proto.Message
		field string
		want  int
	}{
		{&discoveryv3.DiscoveryResponse{}, "version_info", fieldSotwVersion},
		{&discoveryv3.DiscoveryResponse{}, "resources", fieldSotwResources},
		{&discoveryv3.DiscoveryResponse{}, "type_url", fieldSotwTypeURL},
		{&discoveryv3.DiscoveryResponse{}, "nonce", fieldSotwNonce},
		{&discoveryv3.DeltaDiscoveryResponse{}, "system_version_info", fieldDeltaVersion},
		{&discoveryv3.DeltaDiscoveryResponse{}, "resources", fieldDeltaResources},
		{&discoveryv3.DeltaDiscoveryResponse{}, "type_url", fieldDeltaTypeURL},
		{&discoveryv3.DeltaDiscoveryResponse{}, "nonce", fieldDeltaNonce},
		{&discoveryv3.DeltaDiscoveryResponse{}, "removed_resources", fieldDeltaRemoved},
		{&discoveryv3.Resource{}, "version", fieldResourceVersion},
		{&discoveryv3.Resource{}, "resource", fieldResourceBody},
		{&discoveryv3.Resource{}, "name", fieldResourceName},
		{&anypb.Any{}, "type_url", fieldAnyTypeURL},
		{&anypb.Any{}, "value", fieldAnyValue},
		{&clusterv3.Cluster{}, "name", fieldName},
		{&listenerv3.Listener{}, "name", fieldName},
		{&routev3.RouteConfiguration{}, "name", fieldName},
		{&clusterv3.Cluster{}, "type", fieldClusterType},
		{&clusterv3.Cluster{}, "eds_cluster_config", fieldClusterEDSConfig},
		{&clusterv3.Cluster_EdsClusterConfig{}, "service_name", fieldEDSServiceName},
		{&listenerv3.Listener{}, "filter_chains", fieldListenerChains},
		{&listenerv3.Listener{}, "api_listener", fieldListenerAPIListener},
		{&listenerv3.Listener{}, "default_filter_chain", fieldListenerDefaultChain},
		{&listenerv3.FilterChain{}, "filters", fieldChainFilters},
		{&listenerv3.Filter{}, "typed_config", fieldFilterTypedConfig},
		{&listenerv3.ApiListener{}, "api_listener", fieldAPIListener},
		{&hcmv3.HttpConnectionManager{}, "rds", fieldHCMRds},
		{&hcmv3.Rds{}, "route_config_name", fieldRdsRouteConfigName},
	} {
		require.EqualValues(t, c.want, num(c.msg, c.field), "%T.%s", c.msg, c.field)
	}
	require.EqualValues(t, clusterTypeEDS, clusterv3.Cluster_EDS)
	require.Equal(t, hcmType, "type.googleapis.com/"+string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName()))
}

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	require.NoError(t, err)
	return a
}

func marshal(t *testing.T, m proto.Message) mem.BufferSlice {
	t.Helper()
	out, err := wireCodec{}.Marshal(m)
	require.NoError(t, err)
	return out
}

func edsCluster(name, service string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: service, EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		ConnectTimeout: durationpb.New(timeout * time.Second),
	}
}

func hcmChain(t *testing.T, route string) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{
		TypedConfig: mustAny(t, &hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: route}}}),
	}}}}
}

func TestSotWResponsesAreReadWithoutUnmarshalling(t *testing.T) {
	clusters := &discoveryv3.DiscoveryResponse{
		VersionInfo: "v1", TypeUrl: typeCDS.typeURL(), Nonce: "n1",
		Resources: []*anypb.Any{
			mustAny(t, edsCluster("web", "", 5)),
			mustAny(t, edsCluster("api", "api-eds", 5)),
			mustAny(t, &clusterv3.Cluster{Name: "static", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}}),
		},
	}
	opts := decodeOptions{refs: true}
	opts.watched[typeCDS] = map[string]bool{"web": true}
	r := &sotwResponse{opts: opts}
	require.NoError(t, wireCodec{}.Unmarshal(marshal(t, clusters), r))
	require.Equal(t, "v1", r.version)
	require.Equal(t, "n1", r.nonce)
	require.Equal(t, typeCDS, typeOfURL(r.typeURL))
	require.Equal(t, 3, r.count)
	require.Equal(t, []string{"web", "api-eds"}, r.refs, "EDS clusters name their load assignments; static ones do not")
	require.Len(t, r.watched, 1)
	before := r.watched[0].hash

	clusters.Resources[0] = mustAny(t, edsCluster("web", "", 7))
	require.NoError(t, wireCodec{}.Unmarshal(marshal(t, clusters), r))
	require.NotEqual(t, before, r.watched[0].hash, "a changed resource hashes differently")

	listeners := &discoveryv3.DiscoveryResponse{TypeUrl: typeLDS.typeURL(), Resources: []*anypb.Any{
		mustAny(t, &listenerv3.Listener{
			Name:               "outbound:redirect",
			FilterChains:       []*listenerv3.FilterChain{hcmChain(t, "route-a"), hcmChain(t, "route-b"), {Filters: []*listenerv3.Filter{{Name: "tcp", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, &tcpv3.TcpProxy{StatPrefix: "x"})}}}}},
			DefaultFilterChain: hcmChain(t, "route-default"),
		}),
		mustAny(t, &listenerv3.Listener{Name: "api", ApiListener: &listenerv3.ApiListener{ApiListener: mustAny(t, &hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "route-api"}}})}}),
	}}
	require.NoError(t, wireCodec{}.Unmarshal(marshal(t, listeners), r))
	require.ElementsMatch(t, []string{"route-a", "route-b", "route-default", "route-api"}, r.refs)
}

func TestDeltaResponsesAreReadWithoutUnmarshalling(t *testing.T) {
	resp := &discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: "s1", TypeUrl: typeCDS.typeURL(), Nonce: "n2",
		Resources: []*discoveryv3.Resource{
			{Name: "web", Version: "h1", Resource: mustAny(t, edsCluster("web", "", 5))},
			{Name: "api", Version: "h2", Resource: mustAny(t, edsCluster("api", "", 5))},
		},
		RemovedResources: []string{"old"},
	}
	var opts decodeOptions
	opts.watched[typeCDS] = map[string]bool{"api": true}
	opts.watched[typeEDS] = map[string]bool{"web": true}
	r := &deltaResponse{opts: opts}
	require.NoError(t, wireCodec{}.Unmarshal(marshal(t, resp), r))
	require.Equal(t, "n2", r.nonce)
	require.Equal(t, typeCDS, typeOfURL(r.typeURL))
	require.Equal(t, 2, r.count)
	require.Equal(t, 1, r.removed)
	require.Len(t, r.watched, 1)
	require.Equal(t, "api", r.watched[0].name)
}

func TestBackoffIsFullJitterUpToTheCap(t *testing.T) {
	c := config{backoffBase: 500 * time.Millisecond, backoffMax: 30 * time.Second}
	for n := 1; n < 12; n++ {
		for range 50 {
			d := c.backoff(n)
			require.Positive(t, d)
			require.LessOrEqual(t, d, min(c.backoffBase<<(n-1), c.backoffMax))
		}
	}
}
