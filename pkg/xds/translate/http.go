package translate

import (
	"maps"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// hcmNetworkFilter wraps an HTTP connection manager as a network filter.
func (t *translator) hcmNetworkFilter(owner string, hcm *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{
		Name:       hcmFilter,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: t.pack(owner+" http connection manager", hcm)},
	}
}

// connectionOptions returns the HCM's downstream connection limits.
func connectionOptions(to ir.Timeouts) *corev3.HttpProtocolOptions {
	return &corev3.HttpProtocolOptions{
		IdleTimeout:           duration(to.IdleTimeout),
		MaxConnectionDuration: optDuration(to.MaxConnectionDuration),
		MaxStreamDuration:     optDuration(to.MaxStreamDuration),
	}
}

// inboundHCM serves an HTTP inbound: every request goes to the local
// cluster. With mTLS the caller's SPIFFE id is passed to the application in
// x-forwarded-client-cert; otherwise that header is stripped.
func (t *translator) inboundHCM(name string, in *ir.Inbound, local string, tls bool) *hcmv3.HttpConnectionManager {
	to := in.Timeouts
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix(name),
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: name,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    in.Service,
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: local},
						Timeout:          duration(to.RequestTimeout),
					}},
				}},
			}},
		}},
		HttpFilters:               []*hcmv3.HttpFilter{t.router},
		StreamIdleTimeout:         duration(to.StreamIdleTimeout),
		RequestHeadersTimeout:     optDuration(to.RequestHeadersTimeout),
		CommonHttpProtocolOptions: connectionOptions(to),
		ForwardClientCertDetails:  hcmv3.HttpConnectionManager_SANITIZE,
	}
	if tls {
		hcm.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
		hcm.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{Uri: true}
	}
	return hcm
}

// outboundHCM serves an HTTP outbound of an Envoy proxy; its routes come
// over RDS under the listener's name.
func (t *translator) outboundHCM(name string, o *ir.Outbound) *hcmv3.HttpConnectionManager {
	to := o.Timeouts
	return &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix(name),
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    t.ads,
			RouteConfigName: name,
		}},
		HttpFilters:               []*hcmv3.HttpFilter{t.router},
		StreamIdleTimeout:         duration(to.StreamIdleTimeout),
		RequestHeadersTimeout:     optDuration(to.RequestHeadersTimeout),
		CommonHttpProtocolOptions: connectionOptions(to),
	}
}

// outboundRouteConfig renders an outbound's routes under name. Envoy
// enforces RequestTimeout as the route timeout; proxyless gRPC ignores that
// field and enforces max_stream_duration, which therefore carries the
// stream deadline (see ir.Timeouts.StreamDeadline).
func (t *translator) outboundRouteConfig(name string, o *ir.Outbound, proxyless bool) *routev3.RouteConfiguration {
	routes := make([]*routev3.Route, 0, len(o.Routes))
	for i := range o.Routes {
		routes = append(routes, t.route(o, &o.Routes[i], proxyless))
	}
	return &routev3.RouteConfiguration{
		Name: name,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    o.Service,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}
}

func (t *translator) route(o *ir.Outbound, r *ir.Route, proxyless bool) *routev3.Route {
	to := o.Timeouts
	if r.RequestTimeout != nil {
		to.RequestTimeout = *r.RequestTimeout
	}
	action := &routev3.RouteAction{RetryPolicy: retryPolicy(r.Retry)}
	if cs := weighted(r.Clusters); len(cs) == 1 {
		action.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: cs[0].Name}
	} else {
		wcs := make([]*routev3.WeightedCluster_ClusterWeight, len(cs))
		for i, c := range cs {
			wcs[i] = &routev3.WeightedCluster_ClusterWeight{Name: c.Name, Weight: wrapperspb.UInt32(c.Weight)}
		}
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: wcs}}
	}
	if proxyless {
		if d := to.StreamDeadline(); d > 0 {
			action.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: duration(d)}
		}
	} else {
		action.Timeout = duration(to.RequestTimeout)
		if d := to.MaxStreamDuration; d > 0 {
			action.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: duration(d)}
		}
	}
	return &routev3.Route{
		Name:   r.Name,
		Match:  routeMatch(r.Match),
		Action: &routev3.Route_Route{Route: action},
	}
}

func routeMatch(m ir.RouteMatch) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{}
	switch {
	case m.Path != "":
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Path}
	case m.PathPrefix != "":
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.PathPrefix}
	default:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		rm.Headers = append(rm.Headers, &routev3.HeaderMatcher{
			Name:                 k,
			HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: exact(m.Headers[k])},
		})
	}
	return rm
}

func retryPolicy(r *ir.Retry) *routev3.RetryPolicy {
	if r == nil {
		return nil
	}
	rp := &routev3.RetryPolicy{
		RetryOn:       strings.Join(r.On, ","),
		NumRetries:    wrapperspb.UInt32(r.NumRetries),
		PerTryTimeout: optDuration(r.PerTryTimeout),
	}
	if r.BaseInterval > 0 {
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{
			BaseInterval: duration(r.BaseInterval),
			MaxInterval:  optDuration(r.MaxInterval),
		}
	}
	return rp
}
