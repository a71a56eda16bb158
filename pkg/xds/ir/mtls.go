package ir

// MTLSMode is how a proxy treats mutual TLS on its inbounds.
type MTLSMode string

// The mTLS modes. Outbound traffic to mesh services uses mTLS in both
// STRICT and PERMISSIVE modes.
const (
	// MTLSOff means the mesh has no active CA: plaintext everywhere.
	MTLSOff MTLSMode = ""
	// MTLSStrict accepts only mTLS connections on inbounds.
	MTLSStrict MTLSMode = "STRICT"
	// MTLSPermissive accepts mTLS and plaintext connections on inbounds.
	MTLSPermissive MTLSMode = "PERMISSIVE"
)

// Names of the TLS materials. Envoy proxies receive them as SDS secrets of
// these names; proxyless gRPC applications find them as certificate provider
// instances of these names in their xDS bootstrap (pkg/xds/bootstrap writes
// file_watcher instances with exactly these names).
const (
	// IdentityCertName names the workload certificate and key.
	IdentityCertName = "atoll-identity"
	// MeshCAName names the mesh's CA bundle that validates peers.
	MeshCAName = "atoll-ca"
)

// MTLS is the mesh's mutual TLS setting as it applies to one proxy.
type MTLS struct {
	// Mode is off (empty), STRICT or PERMISSIVE.
	Mode MTLSMode `json:"mode,omitempty" yaml:"mode,omitempty"`
	// IdentityCert names the workload certificate: an SDS secret for Envoy,
	// a certificate provider instance for proxyless gRPC.
	IdentityCert string `json:"identityCert,omitempty" yaml:"identityCert,omitempty"`
	// CA names the mesh CA bundle: an SDS secret for Envoy, a certificate
	// provider instance for proxyless gRPC.
	CA string `json:"ca,omitempty" yaml:"ca,omitempty"`
}

// NewMTLS returns the mTLS setting for mode with the default names
// IdentityCertName and MeshCAName (none when mode is MTLSOff).
func NewMTLS(mode MTLSMode) MTLS {
	if mode == MTLSOff {
		return MTLS{}
	}
	return MTLS{Mode: mode, IdentityCert: IdentityCertName, CA: MeshCAName}
}

// Enabled reports whether mTLS is on.
func (m MTLS) Enabled() bool { return m.Mode != MTLSOff }

// Secret is TLS material delivered to an Envoy proxy over SDS, in PEM. A
// secret holds either a certificate chain with its private key (an identity)
// or a CA bundle (a validation context).
//
// Secrets carry private keys: redact them before showing an IR to a user.
type Secret struct {
	// Name is the SDS resource name (MTLS.IdentityCert or MTLS.CA).
	Name string `json:"name" yaml:"name"`
	// CertificateChain is the PEM certificate chain of an identity secret.
	CertificateChain string `json:"certificateChain,omitempty" yaml:"certificateChain,omitempty"`
	// PrivateKey is the PEM private key of an identity secret.
	PrivateKey string `json:"privateKey,omitempty" yaml:"privateKey,omitempty"`
	// TrustedCA is the PEM CA bundle of a validation-context secret.
	TrustedCA string `json:"trustedCA,omitempty" yaml:"trustedCA,omitempty"`
}

// IsIdentity reports whether the secret is a certificate with its key.
func (s Secret) IsIdentity() bool { return s.CertificateChain != "" }
