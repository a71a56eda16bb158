package memory_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
)

const benchMeshes = 10

// filled returns a store holding n dataplanes spread over benchMeshes
// meshes, created in an order unrelated to their key order.
func filled(b *testing.B, n int) *memory.Store {
	b.Helper()
	s := memory.New(registry(b))
	for i := range n {
		j := (i * 7919) % n // a permutation of 0..n-1 (7919 is prime and does not divide n)
		labels := map[string]string{"app": fmt.Sprintf("app-%d", j%50), "env": []string{"dev", "prod"}[j%2]}
		_, err := s.Create(b.Context(), newDataplane(fmt.Sprintf("mesh-%d", j%benchMeshes), fmt.Sprintf("dp-%06d", j), labels))
		require.NoError(b, err)
	}
	return s
}

// BenchmarkCreate measures one Create into a store that already holds
// size dataplanes (Create's cost is dominated by the defensive copy).
func BenchmarkCreate(b *testing.B) {
	for _, size := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("existing=%d", size), func(b *testing.B) {
			s := filled(b, size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				_, err := s.Create(b.Context(), newDataplane(fmt.Sprintf("mesh-%d", i%benchMeshes), fmt.Sprintf("new-%09d", i), nil))
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdate measures Update of one resource among 100,000.
func BenchmarkUpdate(b *testing.B) {
	s := filled(b, 100_000)
	cur, err := s.Get(b.Context(), resource.DataplaneType, resource.Key{Mesh: "mesh-3", Name: "dp-000013"})
	require.NoError(b, err)
	reg := registry(b)
	b.ReportAllocs()
	for b.Loop() {
		next, err := reg.Clone(cur)
		if err != nil {
			b.Fatal(err)
		}
		if cur, err = s.Update(b.Context(), next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet measures Get of one resource among 100,000.
func BenchmarkGet(b *testing.B) {
	s := filled(b, 100_000)
	key := resource.Key{Mesh: "mesh-3", Name: "dp-000013"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(b.Context(), resource.DataplaneType, key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList measures typical REST pages and full listings at 10,000 and
// 100,000 dataplanes of one type.
func BenchmarkList(b *testing.B) {
	for _, size := range []int{10_000, 100_000} {
		s := filled(b, size)
		cases := []struct {
			name string
			opts store.ListOptions
		}{
			{"page100/first", store.ListOptions{Size: 100}},
			{"page100/middle", store.ListOptions{Offset: size / 2, Size: 100}},
			{"page100/mesh", store.ListOptions{Mesh: "mesh-7", Offset: size / benchMeshes / 2, Size: 100}},
			{"page100/labels", store.ListOptions{Labels: map[string]string{"app": "app-7", "env": "dev"}, Offset: 50, Size: 100}},
			{"page100/mesh+labels", store.ListOptions{Mesh: "mesh-7", Labels: map[string]string{"env": "dev"}, Size: 100}},
			{"page100/nameContains", store.ListOptions{NameContains: "77", Size: 100}},
			{"all/mesh", store.ListOptions{Mesh: "mesh-7"}},
			{"all", store.ListOptions{}},
		}
		for _, c := range cases {
			b.Run(fmt.Sprintf("n=%d/%s", size, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.List(b.Context(), resource.DataplaneType, c.opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
