package translate

import (
	"fmt"
	"net/netip"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// Well-known extension names.
const (
	tlsTransportSocket   = "envoy.transport_sockets.tls"
	routerFilter         = "envoy.filters.http.router"
	hcmFilter            = "envoy.filters.network.http_connection_manager"
	tcpProxyFilter       = "envoy.filters.network.tcp_proxy"
	originalDstFilter    = "envoy.filters.listener.original_dst"
	tlsInspectorFilter   = "envoy.filters.listener.tls_inspector"
	httpOptionsExtension = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// translator holds the state of one translation: the proxy, the problems met
// so far, and typed configs shared by many resources.
//
// Sub-messages that are the same everywhere (the ADS config source, SDS
// references, the router filter, upstream HTTP options) are built once per
// translation and shared by the resources that contain them. Resources are
// therefore read-only: code that changes one after translation (a
// MeshProxyPatch) must proto.Clone it first.
type translator struct {
	p      *ir.Proxy
	errs   []error
	router *hcmv3.HttpFilter
	// ads is the config source of every dynamic resource: the ADS stream.
	ads *corev3.ConfigSource
	// identitySDS and caSDS refer to the mTLS secrets (Envoy).
	identitySDS, caSDS *tlsv3.SdsSecretConfig
	tlsParams          *tlsv3.TlsParameters
	// httpOptions memoizes upstream HTTP protocol options.
	httpOptions map[httpOptionsKey]map[string]*anypb.Any
}

type httpOptionsKey struct {
	http2 bool
	idle  time.Duration
}

func newTranslator(p *ir.Proxy) *translator {
	t := &translator{
		p: p,
		ads: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		},
		tlsParams:   &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		httpOptions: map[httpOptionsKey]map[string]*anypb.Any{},
	}
	t.identitySDS = &tlsv3.SdsSecretConfig{Name: p.MTLS.IdentityCert, SdsConfig: t.ads}
	t.caSDS = &tlsv3.SdsSecretConfig{Name: p.MTLS.CA, SdsConfig: t.ads}
	t.router = &hcmv3.HttpFilter{
		Name:       routerFilter,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: t.pack("router filter", &routerv3.Router{})},
	}
	return t
}

// pack validates m and wraps it in an Any. what names the config in an
// error. Validating here, before packing, is what lets Translate skip
// unpacking every Any again (PGV does not descend into Any).
func (t *translator) pack(what string, m proto.Message) *anypb.Any {
	if v, ok := m.(validatable); ok {
		if err := v.ValidateAll(); err != nil {
			t.errs = append(t.errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	a, err := anypb.New(m)
	if err != nil {
		t.errs = append(t.errs, fmt.Errorf("packing %s: %w", what, err))
		return &anypb.Any{}
	}
	return a
}

// socketAddress returns a TCP address for host (an IP) and port.
func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Protocol:      corev3.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// duration converts d; zero stays an explicit zero, which Envoy reads as
// "disabled" for the timeouts we emit unconditionally.
func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// optDuration converts d, or returns nil (leave Envoy's default) when d is 0.
func optDuration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// connectTimeout returns d, or the default when d is zero.
func connectTimeout(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		d = ir.DefaultConnectTimeout
	}
	return durationpb.New(d)
}

// isIP reports whether s is an IP address.
func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// prefixLen returns the host prefix length of the IP s (32 or 128).
func prefixLen(s string) uint32 {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() && !a.Is4In6() {
		return 128
	}
	return 32
}

// isLoopback reports whether s is a loopback IP address.
func isLoopback(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.IsLoopback()
}

// weighted returns the clusters of a route with usable weights: when every
// weight is zero each cluster gets 1, otherwise zero-weight clusters are
// dropped (gRPC rejects a zero-weight split, Envoy a zero total).
func weighted(cs []ir.WeightedCluster) []ir.WeightedCluster {
	allZero := true
	for _, c := range cs {
		if c.Weight != 0 {
			allZero = false
			break
		}
	}
	out := make([]ir.WeightedCluster, 0, len(cs))
	for _, c := range cs {
		switch {
		case allZero:
			out = append(out, ir.WeightedCluster{Name: c.Name, Weight: 1})
		case c.Weight > 0:
			out = append(out, c)
		}
	}
	return out
}

// orOne returns w, or 1 when w is zero.
func orOne(w uint32) uint32 {
	if w == 0 {
		return 1
	}
	return w
}
