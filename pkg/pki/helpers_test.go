package pki_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// t0 is the fixed "now" of tests.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// clockAt returns a clock that reads *now.
func clockAt(now *time.Time) func() time.Time { return func() time.Time { return *now } }

// builtinCA generates and loads a builtin CA for mesh, created at t0.
func builtinCA(t testing.TB, mesh string) *pki.CA {
	t.Helper()
	return builtinCAAt(t, mesh, t0)
}

// builtinCAAt generates and loads a builtin CA for mesh, created at now.
func builtinCAAt(t testing.TB, mesh string, now time.Time) *pki.CA {
	t.Helper()
	certPEM, keyPEM, err := pki.GenerateCA(mesh, pki.CAOptions{}, now)
	require.NoError(t, err)
	ca, err := pki.LoadCA(mesh, certPEM, keyPEM, now)
	require.NoError(t, err)
	return ca
}

// ecKey returns a fresh P-256 key (fast, for hand-made test certificates).
func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

// caTemplate is a valid CA certificate template; tests break it on purpose.
func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// sign creates tmpl over key's public half, signed by parent/parentKey (self-
// signed when parent is nil), and returns it PEM-encoded.
func sign(t testing.TB, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, *x509.Certificate) {
	t.Helper()
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return pki.EncodeCertPEM(der), c
}

func keyPEM(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	p, err := pki.EncodeKeyPEM(k)
	require.NoError(t, err)
	return p
}
