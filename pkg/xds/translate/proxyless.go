package translate

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// proxylessClient renders a proxyless gRPC client's view of an outbound: an
// api_listener named after the target the application dials
// (xds:///backend asks for listener "backend"), whose HTTP connection
// manager takes its routes over RDS under the same name.
func (t *translator) proxylessClient(r *Resources, used map[string]bool, o *ir.Outbound) {
	for i := range o.Routes {
		for _, c := range o.Routes[i].Clusters {
			used[c.Name] = true
		}
	}
	name := o.ListenerName()
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix(name),
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    t.ads,
			RouteConfigName: name,
		}},
		HttpFilters: []*hcmv3.HttpFilter{t.router},
	}
	r.Listeners = append(r.Listeners, &listenerv3.Listener{
		Name:        name,
		ApiListener: &listenerv3.ApiListener{ApiListener: t.pack(name+" http connection manager", hcm)},
	})
	r.Routes = append(r.Routes, t.outboundRouteConfig(name, o, true))
}

// proxylessServer renders the listener a gRPC xDS server asks for: named by
// the server_listener_resource_name_template with the exact listening
// address, with an inline route that gRPC requires to carry
// non_forwarding_action. With mTLS the chain requires client certificates
// signed by the CA provider; gRPC cannot tell plaintext from TLS on one port,
// so PERMISSIVE is served as mTLS-only (mesh clients always use mTLS).
func (t *translator) proxylessServer(r *Resources, in *ir.Inbound) {
	name := ProxylessServerListenerName(in.Address, in.Port)
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix(InboundListenerName(in.Address, in.Port)),
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: InboundListenerName(in.Address, in.Port),
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    in.Service,
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_NonForwardingAction{NonForwardingAction: &routev3.NonForwardingAction{}},
				}},
			}},
		}},
		HttpFilters: []*hcmv3.HttpFilter{t.router},
	}
	chain := &listenerv3.FilterChain{
		Name:    InboundListenerName(in.Address, in.Port),
		Filters: []*listenerv3.Filter{t.hcmNetworkFilter(name, hcm)},
	}
	if t.p.MTLS.Enabled() {
		chain.TransportSocket = t.transportSocket(name+" downstream TLS", t.proxylessDownstreamTLS())
	}
	r.Listeners = append(r.Listeners, &listenerv3.Listener{
		Name:         name,
		Address:      socketAddress(in.Address, in.Port),
		FilterChains: []*listenerv3.FilterChain{chain},
	})
}
