package pki_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

func TestGenerateCADefaults(t *testing.T) {
	certPEM, keyPEM, err := pki.GenerateCA("demo", pki.CAOptions{}, t0)
	require.NoError(t, err)

	certs, err := pki.ParseCertsPEM(certPEM)
	require.NoError(t, err)
	require.Len(t, certs, 1)
	c := certs[0]
	require.True(t, c.IsCA)
	require.True(t, c.BasicConstraintsValid)
	require.True(t, c.MaxPathLenZero)
	require.NotZero(t, c.KeyUsage&x509.KeyUsageCertSign)
	require.Equal(t, "demo", c.Subject.CommonName)
	require.Len(t, c.URIs, 1)
	require.Equal(t, "spiffe://demo", c.URIs[0].String())
	require.Equal(t, []pki.ID{{Mesh: "demo"}}, pki.IDsOf(c))
	require.Equal(t, t0.Add(pki.DefaultCALifetime), c.NotAfter)
	require.True(t, c.NotBefore.Before(t0))
	require.NoError(t, c.CheckSignatureFrom(c), "self-signed")

	pub, ok := c.PublicKey.(*rsa.PublicKey)
	require.True(t, ok, "builtin CAs use RSA")
	require.Equal(t, 2048, pub.N.BitLen())

	key, err := pki.ParseKeyPEM(keyPEM)
	require.NoError(t, err)
	require.True(t, pki.KeyMatchesCert(key, c))

	// A real x509 verification of the CA against itself as root.
	pool := x509.NewCertPool()
	pool.AddCert(c)
	_, err = c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: t0})
	require.NoError(t, err)
}

func TestGenerateCAOptions(t *testing.T) {
	certPEM, _, err := pki.GenerateCA("demo", pki.CAOptions{Lifetime: 48 * time.Hour}, t0)
	require.NoError(t, err)
	certs, err := pki.ParseCertsPEM(certPEM)
	require.NoError(t, err)
	require.Equal(t, t0.Add(48*time.Hour), certs[0].NotAfter)

	_, _, err = pki.GenerateCA("demo", pki.CAOptions{RSABits: 1024}, t0)
	require.ErrorContains(t, err, "out of range")
	_, _, err = pki.GenerateCA("demo", pki.CAOptions{RSABits: 16384}, t0)
	require.ErrorContains(t, err, "out of range")
	_, _, err = pki.GenerateCA("demo", pki.CAOptions{Lifetime: -time.Hour}, t0)
	require.ErrorContains(t, err, "must be positive")
	_, _, err = pki.GenerateCA("bad mesh", pki.CAOptions{}, t0)
	require.ErrorContains(t, err, "not a valid URI")
}

func TestLoadCARejects(t *testing.T) {
	good := ecKey(t)
	goodPEM, _ := sign(t, caTemplate("good"), good, nil, nil)

	leafTmpl := caTemplate("leaf")
	leafTmpl.IsCA = false
	leafPEM, _ := sign(t, leafTmpl, good, nil, nil)

	noCertSign := caTemplate("no-certsign")
	noCertSign.KeyUsage = x509.KeyUsageDigitalSignature
	noCertSignPEM, _ := sign(t, noCertSign, good, nil, nil)

	expired := caTemplate("expired")
	expired.NotAfter = t0.Add(-time.Minute)
	expiredPEM, _ := sign(t, expired, good, nil, nil)

	future := caTemplate("future")
	future.NotBefore = t0.Add(time.Hour)
	futurePEM, _ := sign(t, future, good, nil, nil)

	// A CA whose name constraints exclude the mesh: every workload
	// certificate it signs would fail verification.
	constrained := caTemplate("constrained")
	constrained.PermittedURIDomains = []string{"other-mesh"}
	constrainedPEM, _ := sign(t, constrained, good, nil, nil)

	// A CA restricted to server certificates: workload certificates need
	// clientAuth too.
	serverOnly := caTemplate("server-only")
	serverOnly.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverOnlyPEM, _ := sign(t, serverOnly, good, nil, nil)

	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	edDER, err := x509.MarshalPKCS8PrivateKey(edKey)
	require.NoError(t, err)
	edPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER})

	// A chain whose second certificate did not sign the first.
	otherPEM, _ := sign(t, caTemplate("other"), ecKey(t), nil, nil)
	brokenChain := append(append([]byte{}, goodPEM...), otherPEM...)

	cases := []struct {
		name     string
		cert     []byte
		key      []byte
		contains string
	}{
		{"garbage cert", []byte("not pem"), keyPEM(t, good), "no PEM certificate block"},
		{"garbage key", goodPEM, []byte("not pem"), "no PEM private key block"},
		{"not a CA", leafPEM, keyPEM(t, good), "is not a CA"},
		{"no keyCertSign", noCertSignPEM, keyPEM(t, good), "may not sign certificates"},
		{"key mismatch", goodPEM, keyPEM(t, ecKey(t)), "private key does not match"},
		{"expired", expiredPEM, keyPEM(t, good), "expired at"},
		{"not yet valid", futurePEM, keyPEM(t, good), "is not valid before"},
		{"ed25519 key", goodPEM, edPEM, "only RSA and ECDSA"},
		{"broken chain", brokenChain, keyPEM(t, good), "is not signed by certificate 2"},
		{"name constraints", constrainedPEM, keyPEM(t, good), "does not verify"},
		{"server-only CA", serverOnlyPEM, keyPEM(t, good), "does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pki.LoadCA("demo", tc.cert, tc.key, t0)
			require.ErrorIs(t, err, pki.ErrInvalidCA)
			require.ErrorContains(t, err, tc.contains)
			require.ErrorContains(t, err, `mesh "demo"`)
		})
	}

	ca, err := pki.LoadCA("demo", goodPEM, keyPEM(t, good), t0)
	require.NoError(t, err)
	require.Equal(t, "demo", ca.Mesh())
}

// A provided CA may be an intermediate: certificates it issues carry the
// intermediate, so peers that trust only the root verify them.
func TestProvidedIntermediateCA(t *testing.T) {
	rootKey, interKey := ecKey(t), ecKey(t)
	rootPEM, root := sign(t, caTemplate("root"), rootKey, nil, nil)
	interPEM, _ := sign(t, caTemplate("intermediate"), interKey, root, rootKey)

	bundle := append(append([]byte{}, interPEM...), rootPEM...)
	ca, err := pki.LoadCA("demo", bundle, keyPEM(t, interKey), t0)
	require.NoError(t, err)

	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}}, t0)
	require.NoError(t, err)
	chain, err := pki.ParseCertsPEM(wc.CertPEM)
	require.NoError(t, err)
	require.Len(t, chain, 2, "leaf followed by the intermediate")

	ids, err := pki.VerifyWorkloadCertPEM(wc.CertPEM, rootPEM, "demo", t0)
	require.NoError(t, err)
	require.Equal(t, []pki.ID{{Mesh: "demo", Service: "web"}}, ids)
}

func TestParseKeyPEMFormats(t *testing.T) {
	ec := ecKey(t)
	sec1, err := x509.MarshalECPrivateKey(ec)
	require.NoError(t, err)
	k, err := pki.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))
	require.NoError(t, err)
	require.True(t, ec.Equal(k))

	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k, err = pki.ParseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}))
	require.NoError(t, err)
	require.True(t, rk.Equal(k))
}
