package bootstrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Names in the Envoy bootstrap.
const (
	// XDSClusterName is the static cluster that reaches the control plane.
	XDSClusterName = "atoll:xds"
	// DefaultAdminAddress is where Envoy's admin endpoint listens.
	DefaultAdminAddress = "127.0.0.1"
	// AuthorizationHeader carries "Bearer <token>" on the ADS stream.
	AuthorizationHeader = "authorization"
)

// EnvoyParams are the inputs of an Envoy bootstrap.
type EnvoyParams struct {
	// Node describes the proxy.
	Node Node
	// XDSServer is the control plane's data-plane server, "host:port".
	XDSServer string
	// CACert is the PEM CA bundle Envoy verifies the server's certificate
	// with; required. The certificate must also name XDSServer's host.
	CACert []byte
	// Token is the dataplane token sent as "authorization: Bearer <token>"
	// on the ADS stream.
	Token string
	// AdminPort is Envoy's admin port; 0 leaves the admin endpoint off.
	AdminPort uint32
	// AdminAddress is the admin endpoint's address; empty means
	// DefaultAdminAddress.
	AdminAddress string
}

// Envoy returns the Envoy bootstrap of p as indented JSON (snake_case field
// names, as Envoy's documentation writes them). The bootstrap and every typed
// config inside it pass ValidateAll.
func Envoy(p EnvoyParams) ([]byte, error) {
	b, err := EnvoyProto(p)
	if err != nil {
		return nil, err
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding the Envoy bootstrap: %w", err)
	}
	// protojson varies its whitespace on purpose; re-indent for stable output.
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("encoding the Envoy bootstrap: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// EnvoyProto returns the Envoy bootstrap of p, validated (see Envoy).
//
// The proxy speaks delta ADS (DELTA_GRPC) to XDSClusterName over HTTP/2 and
// TLS (ALPN h2, the server certificate checked against CACert and XDSServer's
// host), sends its node only on the first message of a stream, and fetches
// listeners and clusters over ADS.
func EnvoyProto(p EnvoyParams) (*bootstrapv3.Bootstrap, error) {
	if err := p.Node.check(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	host, port, err := splitServer(p.XDSServer)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	if len(bytes.TrimSpace(p.CACert)) == 0 {
		return nil, errors.New("envoy bootstrap: the CA certificate verifying the control plane is required")
	}
	md, err := structpb.NewStruct(toAny(p.Node.metadata(ProxyEnvoy)))
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap: node metadata: %w", err)
	}
	ads := &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName}},
	}
	if p.Token != "" {
		ads.InitialMetadata = []*corev3.HeaderValue{{Key: AuthorizationHeader, Value: "Bearer " + p.Token}}
	}
	adsSource := func() *corev3.ConfigSource {
		return &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		}
	}
	xds, err := xdsCluster(host, port, p.CACert)
	if err != nil {
		return nil, fmt.Errorf("envoy bootstrap: %w", err)
	}
	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: p.Node.ID(), Cluster: p.Node.Service, Metadata: md},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:                   corev3.ApiConfigSource_DELTA_GRPC,
				TransportApiVersion:       corev3.ApiVersion_V3,
				SetNodeOnFirstMessageOnly: true,
				GrpcServices:              []*corev3.GrpcService{ads},
			},
			LdsConfig: adsSource(),
			CdsConfig: adsSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xds}},
	}
	if p.AdminPort != 0 {
		addr := p.AdminAddress
		if addr == "" {
			addr = DefaultAdminAddress
		}
		b.Admin = &bootstrapv3.Admin{Address: socketAddress(addr, p.AdminPort)}
	}
	if err := ValidateDeep(b); err != nil {
		return nil, fmt.Errorf("envoy bootstrap is invalid: %w", err)
	}
	return b, nil
}

// xdsCluster is the static cluster reaching the control plane over TLS.
func xdsCluster(host string, port uint32, caPEM []byte) (*clusterv3.Cluster, error) {
	httpOpts, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	san := &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
	}
	tlsCtx := &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: []string{"h2"},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{
					TrustedCa:                 &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: caPEM}},
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{san},
				},
			},
		},
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if ip := net.ParseIP(host); ip != nil {
		discovery = clusterv3.Cluster_STATIC
		san.SanType = tlsv3.SubjectAltNameMatcher_IP_ADDRESS
	} else {
		tlsCtx.Sni = host
	}
	tlsAny, err := anypb.New(tlsCtx)
	if err != nil {
		return nil, err
	}
	c := &clusterv3.Cluster{
		Name:                 XDSClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(5 * time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: XDSClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)}},
				}},
			}},
		},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": httpOpts,
		},
		TransportSocket: &corev3.TransportSocket{
			Name:       "envoy.transport_sockets.tls",
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: tlsAny},
		},
		UpstreamConnectionOptions: &clusterv3.UpstreamConnectionOptions{TcpKeepalive: &corev3.TcpKeepalive{}},
	}
	if discovery == clusterv3.Cluster_STRICT_DNS {
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	return c, nil
}

func socketAddress(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       addr,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// validatable is implemented by every Envoy API message (PGV).
type validatable interface{ ValidateAll() error }

// ValidateDeep runs ValidateAll on m and on every message packed in an Any
// anywhere inside it, which PGV's ValidateAll does not descend into.
func ValidateDeep(m proto.Message) error {
	var errs []error
	var walk func(path string, msg protoreflect.Message)
	walk = func(path string, msg protoreflect.Message) {
		if a, ok := msg.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: unpacking %s: %w", path, a.GetTypeUrl(), err))
				return
			}
			if v, ok := inner.(validatable); ok {
				if err := v.ValidateAll(); err != nil {
					errs = append(errs, fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err))
				}
			}
			walk(path, inner.ProtoReflect())
			return
		}
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			p := path + "." + string(fd.Name())
			switch {
			case fd.IsList() && fd.Message() != nil:
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					walk(fmt.Sprintf("%s[%d]", p, i), l.Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(fmt.Sprintf("%s[%q]", p, k.String()), mv.Message())
					return true
				})
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(p, v.Message())
			}
			return true
		})
	}
	if v, ok := m.(validatable); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, err)
		}
	}
	walk(string(m.ProtoReflect().Descriptor().Name()), m.ProtoReflect())
	return errors.Join(errs...)
}
