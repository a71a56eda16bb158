package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// alpn returns the ALPN protocols a TLS endpoint of protocol p offers. gRPC
// clients require h2 to be negotiated.
func alpn(p ir.Protocol) []string {
	switch {
	case p.IsHTTP2():
		return []string{"h2"}
	case p == ir.ProtocolHTTP:
		return []string{"h2", "http/1.1"}
	default:
		return nil
	}
}

// transportSocket wraps a TLS context in the TLS transport socket.
func (t *translator) transportSocket(what string, ctx proto.Message) *corev3.TransportSocket {
	a := t.pack(what, ctx)
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}
}

// envoyDownstreamTLS terminates mTLS on an Envoy inbound: the workload
// certificate and the mesh CA come over SDS, and clients must present a
// certificate the CA signed.
func (t *translator) envoyDownstreamTLS(p ir.Protocol) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      t.tlsParams,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{t.identitySDS},
			ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: t.caSDS},
			AlpnProtocols:                  alpn(p),
		},
		RequireClientCertificate: wrapperspb.Bool(true),
	}
}

// envoyUpstreamTLS originates mTLS from an Envoy proxy to a mesh service and
// checks that the upstream presents the destination's SPIFFE id. Envoy reads
// the typed SAN matchers (and rejects a context with both forms).
func (t *translator) envoyUpstreamTLS(c *ir.Cluster) *tlsv3.UpstreamTlsContext {
	return &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsParams:                      t.tlsParams,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{t.identitySDS},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
							SanType: tlsv3.SubjectAltNameMatcher_URI,
							Matcher: exact(c.ExpectedSAN),
						}},
					},
					ValidationContextSdsSecretConfig: t.caSDS,
				},
			},
			AlpnProtocols: alpn(c.Protocol),
		},
	}
}

func exact(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

// provider refers to a certificate provider instance of the gRPC bootstrap.
func provider(name string) *tlsv3.CertificateProviderPluginInstance {
	return &tlsv3.CertificateProviderPluginInstance{InstanceName: name}
}

// proxylessUpstreamTLS originates mTLS from a proxyless gRPC client. gRPC
// accepts only certificate provider instances, and gRPC-Go 1.85 reads only
// the deprecated match_subject_alt_names: with the typed form alone it would
// silently skip the server identity check.
func (t *translator) proxylessUpstreamTLS(c *ir.Cluster) *tlsv3.UpstreamTlsContext {
	m := t.p.MTLS
	return &tlsv3.UpstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: provider(m.IdentityCert),
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CaCertificateProviderInstance: provider(m.CA),
				MatchSubjectAltNames:          []*matcherv3.StringMatcher{exact(c.ExpectedSAN)}, //nolint:staticcheck // The only SAN form gRPC-Go 1.85 reads.
			}},
		},
	}
}

// proxylessDownstreamTLS terminates mTLS on a proxyless gRPC server. gRPC
// refuses SAN matchers on servers; client certificates are required and
// checked against the CA provider.
func (t *translator) proxylessDownstreamTLS() *tlsv3.DownstreamTlsContext {
	m := t.p.MTLS
	return &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: provider(m.IdentityCert),
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CaCertificateProviderInstance: provider(m.CA),
			}},
		},
		RequireClientCertificate: wrapperspb.Bool(true),
	}
}

// secrets renders the IR's SDS secrets.
func secrets(ss []ir.Secret) []*tlsv3.Secret {
	out := make([]*tlsv3.Secret, 0, len(ss))
	for _, s := range ss {
		if s.IsIdentity() {
			out = append(out, &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inline(s.CertificateChain),
				PrivateKey:       inline(s.PrivateKey),
			}}})
			continue
		}
		out = append(out, &tlsv3.Secret{Name: s.Name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: inline(s.TrustedCA),
		}}})
	}
	return out
}

func inline(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}
