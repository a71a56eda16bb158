package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	originaldstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// defaultServiceAddress is where the application listens when the inbound
// does not say.
const defaultServiceAddress = "127.0.0.1"

// envoyInbound renders an Envoy inbound: a listener on Address:Port that
// terminates mTLS as the mesh's mode says, and a local cluster to the
// application. With transparent proxying the listener does not bind: the
// inbound redirect listener hands it the connections whose original
// destination is its address.
func (t *translator) envoyInbound(r *Resources, localSeen map[string]bool, in *ir.Inbound) {
	name := InboundListenerName(in.Address, in.Port)
	address, port := in.ServiceAddress, in.ServicePort
	if address == "" {
		address = defaultServiceAddress
	}
	if port == 0 {
		port = in.Port
	}
	local := LocalClusterName(address, port)
	if !localSeen[local] {
		localSeen[local] = true
		r.Clusters = append(r.Clusters, t.localCluster(local, in, address, port))
	}
	filters := func(tls bool) []*listenerv3.Filter {
		if in.Protocol.IsHTTP() {
			return []*listenerv3.Filter{t.hcmNetworkFilter(name, t.inboundHCM(name, in, local, tls))}
		}
		return []*listenerv3.Filter{t.tcpProxyTo(name, local, in.Timeouts)}
	}
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(in.Address, in.Port),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
	}
	if t.p.TransparentProxy.Enabled() {
		l.BindToPort = wrapperspb.Bool(false)
	}
	switch t.p.MTLS.Mode {
	case ir.MTLSStrict:
		l.FilterChains = []*listenerv3.FilterChain{{
			Name:            name,
			Filters:         filters(true),
			TransportSocket: t.transportSocket(name+" downstream TLS", t.envoyDownstreamTLS(in.Protocol)),
		}}
	case ir.MTLSPermissive:
		// The TLS inspector tells mTLS from plaintext; each gets its chain.
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       tlsInspectorFilter,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: t.pack("tls inspector", &tlsinspectorv3.TlsInspector{})},
		}}
		l.FilterChains = []*listenerv3.FilterChain{{
			Name:             name + ":mtls",
			FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "tls"},
			Filters:          filters(true),
			TransportSocket:  t.transportSocket(name+" downstream TLS", t.envoyDownstreamTLS(in.Protocol)),
		}, {
			Name:             name + ":plaintext",
			FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"},
			Filters:          filters(false),
		}}
	default:
		l.FilterChains = []*listenerv3.FilterChain{{Name: name, Filters: filters(false)}}
	}
	r.Listeners = append(r.Listeners, l)
}

// originalDst restores a redirected connection's original destination.
func (t *translator) originalDst() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{
		Name:       originalDstFilter,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: t.pack("original destination filter", &originaldstv3.OriginalDst{})},
	}
}

// inboundRedirect renders the listener receiving iptables-redirected inbound
// traffic. It hands each connection to the inbound listener of its original
// destination (use_original_dst); connections to ports that are no inbound
// pass through to the application unchanged, from 127.0.0.6 so iptables does
// not redirect them again.
func (t *translator) inboundRedirect(r *Resources) {
	r.Listeners = append(r.Listeners, &listenerv3.Listener{
		Name:             InboundRedirectListener,
		Address:          socketAddress("0.0.0.0", t.p.TransparentProxy.RedirectPortInbound),
		UseOriginalDst:   wrapperspb.Bool(true),
		ListenerFilters:  []*listenerv3.ListenerFilter{t.originalDst()},
		TrafficDirection: corev3.TrafficDirection_INBOUND,
		FilterChains: []*listenerv3.FilterChain{{
			Name:    InboundPassthroughCluster,
			Filters: []*listenerv3.Filter{t.tcpProxyTo(InboundPassthroughCluster, InboundPassthroughCluster, ir.DefaultTimeouts())},
		}},
	})
	r.Clusters = append(r.Clusters, originalDstCluster(InboundPassthroughCluster, InboundPassthroughSourceAddress))
}
