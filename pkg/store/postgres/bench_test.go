package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
)

// BenchmarkCreate measures Create throughput, one writer and one writer per
// pool connection.
func BenchmarkCreate(b *testing.B) {
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		b.ResetTimer()
		for i := range b.N {
			if _, err := s.Create(ctx, service("m", fmt.Sprintf("svc-%d", i), map[string]string{"app": "x"})); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s := newStore(b)
		var n atomic.Int64
		b.SetParallelism(4) // 4×GOMAXPROCS writers share the 10-connection pool
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1)
				if _, err := s.Create(ctx, service("m", fmt.Sprintf("svc-%d", i), map[string]string{"app": "x"})); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	})
}

// BenchmarkList measures one paginated List over 100,000 MeshServices (100
// meshes × 1,000), near the start and near the end, with page sizes 100
// and 1,000, plus a label-filtered page.
func BenchmarkList(b *testing.B) {
	const meshes, perMesh = 100, 1000
	const total = meshes * perMesh
	ctx := context.Background()
	s := newStore(b)
	loadServices(b, s, meshes, perMesh)

	for _, size := range []int{100, 1000} {
		for _, at := range []struct {
			name   string
			offset int
		}{{"start", 0}, {"end", total - size}} {
			b.Run(fmt.Sprintf("size=%d/%s", size, at.name), func(b *testing.B) {
				for range b.N {
					res, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Offset: at.offset, Size: size})
					if err != nil {
						b.Fatal(err)
					}
					if len(res.Items) != size || res.Total != total {
						b.Fatalf("got %d items of %d", len(res.Items), res.Total)
					}
				}
			})
		}
	}
	b.Run("size=100/mesh-filter/end", func(b *testing.B) {
		for range b.N {
			res, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Mesh: "mesh-099", Offset: perMesh - 100, Size: 100})
			if err != nil || len(res.Items) != 100 {
				b.Fatal(err, len(res.Items))
			}
		}
	})
	b.Run("size=100/label-filter/start", func(b *testing.B) {
		for range b.N {
			res, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Labels: map[string]string{"shard": "7"}, Size: 100})
			if err != nil || len(res.Items) != 100 || res.Total != total/10 {
				b.Fatal(err, len(res.Items), res.Total)
			}
		}
	})
}

// loadServices bulk-loads MeshServices with COPY, bypassing the change
// triggers (a fixture, not writes to announce).
func loadServices(b *testing.B, s *postgres.Store, meshes, perMesh int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	spec, err := json.Marshal(service("x", "x", nil).Spec)
	require.NoError(b, err)
	now := time.Now()
	rows := make([][]any, 0, meshes*perMesh)
	for m := range meshes {
		for i := range perMesh {
			labels, _ := json.Marshal(map[string]string{"shard": fmt.Sprint(i % 10), "kuma.io/zone": "z1"})
			rows = append(rows, []any{resource.MeshServiceType, fmt.Sprintf("mesh-%03d", m), fmt.Sprintf("svc-%05d", i),
				int64(len(rows) + 1), spec, labels, now, now})
		}
	}
	conn, err := s.Pool().Acquire(ctx)
	require.NoError(b, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, "SET session_replication_role = replica") // no triggers: a fixture
	require.NoError(b, err)
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"atoll_resources"},
		[]string{"type", "mesh", "name", "version", "spec", "labels", "creation_time", "modification_time"},
		pgx.CopyFromRows(rows))
	require.NoError(b, err)
	require.Equal(b, int64(len(rows)), n)
	_, err = conn.Exec(ctx, "RESET session_replication_role")
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "VACUUM (FREEZE, ANALYZE, VERBOSE) atoll_resources") // steady state, as after autovacuum
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "SELECT setval('atoll_resource_version', $1)", n)
	require.NoError(b, err)
	b.Logf("loaded %d resources in %s", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkEventDelay measures how long a write takes to reach Watch
// subscribers: from the start of Create to the event's arrival, on the
// writing instance and on another instance sharing the database, with one
// and with 100 subscribers (the slowest subscriber counts).
func BenchmarkEventDelay(b *testing.B) {
	for _, subs := range []int{1, 100} {
		for _, where := range []string{"same-instance", "other-instance"} {
			b.Run(fmt.Sprintf("subscribers=%d/%s", subs, where), func(b *testing.B) {
				benchEventDelay(b, subs, where == "other-instance")
			})
		}
	}
}

func benchEventDelay(b *testing.B, subs int, other bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := configFor(pg.NewDatabase(b))
	migrate(b, cfg)
	reg := testRegistry(b)
	writer := openStore(b, cfg, reg)
	watcher := writer
	if other {
		watcher = openStore(b, cfg, reg)
	}
	chans := make([]<-chan store.Event, subs)
	for i := range chans {
		chans[i] = watcher.Watch(ctx)
	}
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		created, err := writer.Create(ctx, service("m", fmt.Sprintf("svc-%d", i), nil))
		if err != nil {
			b.Fatal(err)
		}
		for _, ch := range chans {
			for {
				e := <-ch
				if e.Kind == store.Created && e.Key == created.Key() {
					break
				}
			}
		}
		delays = append(delays, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(delays)
	pct := func(p float64) float64 { return float64(delays[int(p*float64(len(delays)-1))].Microseconds()) }
	b.ReportMetric(pct(0.5), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
