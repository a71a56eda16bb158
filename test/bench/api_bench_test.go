// Package bench holds Atoll's benchmarks. They measure with `go test -bench`
// (never with timed unit tests); figures and the machine they came from are
// recorded in docs/benchmarks.md.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

func newAPIServer(b *testing.B) (*httptest.Server, *http.Client) {
	b.Helper()
	reg, err := all.Registry()
	if err != nil {
		b.Fatal(err)
	}
	mgr := manager.New(reg, memory.New(reg), slog.New(slog.DiscardHandler))
	if err := mgr.EnsureDefaultMesh(b.Context()); err != nil {
		b.Fatal(err)
	}
	srv, err := apiserver.New(apiserver.Options{Manager: mgr, Index: apiserver.Index{Product: "Atoll"}})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(hs.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return hs, client
}

func timeoutBody(i int) []byte {
	return fmt.Appendf(nil, `{"type":"MeshTimeout","labels":{"team":"t%d"},"spec":{"targetRef":{"kind":"MeshService","name":"svc-%d"},"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"20s","connectionTimeout":"2s","http":{"requestTimeout":"5s"}}}]}}`, i%10, i)
}

func put(b *testing.B, c *http.Client, url string, body []byte) {
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated && res.StatusCode != http.StatusOK {
		b.Fatalf("PUT %s: %d", url, res.StatusCode)
	}
}

// BenchmarkAPIPut measures create-or-update throughput over real HTTP with
// 10,000 resources stored: each op writes one of 10,000 names, so the first
// pass creates and later ones update.
func BenchmarkAPIPut(b *testing.B) {
	const n = 10_000
	hs, c := newAPIServer(b)
	bodies := make([][]byte, n)
	for i := range n {
		bodies[i] = timeoutBody(i)
		put(b, c, fmt.Sprintf("%s/meshes/default/meshtimeouts/mt-%05d", hs.URL, i), bodies[i])
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := i % n
			put(b, c, fmt.Sprintf("%s/meshes/default/meshtimeouts/mt-%05d", hs.URL, k), bodies[k])
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
}

// BenchmarkAPIListPage measures one paginated GET of a list holding 10,000
// resources, at Kuma's default page size and its maximum, near the start and
// the end of the list.
func BenchmarkAPIListPage(b *testing.B) {
	const n = 10_000
	hs, c := newAPIServer(b)
	for i := range n {
		put(b, c, fmt.Sprintf("%s/meshes/default/meshtimeouts/mt-%05d", hs.URL, i), timeoutBody(i))
	}
	for _, size := range []int{100, 1000} {
		for _, offset := range []int{0, n - size} {
			b.Run(fmt.Sprintf("size=%d/offset=%d", size, offset), func(b *testing.B) {
				url := fmt.Sprintf("%s/meshes/default/meshtimeouts?size=%d&offset=%d", hs.URL, size, offset)
				var bytesRead int64
				for b.Loop() {
					res, err := c.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						b.Fatalf("GET: %d", res.StatusCode)
					}
					bytesRead += n
				}
				b.SetBytes(bytesRead / int64(b.N))
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "items/s")
			})
		}
	}
}
