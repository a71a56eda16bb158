package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// tcpProxy returns a tcp_proxy network filter sending connections to the
// clusters, split by weight.
func (t *translator) tcpProxy(name string, clusters []ir.WeightedCluster, to ir.Timeouts) *listenerv3.Filter {
	tp := &tcpproxyv3.TcpProxy{
		StatPrefix:                      statPrefix(name),
		IdleTimeout:                     duration(to.IdleTimeout),
		MaxDownstreamConnectionDuration: optDuration(to.MaxConnectionDuration),
	}
	if cs := weighted(clusters); len(cs) == 1 {
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: cs[0].Name}
	} else {
		wcs := make([]*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight, len(cs))
		for i, c := range cs {
			wcs[i] = &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: c.Name, Weight: c.Weight}
		}
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{Clusters: wcs}}
	}
	return &listenerv3.Filter{
		Name:       tcpProxyFilter,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.pack(name+" tcp proxy", tp)},
	}
}

// tcpProxyTo sends every connection to one cluster.
func (t *translator) tcpProxyTo(name, cluster string, to ir.Timeouts) *listenerv3.Filter {
	return t.tcpProxy(name, []ir.WeightedCluster{{Name: cluster, Weight: 1}}, to)
}
