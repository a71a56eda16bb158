package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

func TestIssueWorkloadCert(t *testing.T) {
	ca := builtinCA(t, "demo")
	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web", "web-admin", "web"}}, t0)
	require.NoError(t, err)
	leaf := wc.Leaf

	uris := make([]string, 0, len(leaf.URIs))
	for _, u := range leaf.URIs {
		uris = append(uris, u.String())
	}
	require.Equal(t, []string{"spiffe://demo/web", "spiffe://demo/web-admin"}, uris, "one SPIFFE id per service, duplicates removed")
	require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
	require.False(t, leaf.IsCA)
	require.Equal(t, t0.Add(pki.DefaultWorkloadLifetime), leaf.NotAfter)
	require.Equal(t, t0.Add(-5*time.Minute), leaf.NotBefore, "backdated for clock skew")

	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	require.True(t, ok, "workload keys default to ECDSA")
	require.Equal(t, elliptic.P256(), pub.Curve)
	key, err := pki.ParseKeyPEM(wc.KeyPEM)
	require.NoError(t, err)
	require.True(t, pki.KeyMatchesCert(key, leaf))

	// Real x509 verification against the CA, for both usages.
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.CertPool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{usage}})
		require.NoError(t, err, usage)
	}
	ids, err := pki.VerifyWorkloadCertPEM(wc.CertPEM, ca.CertPEM(), "demo", t0)
	require.NoError(t, err)
	require.Equal(t, []pki.ID{{Mesh: "demo", Service: "web"}, {Mesh: "demo", Service: "web-admin"}}, ids)

	// Not valid after expiry, nor for another mesh.
	_, err = pki.VerifyWorkloadCertPEM(wc.CertPEM, ca.CertPEM(), "demo", t0.Add(25*time.Hour))
	require.ErrorIs(t, err, pki.ErrUntrustedPeer)
	_, err = pki.VerifyWorkloadCertPEM(wc.CertPEM, ca.CertPEM(), "other", t0)
	require.ErrorIs(t, err, pki.ErrUntrustedPeer)
	require.ErrorContains(t, err, `no SPIFFE id of mesh "other"`)
}

func TestRenewAt(t *testing.T) {
	ca := builtinCA(t, "demo")
	for _, life := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour} {
		wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}, Lifetime: life}, t0)
		require.NoError(t, err)
		leaf := wc.Leaf
		require.Equal(t, t0.Add(life), leaf.NotAfter)
		require.LessOrEqual(t, t0.Sub(leaf.NotBefore), 5*time.Minute)
		require.LessOrEqual(t, t0.Sub(leaf.NotBefore), life/10)

		renew := pki.RenewAt(leaf)
		require.Equal(t, wc.RenewAt(), renew)
		lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
		require.Equal(t, leaf.NotBefore.Add(lifetime*4/5), renew)
		require.True(t, renew.After(t0), "renewal is in the future even for short lifetimes (%s)", life)
		require.True(t, renew.Before(leaf.NotAfter))
	}
	// 24h default: renewed 19h11m after issue.
	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}}, t0)
	require.NoError(t, err)
	require.Equal(t, t0.Add(-5*time.Minute).Add((24*time.Hour+5*time.Minute)*4/5), wc.RenewAt())
}

func TestWorkloadCertNeverOutlivesCA(t *testing.T) {
	certPEM, keyPEM, err := pki.GenerateCA("demo", pki.CAOptions{Lifetime: 2 * time.Hour}, t0)
	require.NoError(t, err)
	ca, err := pki.LoadCA("demo", certPEM, keyPEM, t0)
	require.NoError(t, err)

	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}}, t0)
	require.NoError(t, err)
	require.Equal(t, ca.Certificate().NotAfter, wc.Leaf.NotAfter)

	_, err = ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}}, t0.Add(3*time.Hour))
	require.ErrorContains(t, err, "the mesh CA expired")
}

func TestIssueWorkloadCertTags(t *testing.T) {
	ca := builtinCA(t, "demo")
	dp := &dataplane.Spec{Networking: dataplane.Networking{
		Address: "10.0.0.1",
		Inbound: []dataplane.Inbound{
			{Port: 8080, Tags: map[string]string{"kuma.io/service": "web", "version": "v1", "team": "a/b"}},
			{Port: 8081, Tags: map[string]string{"kuma.io/service": "web-admin", "version": "v1"}},
		},
	}}
	req := pki.WorkloadRequestFor(dp)
	require.Equal(t, []string{"web", "web-admin"}, req.Services)
	require.Equal(t, map[string][]string{"kuma.io/service": {"web", "web-admin"}, "version": {"v1"}, "team": {"a/b"}}, req.Tags)

	wc, err := ca.IssueWorkloadCert(req, t0)
	require.NoError(t, err)
	uris := make([]string, 0, len(wc.Leaf.URIs))
	for _, u := range wc.Leaf.URIs {
		uris = append(uris, u.String())
	}
	require.Equal(t, []string{
		"spiffe://demo/web", "spiffe://demo/web-admin", // SPIFFE ids first
		"kuma://kuma.io/service/web", "kuma://kuma.io/service/web-admin",
		"kuma://team/a%2Fb",
		"kuma://version/v1",
	}, uris)
	require.Equal(t, req.Tags, pki.TagsOf(wc.Leaf))
	ids, err := pki.VerifyWorkloadCertPEM(wc.CertPEM, ca.CertPEM(), "demo", t0)
	require.NoError(t, err)
	require.Len(t, ids, 2)
}

func TestIssueWorkloadCertRejects(t *testing.T) {
	ca := builtinCA(t, "demo")
	cases := map[string]pki.WorkloadRequest{
		"no service":       {},
		"empty service":    {Services: []string{""}},
		"invalid service":  {Services: []string{"we b"}},
		"negative life":    {Services: []string{"web"}, Lifetime: -time.Hour},
		"empty tag value":  {Services: []string{"web"}, Tags: map[string][]string{"version": {""}}},
		"invalid tag text": {Services: []string{"web"}, Tags: map[string][]string{"ver sion": {"v1"}}},
	}
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ca.IssueWorkloadCert(req, t0)
			require.Error(t, err)
			require.ErrorContains(t, err, `mesh "demo"`)
		})
	}
}

func TestIssueRSAWorkloadCert(t *testing.T) {
	ca := builtinCA(t, "demo")
	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{"web"}, KeyType: pki.KeyRSA2048}, t0)
	require.NoError(t, err)
	pub, ok := wc.Leaf.PublicKey.(*rsa.PublicKey)
	require.True(t, ok)
	require.Equal(t, 2048, pub.N.BitLen())
	require.NotZero(t, wc.Leaf.KeyUsage&x509.KeyUsageKeyEncipherment)
	_, err = pki.VerifyWorkloadCertPEM(wc.CertPEM, ca.CertPEM(), "demo", t0)
	require.NoError(t, err)
}

func TestParseID(t *testing.T) {
	id, err := pki.ParseIDString("spiffe://demo/web")
	require.NoError(t, err)
	require.Equal(t, pki.ID{Mesh: "demo", Service: "web"}, id)
	require.Equal(t, "spiffe://demo/web", id.String())

	id, err = pki.ParseIDString("spiffe://demo")
	require.NoError(t, err)
	require.Equal(t, pki.ID{Mesh: "demo"}, id)

	for _, bad := range []string{"https://demo/web", "spiffe:///web", "spiffe://demo/web?x=1", "spiffe://demo:80/web", "spiffe://u@demo/web", "spiffe://demo/", "spiffe://demo/web#f"} {
		_, err := pki.ParseIDString(bad)
		require.Error(t, err, bad)
	}
}
