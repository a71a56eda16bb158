package pki_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// BenchmarkIssueWorkloadCert measures issuing one workload certificate
// (key generation, signing, PEM encoding) from a builtin RSA 2048 CA, with
// ECDSA P-256 and RSA 2048 leaf keys, and from an ECDSA P-256 CA.
func BenchmarkIssueWorkloadCert(b *testing.B) {
	rsaCA := builtinCA(b, "bench")
	ecKey := ecKey(b)
	ecPEM, _ := sign(b, caTemplate("ec-ca"), ecKey, nil, nil)
	ecCA, err := pki.LoadCA("bench", ecPEM, keyPEM(b, ecKey), t0)
	require.NoError(b, err)

	cases := []struct {
		name string
		ca   *pki.CA
		key  pki.KeyType
	}{
		{"ca=RSA2048/leaf=ECDSA-P256", rsaCA, pki.KeyECDSAP256},
		{"ca=RSA2048/leaf=RSA2048", rsaCA, pki.KeyRSA2048},
		{"ca=ECDSA-P256/leaf=ECDSA-P256", ecCA, pki.KeyECDSAP256},
	}
	req := pki.WorkloadRequest{
		Services: []string{"backend"},
		Tags:     map[string][]string{"kuma.io/service": {"backend"}, "version": {"v1"}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			r := req
			r.KeyType = tc.key
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.ca.IssueWorkloadCert(r, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
