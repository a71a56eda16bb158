package translate

import (
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

func TestTranslateRejectsBadIR(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *ir.Proxy)
		want   string
	}{
		{"route to a missing cluster", func(p *ir.Proxy) {
			p.Outbounds[0].Routes[0].Clusters[0].Name = "nope"
		}, `outbounds[0].routes[0].clusters[0].name: cluster "nope" is not defined`},
		{"mTLS without SAN", func(p *ir.Proxy) {
			p.MTLS = ir.NewMTLS(ir.MTLSStrict)
		}, `clusters[0].expectedSAN: must be set when mTLS is on`},
		{"two listeners on one address", func(p *ir.Proxy) {
			p.Outbounds[0].Address, p.Outbounds[0].Port = p.Inbounds[0].Address, p.Inbounds[0].Port
		}, `address 10.0.0.1:8080 is used by another inbound or outbound`},
		{"transparent proxying for proxyless", func(p *ir.Proxy) {
			p.Flavour = ir.FlavourProxyless
			p.TransparentProxy = ir.TransparentProxy{RedirectPortInbound: 15006, RedirectPortOutbound: 15001}
		}, `transparentProxy: is not supported by proxyless gRPC`},
		{"locality twice at one priority", func(p *ir.Proxy) {
			p.Clusters[0].Localities = append(p.Clusters[0].Localities, ir.Locality{Endpoints: []ir.Endpoint{{Address: "10.9.9.9", Port: 1}}})
		}, `appears twice at priority 0`},
		{"priority gap", func(p *ir.Proxy) {
			p.Clusters[0].Localities[0].Priority = 1
		}, `priorities must run from 0 without gaps; 0 is missing`},
		{"authorization is not silently ignored", func(p *ir.Proxy) {
			p.Inbounds[0].Authorization = &ir.Authorization{Allow: []ir.Principal{{Any: true}}}
		}, `inbounds[0].authorization: traffic permissions are not translated yet`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadIR(t, "testdata/http-plain.ir.yaml")
			tt.change(p)
			_, err := Translate(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.Contains(t, err.Error(), "proxy default/web-1")
		})
	}
}

// PGV does not look inside Any: a listener whose HTTP connection manager is
// invalid passes the listener's own ValidateAll. Validate must catch it.
func TestValidateDescendsIntoAny(t *testing.T) {
	bad, err := anypb.New(&hcmv3.HttpConnectionManager{}) // no stat_prefix, no route specifier
	require.NoError(t, err)
	l := &listenerv3.Listener{
		Name:        "backend",
		ApiListener: &listenerv3.ApiListener{ApiListener: bad},
	}
	require.NoError(t, l.ValidateAll(), "the listener alone looks valid")

	err = Validate(&Resources{Listeners: []*listenerv3.Listener{l}})
	require.Error(t, err)
	require.Contains(t, err.Error(), `listener "backend"`)
	require.Contains(t, err.Error(), "HttpConnectionManager")
	require.Contains(t, err.Error(), "StatPrefix")
}

func TestCheckConsistencyFindsDanglingReferences(t *testing.T) {
	envoy, err := Translate(loadIR(t, "testdata/transparent.ir.yaml"))
	require.NoError(t, err)
	require.NoError(t, CheckConsistency(envoy))

	envoy.Routes = drop(envoy.Routes, "outbound:240.0.0.1:80")
	envoy.Endpoints = envoy.Endpoints[1:] // backend's
	envoy.Clusters = drop(envoy.Clusters, "db")
	envoy.Secrets = drop(envoy.Secrets, "atoll-ca")
	err = CheckConsistency(envoy)
	require.Error(t, err)
	for _, want := range []string{
		`listener "outbound:redirect" refers to route configuration "outbound:240.0.0.1:80", which is missing`,
		`cluster "backend" is an EDS cluster without a load assignment "backend"`,
		`listener "outbound:redirect" refers to cluster "db", which is missing`,
		`refers to secret "atoll-ca", which is missing`,
	} {
		require.Contains(t, err.Error(), want)
	}

	// Routes of an api_listener are followed too (Snapshot.Consistent
	// misses them).
	proxyless, err := Translate(loadIR(t, "testdata/proxyless.ir.yaml"))
	require.NoError(t, err)
	proxyless.Routes = drop(proxyless.Routes, "backend")
	err = CheckConsistency(proxyless)
	require.ErrorContains(t, err, `listener "backend" refers to route configuration "backend", which is missing`)
}

func drop[T interface{ GetName() string }](in []T, name string) []T {
	var out []T
	for _, m := range in {
		if m.GetName() != name {
			out = append(out, m)
		}
	}
	return out
}

func TestByTypeHasEveryType(t *testing.T) {
	r, err := Translate(loadIR(t, "testdata/http-strict.ir.yaml"))
	require.NoError(t, err)
	byType := r.ByType()
	require.Len(t, byType, 5)
	require.Len(t, byType[resource.ListenerType], 2)
	require.Len(t, byType[resource.RouteType], 1)
	require.Len(t, byType[resource.ClusterType], 2)
	require.Len(t, byType[resource.EndpointType], 1)
	require.Len(t, byType[resource.SecretType], 2)
}

