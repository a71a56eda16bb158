package dptoken_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
)

// BenchmarkVerify measures verifying one token (ES256 signature, two secret
// reads from the memory store), the work done per bootstrap and xDS stream.
func BenchmarkVerify(b *testing.B) {
	e := &env{ctx: b.Context(), now: t0}
	e.store = newStore()
	e.m = e.manager(dptoken.Options{})
	tok, err := e.m.Issue(e.ctx, dptoken.IssueRequest{Mesh: "m", Name: "dp", Tags: webTags})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.m.Verify(e.ctx, tok, "m", "dp", webTags); err != nil {
			b.Fatal(err)
		}
	}
}
