package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// ErrUntrustedPeer marks every reason a workload certificate is refused by
// VerifyWorkloadCert and the TLS configurations of NewTLSConfig.
var ErrUntrustedPeer = errors.New("untrusted workload certificate")

// VerifyWorkloadCert checks a peer's certificate chain (leaf first, as TLS
// presents it) the way a mesh workload must: the leaf chains to a
// certificate of roots (the mesh's trust bundle) at now, may be used for
// usage (x509.ExtKeyUsageServerAuth when checking a server,
// x509.ExtKeyUsageClientAuth when checking a client), and carries at least
// one SPIFFE id of mesh. It returns the leaf's SPIFFE ids in that mesh.
//
// Checking the mesh of the SPIFFE id, not only the chain, keeps meshes
// isolated even when an operator gives two meshes the same provided CA.
func VerifyWorkloadCert(chain []*x509.Certificate, roots *x509.CertPool, mesh string, usage x509.ExtKeyUsage, now time.Time) ([]ID, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: the peer presented no certificate", ErrUntrustedPeer)
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrustedPeer, err)
	}
	var ids []ID
	for _, id := range IDsOf(leaf) {
		if id.Mesh == mesh && id.Service != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: certificate has no SPIFFE id of mesh %q (it has %v)", ErrUntrustedPeer, mesh, IDsOf(leaf))
	}
	return ids, nil
}

// VerifyWorkloadCertPEM is VerifyWorkloadCert for PEM input: certPEM is the
// leaf followed by intermediates, bundlePEM the mesh's trust bundle. The
// leaf must be usable both as a server and as a client, as every workload
// certificate of a mesh is.
func VerifyWorkloadCertPEM(certPEM, bundlePEM []byte, mesh string, now time.Time) ([]ID, error) {
	chain, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrustedPeer, err)
	}
	roots, err := CertPoolFromPEM(bundlePEM)
	if err != nil {
		return nil, err
	}
	var ids []ID
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if ids, err = VerifyWorkloadCert(chain, roots, mesh, usage, now); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// CertPoolFromPEM returns a pool of every certificate in a PEM trust bundle.
func CertPoolFromPEM(bundlePEM []byte) (*x509.CertPool, error) {
	certs, err := ParseCertsPEM(bundlePEM)
	if err != nil {
		return nil, fmt.Errorf("reading trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// PeerIDs returns the SPIFFE ids of the peer of a TLS connection (the URI
// SANs of its leaf certificate), or nil when it presented none. It does not
// verify anything: use it on connections whose configuration verified the
// peer (NewTLSConfig does).
func PeerIDs(cs tls.ConnectionState) []ID {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return IDsOf(cs.PeerCertificates[0])
}

// TLSOptions configures NewTLSConfig.
type TLSOptions struct {
	// Mesh whose workloads are trusted as peers.
	Mesh string
	// CertPEM is this workload's certificate (leaf first), KeyPEM its key.
	CertPEM, KeyPEM []byte
	// TrustBundlePEM holds the mesh's CA certificates.
	TrustBundlePEM []byte
	// Server selects a server configuration (requires and verifies client
	// certificates); otherwise a client configuration.
	Server bool
	// AuthorizePeer, when set, is called with the verified peer's SPIFFE ids
	// and may refuse the connection by returning an error.
	AuthorizePeer func(ids []ID) error
	// Now is the clock used to verify peers; nil means time.Now.
	Now func() time.Time
}

// NewTLSConfig returns a mutual-TLS configuration for a mesh workload:
// it presents the workload certificate and accepts only peers whose
// certificate chains to the trust bundle, carries the right extended key
// usage and has a SPIFFE id of the mesh. SPIFFE ids replace host names, so
// clients do not check the server name (ServerName is irrelevant).
//
// With TLS 1.3 a client's Handshake returns before the server has checked
// the client certificate: a server's refusal shows up as an error on the
// client's first read.
func NewTLSConfig(o TLSOptions) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(o.CertPEM, o.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading workload certificate: %w", err)
	}
	roots, err := CertPoolFromPEM(o.TrustBundlePEM)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	usage := x509.ExtKeyUsageServerAuth
	if o.Server {
		usage = x509.ExtKeyUsageClientAuth
	}
	// VerifyConnection, unlike VerifyPeerCertificate, also runs on resumed
	// sessions, so a resumed connection is checked against today's bundle
	// and clock too.
	verify := func(cs tls.ConnectionState) error {
		ids, err := VerifyWorkloadCert(cs.PeerCertificates, roots, o.Mesh, usage, now())
		if err != nil {
			return err
		}
		if o.AuthorizePeer != nil {
			if err := o.AuthorizePeer(ids); err != nil {
				return fmt.Errorf("peer %v refused: %w", ids, err)
			}
		}
		return nil
	}
	cfg := &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{pair},
		VerifyConnection: verify,
	}
	if o.Server {
		// Verification is done by verify (SPIFFE ids, no host names).
		cfg.ClientAuth = tls.RequireAnyClientCert
	} else {
		// The standard host-name check does not apply to SPIFFE ids; verify
		// checks the chain and the id instead.
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by VerifyConnection
	}
	return cfg, nil
}
