// Package memory is the in-memory ResourceStore: the zero-configuration
// default for a standalone control plane. It keeps one sorted index per type,
// copies resources on write, shares them on read, and publishes change events
// through an events.Broker. State lives only as long as the process.
package memory

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/events"
)

// Store keeps resources in memory. It is safe for concurrent use.
type Store struct {
	reg    *resource.Registry
	now    func() time.Time
	broker *events.Broker

	// mu guards everything below. Writers publish their events while still
	// holding it, so events leave in commit order, and a subscriber that
	// reads after receiving an event sees the change.
	mu      sync.RWMutex
	version uint64
	tables  map[string]*table
}

// table holds the resources of one type.
type table struct {
	desc   *resource.Descriptor
	byKey  map[resource.Key]*resource.Resource
	sorted index
	// perMesh counts resources per mesh, so an unfiltered page of one mesh
	// needs no scan to report its total.
	perMesh map[string]int
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock that stamps CreationTime and ModificationTime
// (converted to UTC); tests use it to get predictable times.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithEventQueueSize sets how many events each Watch subscriber may have
// queued before it is sent a store.Resync instead (default
// events.DefaultQueueSize).
func WithEventQueueSize(n int) Option {
	return func(s *Store) { s.broker = events.NewBroker(n) }
}

// New returns an empty store for the types in reg.
func New(reg *resource.Registry, opts ...Option) *Store {
	s := &Store{reg: reg, now: time.Now, tables: map[string]*table{}}
	for _, o := range opts {
		o(s)
	}
	if s.broker == nil {
		s.broker = events.NewBroker(events.DefaultQueueSize)
	}
	for _, d := range reg.All() {
		s.tables[d.Name] = &table{desc: d, byKey: map[resource.Key]*resource.Resource{}, perMesh: map[string]int{}}
	}
	return s
}

var _ store.ResourceStore = (*Store)(nil)

// table returns the table of typ or an error naming the known types.
func (s *Store) table(typ string) (*table, error) {
	t, ok := s.tables[typ]
	if !ok {
		return nil, fmt.Errorf("memory store: unknown resource type %q (known: %v)", typ, s.reg.Names())
	}
	return t, nil
}

// nextVersion advances the store's write counter; the caller holds mu.
func (s *Store) nextVersion() string {
	s.version++
	return strconv.FormatUint(s.version, 10)
}

// copyIn clones res for storing, after checking its type and key.
func (s *Store) copyIn(res *resource.Resource) (*table, *resource.Resource, error) {
	if res == nil {
		return nil, nil, fmt.Errorf("memory store: nil resource")
	}
	t, err := s.table(res.Type)
	if err != nil {
		return nil, nil, err
	}
	if err := store.CheckKey(t.desc, res.Key()); err != nil {
		return nil, nil, fmt.Errorf("memory store: %w", err)
	}
	c, err := resource.Clone(t.desc, res)
	if err != nil {
		return nil, nil, fmt.Errorf("memory store: %w", err)
	}
	return t, c, nil
}

// Create stores a copy of res with a new version and both times set to now.
func (s *Store) Create(ctx context.Context, res *resource.Resource) (*resource.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Clone outside the lock: it is the costly part of a write.
	t, c, err := s.copyIn(res)
	if err != nil {
		return nil, err
	}
	key := c.Key()

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := t.byKey[key]; taken {
		return nil, store.AlreadyExists(c.Type, key)
	}
	now := s.now().UTC()
	c.Meta.Version = s.nextVersion()
	c.Meta.CreationTime, c.Meta.ModificationTime = now, now
	t.byKey[key] = c
	t.sorted.insert(entry{key: key, labels: packLabels(c.Meta.Labels), res: c})
	t.perMesh[key.Mesh]++
	s.broker.Publish(store.Event{Kind: store.Created, Type: c.Type, Key: key, Version: c.Meta.Version})
	return c, nil
}

// Update replaces the stored resource with a copy of res when
// res.Meta.Version is the stored version, keeping CreationTime.
func (s *Store) Update(ctx context.Context, res *resource.Resource) (*resource.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, c, err := s.copyIn(res)
	if err != nil {
		return nil, err
	}
	key := c.Key()

	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := t.byKey[key]
	if !ok {
		return nil, store.NotFound(c.Type, key)
	}
	if old.Meta.Version != res.Meta.Version {
		return nil, store.Conflict(c.Type, key)
	}
	c.Meta.Version = s.nextVersion()
	c.Meta.CreationTime = old.Meta.CreationTime
	c.Meta.ModificationTime = s.now().UTC()
	t.byKey[key] = c
	t.sorted.set(entry{key: key, labels: packLabels(c.Meta.Labels), res: c})
	s.broker.Publish(store.Event{Kind: store.Updated, Type: c.Type, Key: key, Version: c.Meta.Version})
	return c, nil
}

// Delete removes a resource; deleting a Mesh also removes every resource in
// that mesh, in the same critical section. Deleted events for the mesh's
// resources come first (by type name, then key), then the Mesh's own.
func (s *Store) Delete(ctx context.Context, typ string, key resource.Key, opts store.DeleteOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := s.table(typ)
	if err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := t.byKey[key]
	if !ok {
		return store.NotFound(typ, key)
	}
	if opts.Version != "" && opts.Version != cur.Meta.Version {
		return store.Conflict(typ, key)
	}
	if typ == resource.MeshType {
		s.deleteMeshContents(key.Name)
	}
	t.remove(key)
	s.broker.Publish(store.Event{Kind: store.Deleted, Type: typ, Key: key})
	return nil
}

// deleteMeshContents removes every mesh-scoped resource of mesh and
// publishes their Deleted events; the caller holds mu for writing.
func (s *Store) deleteMeshContents(mesh string) {
	for _, d := range s.reg.All() { // sorted by name: a stable event order
		if d.Scope != resource.ScopeMesh {
			continue
		}
		t := s.tables[d.Name]
		if t.perMesh[mesh] == 0 {
			continue
		}
		for _, e := range t.sorted.removeMesh(mesh) {
			delete(t.byKey, e.key)
			s.broker.Publish(store.Event{Kind: store.Deleted, Type: d.Name, Key: e.key})
		}
		delete(t.perMesh, mesh)
	}
}

// remove drops key from every structure of t.
func (t *table) remove(key resource.Key) {
	delete(t.byKey, key)
	t.sorted.remove(key)
	if t.perMesh[key.Mesh]--; t.perMesh[key.Mesh] == 0 {
		delete(t.perMesh, key.Mesh)
	}
}

// Get returns the stored resource, shared: callers must not change it.
func (s *Store) Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := s.table(typ)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	res, ok := t.byKey[key]
	if !ok {
		return nil, store.NotFound(typ, key)
	}
	return res, nil
}

