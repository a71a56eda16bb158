package translate

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// edsCluster renders a mesh service cluster whose endpoints come over EDS
// under the cluster's own name.
func (t *translator) edsCluster(c *ir.Cluster, proxyless bool) *clusterv3.Cluster {
	cl := &clusterv3.Cluster{
		Name:                 c.Name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: t.ads, ServiceName: c.Name},
		ConnectTimeout:       connectTimeout(c.ConnectTimeout),
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
	}
	if t.p.MTLS.Enabled() {
		if proxyless {
			cl.TransportSocket = t.transportSocket("cluster "+c.Name+" upstream TLS", t.proxylessUpstreamTLS(c))
		} else {
			cl.TransportSocket = t.transportSocket("cluster "+c.Name+" upstream TLS", t.envoyUpstreamTLS(c))
		}
	}
	// gRPC ignores upstream protocol options: it always speaks HTTP/2.
	if !proxyless && c.Protocol.IsHTTP() {
		cl.TypedExtensionProtocolOptions = t.httpProtocolOptions(c.Protocol, c.IdleTimeout)
	}
	return cl
}

// httpProtocolOptions selects the upstream HTTP version and the idle timeout
// of upstream connections.
// The result is shared by every cluster with the same options.
func (t *translator) httpProtocolOptions(p ir.Protocol, idle time.Duration) map[string]*anypb.Any {
	key := httpOptionsKey{http2: p.IsHTTP2(), idle: idle}
	if opts, ok := t.httpOptions[key]; ok {
		return opts
	}
	opts := &httpv3.HttpProtocolOptions{
		CommonHttpProtocolOptions: &corev3.HttpProtocolOptions{IdleTimeout: duration(idle)},
	}
	explicit := &httpv3.HttpProtocolOptions_ExplicitHttpConfig{}
	if p.IsHTTP2() {
		explicit.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}
	} else {
		explicit.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}
	}
	opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: explicit}
	out := map[string]*anypb.Any{httpOptionsExtension: t.pack("upstream http protocol options", opts)}
	t.httpOptions[key] = out
	return out
}

// localCluster forwards an inbound's traffic to the application.
func (t *translator) localCluster(name string, in *ir.Inbound, address string, port uint32) *clusterv3.Cluster {
	cl := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: connectTimeout(in.Timeouts.ConnectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(address, port)}},
			}}}},
		},
	}
	if isIP(address) {
		cl.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		cl.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		cl.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if in.Protocol.IsHTTP() {
		cl.TypedExtensionProtocolOptions = t.httpProtocolOptions(in.Protocol, in.Timeouts.IdleTimeout)
	}
	return cl
}

// originalDstCluster forwards connections to their original destination.
// With a source address, connections leave from it (so iptables does not
// redirect them again).
func originalDstCluster(name, source string) *clusterv3.Cluster {
	cl := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       connectTimeout(0),
	}
	if source != "" {
		cl.UpstreamBindConfig = &corev3.BindConfig{SourceAddress: &corev3.SocketAddress{
			Address:       source,
			PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
		}}
	}
	return cl
}

// blackholeCluster has no endpoints, so connections sent to it fail.
func blackholeCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 BlackholeCluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       connectTimeout(0),
		LoadAssignment:       &endpointv3.ClusterLoadAssignment{ClusterName: BlackholeCluster},
	}
}
