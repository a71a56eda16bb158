package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// envoyOutboundChain renders the filter chain of an Envoy outbound named
// name: an HTTP connection manager with the outbound's routes over RDS, or a
// tcp_proxy. It records the clusters the outbound uses.
func (t *translator) envoyOutboundChain(r *Resources, used map[string]bool, name string, o *ir.Outbound) *listenerv3.FilterChain {
	for i := range o.Routes {
		for _, c := range o.Routes[i].Clusters {
			used[c.Name] = true
		}
	}
	chain := &listenerv3.FilterChain{Name: name}
	if o.Protocol.IsHTTP() {
		r.Routes = append(r.Routes, t.outboundRouteConfig(name, o, false))
		chain.Filters = []*listenerv3.Filter{t.hcmNetworkFilter(name, t.outboundHCM(name, o))}
	} else {
		chain.Filters = []*listenerv3.Filter{t.tcpProxy(name, o.Routes[0].Clusters, o.Timeouts)}
	}
	return chain
}

// envoyOutboundListener renders an outbound with a listener of its own,
// bound to Address:Port.
func (t *translator) envoyOutboundListener(r *Resources, used map[string]bool, o *ir.Outbound) {
	name := OutboundListenerName(o.Address, o.Port)
	r.Listeners = append(r.Listeners, &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(o.Address, o.Port),
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains:     []*listenerv3.FilterChain{t.envoyOutboundChain(r, used, name, o)},
	})
}

// transparentChain renders an outbound reached by iptables redirection: a
// filter chain of the outbound redirect listener, chosen by the original
// destination (the service VIP and port).
func (t *translator) transparentChain(r *Resources, used map[string]bool, o *ir.Outbound) *listenerv3.FilterChain {
	chain := t.envoyOutboundChain(r, used, OutboundListenerName(o.Address, o.Port), o)
	chain.FilterChainMatch = &listenerv3.FilterChainMatch{
		PrefixRanges:    []*corev3.CidrRange{{AddressPrefix: o.Address, PrefixLen: wrapperspb.UInt32(prefixLen(o.Address))}},
		DestinationPort: wrapperspb.UInt32(o.Port),
	}
	return chain
}

// outboundRedirect renders the listener receiving iptables-redirected
// outbound traffic: one filter chain per service VIP and port, and for any
// other destination a default chain that passes the connection through
// unchanged (mesh passthrough on) or drops it.
func (t *translator) outboundRedirect(r *Resources, chains []*listenerv3.FilterChain) {
	fallback := BlackholeCluster
	if t.p.TransparentProxy.Passthrough {
		fallback = OutboundPassthroughCluster
		r.Clusters = append(r.Clusters, originalDstCluster(OutboundPassthroughCluster, ""))
	} else {
		r.Clusters = append(r.Clusters, blackholeCluster())
	}
	def := &listenerv3.FilterChain{
		Name:    fallback,
		Filters: []*listenerv3.Filter{t.tcpProxyTo(fallback, fallback, ir.DefaultTimeouts())},
	}
	l := &listenerv3.Listener{
		Name:             OutboundRedirectListener,
		Address:          socketAddress("0.0.0.0", t.p.TransparentProxy.RedirectPortOutbound),
		ListenerFilters:  []*listenerv3.ListenerFilter{t.originalDst()},
		TrafficDirection: corev3.TrafficDirection_OUTBOUND,
		FilterChains:     chains,
	}
	if len(chains) == 0 {
		l.FilterChains = []*listenerv3.FilterChain{def}
	} else {
		l.DefaultFilterChain = def
	}
	r.Listeners = append(r.Listeners, l)
}