// List returns one page of the resources of typ that match opts, ordered by
// mesh then name (byte-wise). Without label or name filters a page costs
// O(size + n/512) whatever its offset; with them, one pass over the
// candidate range (the mesh, or the whole type) to count every match.
func (s *Store) List(ctx context.Context, typ string, opts store.ListOptions) (store.ListResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ListResult{}, err
	}
	if opts.Offset < 0 || opts.Size < 0 {
		return store.ListResult{}, fmt.Errorf("memory store: listing %s: offset (%d) and size (%d) must not be negative", typ, opts.Offset, opts.Size)
	}
	t, err := s.table(typ)
	if err != nil {
		return store.ListResult{}, err
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	start := pos{}
	if opts.Mesh != "" {
		start, _ = t.sorted.seek(resource.Key{Mesh: opts.Mesh})
	}
	f := newFilter(opts)
	out := store.ListResult{Items: []*resource.Resource{}}

	if f.trivial() {
		out.Total = t.sorted.n
		if opts.Mesh != "" {
			out.Total = t.perMesh[opts.Mesh]
		}
		want := max(out.Total-opts.Offset, 0)
		if opts.Size > 0 {
			want = min(want, opts.Size)
		}
		if want > 0 {
			out.Items = make([]*resource.Resource, 0, want)
			t.sorted.ascend(t.sorted.advance(start, opts.Offset), func(e *entry) bool {
				out.Items = append(out.Items, e.res)
				return len(out.Items) < want
			})
		}
	} else {
		if opts.Size > 0 {
			out.Items = make([]*resource.Resource, 0, min(opts.Size, t.sorted.n))
		}
		t.sorted.ascend(start, func(e *entry) bool {
			if opts.Mesh != "" && e.key.Mesh != opts.Mesh {
				return false // past the mesh: entries are ordered by mesh first
			}
			if !f.match(e) {
				return true
			}
			if out.Total >= opts.Offset && (opts.Size == 0 || len(out.Items) < opts.Size) {
				out.Items = append(out.Items, e.res)
			}
			out.Total++
			return true
		})
	}

	out.NextOffset = -1
	if opts.Size > 0 && opts.Offset+opts.Size < out.Total {
		out.NextOffset = opts.Offset + opts.Size
	}
	return out, nil
}

// Watch streams change events until ctx ends; see events.Broker.Subscribe.
func (s *Store) Watch(ctx context.Context) <-chan store.Event {
	return s.broker.Subscribe(ctx)
}
