package memory

import (
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// chunkSize bounds the entries of one index chunk. Inserting or removing
// moves at most this many entries; walking to an offset visits at most
// n/chunkSize*2 chunks.
const chunkSize = 512

// entry is one stored resource as the index holds it: by value, with what
// List filters on (key and packed labels) inline, so a filtered scan reads
// the chunk sequentially instead of chasing a pointer per field.
type entry struct {
	key    resource.Key
	labels packedLabels
	res    *resource.Resource
}

// compareKeys orders keys by mesh, then name, comparing bytes.
func compareKeys(a, b resource.Key) int {
	if c := strings.Compare(a.Mesh, b.Mesh); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// index keeps the entries of one type sorted by key, in chunks of at most
// chunkSize: a one-level B+ tree. It is not safe for concurrent use.
type index struct {
	chunks [][]entry
	n      int
}

// pos is a position in an index: chunk c, element i.
type pos struct{ c, i int }

// seek returns where k is, or where it would be inserted.
func (x *index) seek(k resource.Key) (p pos, found bool) {
	if len(x.chunks) == 0 {
		return pos{}, false
	}
	// The first chunk whose last key is >= k holds k if anything does.
	c, _ := slices.BinarySearchFunc(x.chunks, k, func(ch []entry, k resource.Key) int {
		return compareKeys(ch[len(ch)-1].key, k)
	})
	if c == len(x.chunks) {
		c--
		return pos{c, len(x.chunks[c])}, false
	}
	i, found := slices.BinarySearchFunc(x.chunks[c], k, func(e entry, k resource.Key) int {
		return compareKeys(e.key, k)
	})
	return pos{c, i}, found
}

// insert adds e, whose key must not be present.
func (x *index) insert(e entry) {
	x.n++
	if len(x.chunks) == 0 {
		x.chunks = append(x.chunks, newChunk(e))
		return
	}
	p, _ := x.seek(e.key)
	ch := x.chunks[p.c]
	if len(ch) < chunkSize {
		x.chunks[p.c] = slices.Insert(ch, p.i, e)
		return
	}
	if p.c == len(x.chunks)-1 && p.i == len(ch) {
		// Appending in key order (bulk loads) fills chunks completely
		// instead of leaving a trail of half-full ones.
		x.chunks = append(x.chunks, newChunk(e))
		return
	}
	// Split the full chunk in two halves, then insert into the right one.
	half := len(ch) / 2
	right := append(make([]entry, 0, chunkSize), ch[half:]...)
	clear(ch[half:]) // drop references the left half no longer holds
	left := ch[:half]
	if p.i <= half {
		left = slices.Insert(left, p.i, e)
	} else {
		right = slices.Insert(right, p.i-half, e)
	}
	x.chunks[p.c] = left
	x.chunks = slices.Insert(x.chunks, p.c+1, right)
}

func newChunk(e entry) []entry {
	ch := make([]entry, 1, chunkSize)
	ch[0] = e
	return ch
}

// set replaces the entry with e's key, which must be present.
func (x *index) set(e entry) {
	p, found := x.seek(e.key)
	if !found {
		panic("memory store: index lost key " + e.key.String())
	}
	x.chunks[p.c][p.i] = e
}

// remove deletes the entry with key k, if present.
func (x *index) remove(k resource.Key) {
	p, found := x.seek(k)
	if !found {
		return
	}
	x.n--
	x.chunks[p.c] = slices.Delete(x.chunks[p.c], p.i, p.i+1)
	x.compact(p.c)
}

// removeMesh deletes every entry whose key is in mesh and returns them in
// key order. They are contiguous, so this costs O(removed + chunks).
func (x *index) removeMesh(mesh string) []entry {
	var out []entry
	p, _ := x.seek(resource.Key{Mesh: mesh})
	for p.c < len(x.chunks) {
		ch := x.chunks[p.c]
		end := p.i
		for end < len(ch) && ch[end].key.Mesh == mesh {
			end++
		}
		out = append(out, ch[p.i:end]...)
		x.chunks[p.c] = slices.Delete(ch, p.i, end)
		if end < len(ch) {
			break // the next key belongs to a later mesh
		}
		if len(x.chunks[p.c]) == 0 {
			x.chunks = slices.Delete(x.chunks, p.c, p.c+1)
		} else {
			p = pos{p.c + 1, 0}
		}
	}
	x.n -= len(out)
	if p.c < len(x.chunks) {
		x.compact(p.c)
	}
	if p.c > 0 && p.c-1 < len(x.chunks) {
		x.compact(p.c - 1)
	}
	return out
}

// compact drops chunk c when empty and merges it into a neighbour when it
// has become small, so the chunk count stays near n/chunkSize.
func (x *index) compact(c int) {
	ch := x.chunks[c]
	switch {
	case len(ch) == 0:
		x.chunks = slices.Delete(x.chunks, c, c+1)
	case len(ch) < chunkSize/4 && c+1 < len(x.chunks) && len(ch)+len(x.chunks[c+1]) <= chunkSize:
		x.chunks[c] = append(ch, x.chunks[c+1]...)
		x.chunks = slices.Delete(x.chunks, c+1, c+2)
	case len(ch) < chunkSize/4 && c > 0 && len(ch)+len(x.chunks[c-1]) <= chunkSize:
		x.chunks[c-1] = append(x.chunks[c-1], ch...)
		x.chunks = slices.Delete(x.chunks, c, c+1)
	}
}

// advance returns the position n entries after p (possibly the end).
func (x *index) advance(p pos, n int) pos {
	for n > 0 && p.c < len(x.chunks) {
		left := len(x.chunks[p.c]) - p.i
		if n < left {
			p.i += n
			return p
		}
		n -= left
		p = pos{p.c + 1, 0}
	}
	return x.normalize(p)
}

// normalize moves a position at the end of a chunk to the next chunk's start.
func (x *index) normalize(p pos) pos {
	for p.c < len(x.chunks) && p.i >= len(x.chunks[p.c]) {
		p = pos{p.c + 1, 0}
	}
	return p
}

// ascend calls fn for each entry from p on, in key order, until fn returns
// false. fn gets a pointer into the index, valid until the next change.
func (x *index) ascend(p pos, fn func(*entry) bool) {
	for c := p.c; c < len(x.chunks); c++ {
		start := 0
		if c == p.c {
			start = p.i
		}
		ch := x.chunks[c]
		for i := start; i < len(ch); i++ {
			if !fn(&ch[i]) {
				return
			}
		}
	}
}
