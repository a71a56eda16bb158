package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// keys returns the index's keys in order, checking its invariants on the way.
func (x *index) keys(t *testing.T) []resource.Key {
	t.Helper()
	var out []resource.Key
	for c, ch := range x.chunks {
		require.NotEmpty(t, ch, "chunk %d is empty", c)
		require.LessOrEqual(t, len(ch), chunkSize, "chunk %d is over size", c)
		for _, e := range ch {
			out = append(out, e.key)
		}
	}
	require.Len(t, out, x.n, "n does not match the entries held")
	require.True(t, slices.IsSortedFunc(out, compareKeys), "entries are not sorted")
	return out
}

// TestIndexAgainstModel applies random inserts, removes and mesh removals to
// the index and to a sorted slice, checking they agree after every step and
// that positional walks (advance, ascend) match slice indexing.
func TestIndexAgainstModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed))
			var x index
			var model []resource.Key
			randomKey := func() resource.Key {
				return resource.Key{Mesh: fmt.Sprintf("m%d", rng.IntN(8)), Name: fmt.Sprintf("n%05d", rng.IntN(20_000))}
			}
			for step := range 30_000 {
				switch op := rng.IntN(100); {
				case op < 70 || len(model) == 0:
					k := randomKey()
					if i, found := slices.BinarySearchFunc(model, k, compareKeys); !found {
						model = slices.Insert(model, i, k)
						x.insert(entry{key: k})
					}
				case op < 99:
					k := model[rng.IntN(len(model))]
					i, _ := slices.BinarySearchFunc(model, k, compareKeys)
					model = slices.Delete(model, i, i+1)
					x.remove(k)
				default:
					mesh := fmt.Sprintf("m%d", rng.IntN(8))
					var want []resource.Key
					model = slices.DeleteFunc(model, func(k resource.Key) bool {
						if k.Mesh == mesh {
							want = append(want, k)
							return true
						}
						return false
					})
					var got []resource.Key
					for _, e := range x.removeMesh(mesh) {
						got = append(got, e.key)
					}
					require.Empty(t, cmp.Diff(want, got), "step %d: removeMesh(%q) returned other entries (-want +got)", step, mesh)
				}
				if step%997 == 0 || step == 29_999 {
					require.Empty(t, cmp.Diff(model, x.keys(t)), "step %d: index and model differ (-want +got)", step)
					for _, off := range []int{0, 1, chunkSize - 1, chunkSize, len(model) / 2, len(model) - 1, len(model)} {
						var first *resource.Key
						x.ascend(x.advance(pos{}, off), func(e *entry) bool { first = &e.key; return false })
						if off >= len(model) {
							require.Nil(t, first, "step %d: advance past the end (%d of %d) yields an entry", step, off, len(model))
						} else {
							require.NotNil(t, first, "step %d: advance(%d) of %d yields nothing", step, off, len(model))
							require.Equal(t, model[off], *first, "step %d: advance(%d)", step, off)
						}
					}
				}
			}
			require.Less(t, len(x.chunks), 2*len(model)/chunkSize+2, "chunks stay reasonably full after deletions")
		})
	}
}

func TestIndexSeekFindsMeshStart(t *testing.T) {
	var x index
	for i := range 3 * chunkSize {
		x.insert(entry{key: resource.Key{Mesh: fmt.Sprintf("m%d", i%3), Name: fmt.Sprintf("n%05d", i)}})
	}
	for _, m := range []string{"m0", "m1", "m2"} {
		p, found := x.seek(resource.Key{Mesh: m})
		require.False(t, found)
		var first resource.Key
		x.ascend(p, func(e *entry) bool { first = e.key; return false })
		require.Equal(t, m, first.Mesh, "seek to mesh %s lands on its first entry", m)
	}
	p, _ := x.seek(resource.Key{Mesh: "m9"})
	x.ascend(p, func(e *entry) bool { t.Fatalf("seek past every mesh yields %v", e.key); return false })
}

func TestIndexAppendInOrderFillsChunks(t *testing.T) {
	var x index
	for i := range 10 * chunkSize {
		x.insert(entry{key: resource.Key{Mesh: "m", Name: fmt.Sprintf("n%06d", i)}})
	}
	require.Len(t, x.chunks, 10, "keys inserted in order fill whole chunks")
}
