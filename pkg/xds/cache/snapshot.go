package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	gcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// typeURLs are the types a snapshot serves, in the order of snapshot.types.
var typeURLs = [...]string{
	resource.ListenerType,
	resource.RouteType,
	resource.ClusterType,
	resource.EndpointType,
	resource.SecretType,
}

func typeIndex(typeURL string) int {
	for i, t := range typeURLs {
		if t == typeURL {
			return i
		}
	}
	return -1
}

// snapshot is one proxy's resources, immutable once built. It implements
// go-control-plane's ResourceSnapshot with a version per type (a type whose
// content did not change keeps its version, so SotW clients are not sent it
// again) and per-resource content hashes computed once per shared resource
// (see hashes), which delta xDS compares.
type snapshot struct {
	types [len(typeURLs)]typeSet
}

type typeSet struct {
	version string
	// items and hashes are keyed by resource name.
	items  map[string]types.ResourceWithTTL
	hashes map[string]string
}

var _ gcache.ResourceSnapshot = (*snapshot)(nil)

// GetVersion returns the version of a type.
func (s *snapshot) GetVersion(typeURL string) string {
	if i := typeIndex(typeURL); i >= 0 {
		return s.types[i].version
	}
	return ""
}

// GetResourcesAndTTL returns the resources of a type; the map is shared and
// must not be changed.
func (s *snapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if i := typeIndex(typeURL); i >= 0 {
		return s.types[i].items
	}
	return nil
}

// GetResources returns the resources of a type in a new map.
func (s *snapshot) GetResources(typeURL string) map[string]types.Resource {
	i := typeIndex(typeURL)
	if i < 0 {
		return nil
	}
	out := make(map[string]types.Resource, len(s.types[i].items))
	for name, r := range s.types[i].items {
		out[name] = r.Resource
	}
	return out
}

// ConstructVersionMap does nothing: the hashes are computed when the
// snapshot is built.
func (s *snapshot) ConstructVersionMap() error { return nil }

// GetVersionMap returns the content hash of every resource of a type, by
// name; the map is shared and must not be changed.
func (s *snapshot) GetVersionMap(typeURL string) map[string]string {
	if i := typeIndex(typeURL); i >= 0 {
		return s.types[i].hashes
	}
	return nil
}

// each calls fn with every resource of the snapshot.
func (s *snapshot) each(fn func(types.Resource)) {
	for i := range s.types {
		for _, r := range s.types[i].items {
			fn(r.Resource)
		}
	}
}

// count returns the number of resources.
func (s *snapshot) count() int {
	n := 0
	for i := range s.types {
		n += len(s.types[i].items)
	}
	return n
}

// buildSnapshot turns res into a snapshot versioned by version. A type whose
// resources hash the same as in prev keeps prev's version for it; a changed
// type gets version (made distinct from prev's when the caller reused it).
// Every resource is acquired in memo; the caller releases prev's.
func buildSnapshot(res *translate.Resources, version string, prev *snapshot, memo *hashes) (*snapshot, error) {
	byType := res.ByType()
	s := &snapshot{}
	for i, typeURL := range typeURLs {
		list := byType[typeURL]
		ts := &s.types[i]
		ts.items = make(map[string]types.ResourceWithTTL, len(list))
		ts.hashes = make(map[string]string, len(list))
		for _, r := range list {
			name := gcache.GetResourceName(r)
			if name == "" {
				memo.releaseSnapshot(s)
				return nil, fmt.Errorf("a %s resource has no name", typeURL)
			}
			if _, dup := ts.items[name]; dup {
				memo.releaseSnapshot(s)
				return nil, fmt.Errorf("two %s resources are named %q", typeURL, name)
			}
			h, err := memo.acquire(r)
			if err != nil {
				memo.releaseSnapshot(s)
				return nil, fmt.Errorf("%s %q: %w", typeURL, name, err)
			}
			ts.items[name] = types.ResourceWithTTL{Resource: r}
			ts.hashes[name] = h
		}
		ts.version = version
		if prev != nil {
			old := &prev.types[i]
			switch {
			case sameHashes(old.hashes, ts.hashes):
				ts.version = old.version
			case old.version == version:
				// The content changed under an unchanged version: never
				// let two contents share a version.
				ts.version = version + "+" + typeHash(ts.hashes)
			}
		}
	}
	return s, nil
}

func sameHashes(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// typeHash is a short hash of a type's content.
func typeHash(hs map[string]string) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(hs)) {
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write([]byte(hs[name]))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:6])
}

// hashes memoizes the content hash of resources by identity, with a
// reference count per resource held by the snapshots using it. Resources are
// shared between proxies (the reconciler hands the same message to every
// proxy that needs it), so each is marshalled and hashed once, and every
// snapshot shares the same hash string. Resources must never be changed
// after they are published.
type hashes struct {
	mu      sync.Mutex
	entries map[types.Resource]*hashEntry
}

type hashEntry struct {
	refs int
	once sync.Once
	hash string
	err  error
}

func newHashes() *hashes { return &hashes{entries: map[types.Resource]*hashEntry{}} }

// acquire returns r's content hash and counts a reference to it.
func (m *hashes) acquire(r types.Resource) (string, error) {
	m.mu.Lock()
	e, ok := m.entries[r]
	if !ok {
		e = &hashEntry{}
		m.entries[r] = e
	}
	e.refs++
	m.mu.Unlock()
	e.once.Do(func() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			e.err = fmt.Errorf("marshalling: %w", err)
			return
		}
		sum := sha256.Sum256(b)
		e.hash = hex.EncodeToString(sum[:12])
	})
	if e.err != nil {
		m.release(r)
		return "", e.err
	}
	return e.hash, nil
}

// release drops one reference to r.
func (m *hashes) release(r types.Resource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[r]; ok {
		e.refs--
		if e.refs <= 0 {
			delete(m.entries, r)
		}
	}
}

// releaseSnapshot drops the references of every resource of s.
func (m *hashes) releaseSnapshot(s *snapshot) {
	if s == nil {
		return
	}
	s.each(m.release)
}

// len returns the number of distinct resources referenced.
func (m *hashes) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}