// TestProxylessFollowsGRPCRules checks, one by one, the rules gRPC-Go
// enforces or silently depends on (shared/notes/proxyless-grpc.md).
func TestProxylessFollowsGRPCRules(t *testing.T) {
	r, err := Translate(loadIR(t, "testdata/proxyless.ir.yaml"))
	require.NoError(t, err)

	names := map[string]*listenerv3.Listener{}
	for _, l := range r.Listeners {
		names[l.GetName()] = l
	}
	// Clients: api_listeners named after the dialled target.
	require.NotNil(t, names["backend"].GetApiListener())
	require.NotNil(t, names["audit.default.svc"].GetApiListener())
	client := unpack[*hcmv3.HttpConnectionManager](t, names["backend"].GetApiListener().GetApiListener())
	require.Equal(t, routerFilter, client.GetHttpFilters()[len(client.GetHttpFilters())-1].GetName(), "the router filter is required and last")

	// Server: the template name with the exact address, non-forwarding route,
	// mTLS with a CA provider and no SAN matchers.
	server := names["grpc/server?xds.resource.listening_address=0.0.0.0:8080"]
	require.NotNil(t, server)
	require.Equal(t, "0.0.0.0", server.GetAddress().GetSocketAddress().GetAddress())
	require.Empty(t, server.GetListenerFilters())
	chain := server.GetFilterChains()[0]
	shcm := unpack[*hcmv3.HttpConnectionManager](t, chain.GetFilters()[0].GetTypedConfig())
	require.NotNil(t, shcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0].GetNonForwardingAction())
	dtls := unpack[*tlsv3.DownstreamTlsContext](t, chain.GetTransportSocket().GetTypedConfig())
	require.True(t, dtls.GetRequireClientCertificate().GetValue())
	require.Equal(t, ir.MeshCAName, dtls.GetCommonTlsContext().GetValidationContext().GetCaCertificateProviderInstance().GetInstanceName())
	require.Empty(t, dtls.GetCommonTlsContext().GetValidationContext().GetMatchSubjectAltNames()) //nolint:staticcheck // Checking it is absent.
	require.Empty(t, dtls.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames())

	// Routes: deadline in max_stream_duration, never RouteAction.timeout.
	var backend *routev3.RouteConfiguration
	for _, rc := range r.Routes {
		if rc.GetName() == "backend" {
			backend = rc
		}
	}
	action := backend.GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
	require.Nil(t, action.GetTimeout())
	require.Equal(t, 2*time.Second, action.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration())

	// Clusters: only the referenced ones; client TLS with the deprecated SAN
	// form gRPC-Go reads, through certificate providers.
	var clusters []string
	for _, c := range r.Clusters {
		clusters = append(clusters, c.GetName())
		utls := unpack[*tlsv3.UpstreamTlsContext](t, c.GetTransportSocket().GetTypedConfig())
		vc := utls.GetCommonTlsContext().GetValidationContext()
		require.Len(t, vc.GetMatchSubjectAltNames(), 1)                                                     //nolint:staticcheck // The form gRPC-Go 1.85 reads.
		require.True(t, strings.HasPrefix(vc.GetMatchSubjectAltNames()[0].GetExact(), "spiffe://default/")) //nolint:staticcheck // Idem.
		require.Equal(t, ir.IdentityCertName, utls.GetCommonTlsContext().GetTlsCertificateProviderInstance().GetInstanceName())
		require.Empty(t, utls.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs())
	}
	require.Equal(t, []string{"audit", "backend-v1", "backend-v2"}, clusters)

	// Endpoints: every locality has an ID and a weight, every endpoint a weight.
	for _, cla := range r.Endpoints {
		for _, l := range cla.GetEndpoints() {
			require.NotNil(t, l.GetLocality())
			require.Positive(t, l.GetLoadBalancingWeight().GetValue())
			for _, e := range l.GetLbEndpoints() {
				require.Positive(t, e.GetLoadBalancingWeight().GetValue())
			}
		}
	}
	require.Empty(t, r.Secrets, "proxyless workloads read certificates from files")
}

func unpack[T proto.Message](t *testing.T, a *anypb.Any) T {
	t.Helper()
	m, err := a.UnmarshalNew()
	require.NoError(t, err)
	out, ok := m.(T)
	require.True(t, ok, "got %T", m)
	return out
}

// TestTranslateDoesNotModifyInput keeps Translate pure.
func TestTranslateDoesNotModifyInput(t *testing.T) {
	p := loadIR(t, "testdata/transparent.ir.yaml")
	before, err := ir.EncodeYAML(p)
	require.NoError(t, err)
	_, err = Translate(p)
	require.NoError(t, err)
	after, err := ir.EncodeYAML(p)
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))
}
