package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Defaults of a builtin CA.
const (
	// DefaultCARSABits is the RSA key size of a builtin CA when the mesh
	// sets no conf.caCert.RSAbits.
	DefaultCARSABits = 2048
	// DefaultCALifetime is the lifetime of a builtin CA when the mesh sets
	// no conf.caCert.expiration: 10 years.
	DefaultCALifetime = 10 * 365 * 24 * time.Hour
)

// caBackdate is how far a builtin CA's NotBefore lies in the past, so that
// peers whose clocks run a little behind accept it from the start.
const caBackdate = 5 * time.Minute

// ErrInvalidCA marks every reason LoadCA refuses a CA: not a CA, a key that
// does not match, expired, unreadable PEM... Match it with errors.Is to tell
// a user's mistake (a 4xx) from an internal failure.
var ErrInvalidCA = errors.New("invalid certificate authority")

// CAOptions configures GenerateCA.
type CAOptions struct {
	// RSABits is the CA key size; 0 means DefaultCARSABits. It must lie
	// between 2048 and 8192.
	RSABits int
	// Lifetime is how long the CA is valid; 0 means DefaultCALifetime.
	Lifetime time.Duration
}

// GenerateCA creates a self-signed RSA CA for a mesh and returns its
// certificate and PKCS#8 private key as PEM. The certificate's subject
// common name is the mesh name and its only URI SAN is spiffe://<mesh>.
func GenerateCA(mesh string, opts CAOptions, now time.Time) (certPEM, keyPEM []byte, err error) {
	bits := opts.RSABits
	if bits == 0 {
		bits = DefaultCARSABits
	}
	key, err := generateRSA(bits)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA for mesh %q: %w", mesh, err)
	}
	certPEM, err = SelfSignCA(mesh, key, opts.Lifetime, now)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = EncodeKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA for mesh %q: %w", mesh, err)
	}
	return certPEM, keyPEM, nil
}

// SelfSignCA returns, as PEM, a self-signed CA certificate for mesh over an
// existing key, valid for lifetime (0 means DefaultCALifetime) from now. The
// CA may sign leaves only (path length 0).
func SelfSignCA(mesh string, key crypto.Signer, lifetime time.Duration, now time.Time) ([]byte, error) {
	if lifetime == 0 {
		lifetime = DefaultCALifetime
	}
	if lifetime < 0 {
		return nil, fmt.Errorf("generating CA for mesh %q: lifetime %s must be positive", mesh, lifetime)
	}
	trustDomain, err := ID{Mesh: mesh}.URL()
	if err != nil {
		return nil, fmt.Errorf("generating CA for mesh %q: %w", mesh, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("generating CA for mesh %q: %w", mesh, err)
	}
	cn := mesh
	if len(cn) > 64 { // ub-common-name
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Atoll"}, OrganizationalUnit: []string{"Mesh"}, CommonName: cn},
		NotBefore:             now.Add(-caBackdate).UTC(),
		NotAfter:              now.Add(lifetime).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{trustDomain},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing CA for mesh %q: %w", mesh, err)
	}
	return EncodeCertPEM(der), nil
}

// CA is a loaded, validated certificate authority of one mesh, ready to
// issue workload certificates. It is immutable and safe for concurrent use.
type CA struct {
	mesh    string
	cert    *x509.Certificate   // the signing certificate
	chain   []*x509.Certificate // the certificates after it in certPEM
	key     crypto.Signer
	certPEM []byte
	pool    *x509.CertPool
}

// LoadCA parses and validates a CA for mesh: certPEM holds the signing CA
// certificate first, optionally followed by the certificates up to a root;
// keyPEM holds the signing certificate's private key (PKCS#8, PKCS#1 or
// SEC 1). It checks that the certificate is a CA allowed to sign
// certificates, that the key matches it, that every certificate is valid at
// now and signed by the next one, and that a workload certificate it issues
// verifies — which also catches name constraints or extended key usages that
// would make every workload certificate useless. Every failure wraps
// ErrInvalidCA and says what is wrong.
func LoadCA(mesh string, certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	ca, err := loadCA(mesh, certPEM, keyPEM, now)
	if err != nil {
		return nil, fmt.Errorf("%w for mesh %q: %w", ErrInvalidCA, mesh, err)
	}
	return ca, nil
}

func loadCA(mesh string, certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	if mesh == "" {
		return nil, errors.New("mesh name is empty")
	}
	certs, err := ParseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("reading private key: %w", err)
	}
	cert := certs[0]
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("certificate %q is not a CA (basic constraints CA:TRUE missing)", cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %q may not sign certificates (key usage keyCertSign missing)", cert.Subject)
	}
	if !KeyMatchesCert(key, cert) {
		return nil, fmt.Errorf("private key does not match certificate %q", cert.Subject)
	}
	for i, c := range certs {
		if now.Before(c.NotBefore) {
			return nil, fmt.Errorf("certificate %d (%q) is not valid before %s", i+1, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if now.After(c.NotAfter) {
			return nil, fmt.Errorf("certificate %d (%q) expired at %s", i+1, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if i+1 < len(certs) {
			if err := c.CheckSignatureFrom(certs[i+1]); err != nil {
				return nil, fmt.Errorf("certificate %d (%q) is not signed by certificate %d (%q): %w", i+1, c.Subject, i+2, certs[i+1].Subject, err)
			}
		}
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	ca := &CA{mesh: mesh, cert: cert, chain: certs[1:], key: key, certPEM: bytes.Clone(certPEM), pool: pool}
	if err := ca.selfTest(now); err != nil {
		return nil, err
	}
	return ca, nil
}

// selfTest issues a throw-away workload certificate and verifies it the way
// peers will, so a CA that cannot produce usable certificates is refused up
// front instead of breaking every connection later.
func (ca *CA) selfTest(now time.Time) error {
	wc, err := ca.IssueWorkloadCert(WorkloadRequest{Services: []string{"ca-self-test"}, Lifetime: time.Hour}, now)
	if err != nil {
		return fmt.Errorf("issuing a test workload certificate: %w", err)
	}
	if _, err := VerifyWorkloadCertPEM(wc.CertPEM, ca.certPEM, ca.mesh, now); err != nil {
		return fmt.Errorf("a workload certificate this CA issues does not verify: %w", err)
	}
	return nil
}

// Mesh returns the mesh whose workloads this CA certifies.
func (ca *CA) Mesh() string { return ca.mesh }

// Certificate returns the signing certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA's certificates as given (the signing certificate
// and any chain after it): the trust bundle peers of this mesh verify
// workload certificates against.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// CertPool returns the CA's certificates as a pool of roots.
func (ca *CA) CertPool() *x509.CertPool { return ca.pool.Clone() }

// intermediates returns the certificates a leaf should carry after itself:
// every CA certificate that is not self-signed (a provided CA may be an
// intermediate), so peers trusting only the root can build the chain.
func (ca *CA) intermediates() [][]byte {
	var out [][]byte
	for _, c := range append([]*x509.Certificate{ca.cert}, ca.chain...) {
		if !isSelfSigned(c) {
			out = append(out, c.Raw)
		}
	}
	return out
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
