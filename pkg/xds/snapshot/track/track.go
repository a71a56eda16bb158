// Package track keeps a snapshot.Snapshot of every mesh current from a
// store's change events: hop 2 of the xDS pipeline at run time (see package
// snapshot for what a snapshot holds and how batches are chosen). It is a
// package of its own so that the snapshot model, which policies use, does
// not depend on the store.
package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// Defaults of Options.
const (
	// DefaultQuiet is how long a burst of events must pause before it is
	// applied (see Options.Quiet).
	DefaultQuiet = 10 * time.Millisecond
	// DefaultMaxDelay bounds how long the first event of a burst waits.
	DefaultMaxDelay = 100 * time.Millisecond
	// DefaultRelistInterval is how often everything is listed again as a
	// safety net against lost events.
	DefaultRelistInterval = 10 * time.Minute
)

// Reader is the part of a store.ResourceStore the Tracker reads.
type Reader interface {
	// Get returns one resource or an error matching store.ErrNotFound.
	Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error)
	// List returns resources of one type.
	List(ctx context.Context, typ string, opts store.ListOptions) (store.ListResult, error)
	// Watch streams change events until ctx ends.
	Watch(ctx context.Context) <-chan store.Event
}

// Options tune a Tracker. Zero values select the defaults.
type Options struct {
	// Quiet is the pause that ends a burst: changes are applied once no
	// event arrived for this long.
	Quiet time.Duration
	// MaxDelay bounds the wait of a burst's first event, so a steady stream
	// of writes still produces snapshots.
	MaxDelay time.Duration
	// RelistInterval is how often every mesh is listed again from the
	// store (a safety net; Resync events also trigger it). Negative
	// disables it.
	RelistInterval time.Duration
	// Registerer receives the tracker's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Tracker keeps one snapshot.Snapshot per mesh current from store events. It reads
// every mesh once at start, then applies events in batches: a batch ends
// when events pause for Options.Quiet or when its first event has waited
// Options.MaxDelay. Each batch re-reads only the resources its events name
// and derives again only the services they touch; a Resync event (or the
// periodic relist) lists everything again and publishes only the meshes
// whose content hash changed.
//
// A Tracker has one consumer, which learns about new snapshots through
// Changed and TakeUpdates; any goroutine may call Snapshot.
type Tracker struct {
	store       Reader
	log         *slog.Logger
	opts        Options
	policyTypes []string
	relevant    map[string]bool

	states map[string]*snapshot.Builder // owned by the Start goroutine
	gen    uint64

	mu      sync.RWMutex
	snaps   map[string]*snapshot.Snapshot
	pending map[string]*snapshot.Update

	changed   chan struct{}
	ready     chan struct{}
	readyOnce sync.Once

	batches prometheus.Counter
	events  prometheus.Counter
	relists prometheus.Counter
	applyD  prometheus.Histogram
}

// New returns a Tracker of the meshes in st; reg says which policy
// types exist (every descriptor with a Policy shape is tracked).
func New(st Reader, reg *resource.Registry, log *slog.Logger, opts Options) *Tracker {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.RelistInterval == 0 {
		opts.RelistInterval = DefaultRelistInterval
	}
	t := &Tracker{
		store: st, log: log, opts: opts,
		relevant: map[string]bool{resource.MeshType: true, resource.DataplaneType: true, resource.MeshServiceType: true, resource.SecretType: true},
		states:   map[string]*snapshot.Builder{},
		snaps:    map[string]*snapshot.Snapshot{},
		pending:  map[string]*snapshot.Update{},
		changed:  make(chan struct{}, 1),
		ready:    make(chan struct{}),
		batches:  prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_snapshot_batches_total", Help: "Batches of store events applied to mesh snapshots."}),
		events:   prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_snapshot_events_total", Help: "Store events the snapshot tracker received for the types it tracks."}),
		relists:  prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_snapshot_relists_total", Help: "Full re-reads of every mesh (start, Resync events, safety-net interval)."}),
		applyD: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "atoll_xds_snapshot_apply_seconds", Help: "Time to apply one batch of events and publish the new snapshots.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
	}
	for _, d := range reg.All() {
		if d.IsPolicy() && d.Scope == resource.ScopeMesh {
			t.policyTypes = append(t.policyTypes, d.Name)
			t.relevant[d.Name] = true
		}
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{t.batches, t.events, t.relists, t.applyD} {
			if err := opts.Registerer.Register(c); err != nil {
				log.Warn("registering snapshot metric", "error", err)
			}
		}
	}
	return t
}

// Snapshot returns the current snapshot of a mesh, or nil when the mesh is
// unknown (or not loaded yet).
func (t *Tracker) Snapshot(mesh string) *snapshot.Snapshot {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.snaps[mesh]
}

// Meshes returns the names of every known mesh, sorted.
func (t *Tracker) Meshes() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Sorted(maps.Keys(t.snaps))
}

// Ready is closed once every mesh has been loaded.
func (t *Tracker) Ready() <-chan struct{} { return t.ready }

// Changed receives a value when updates are waiting for TakeUpdates. It
// never blocks the tracker: several changes may be signalled once.
func (t *Tracker) Changed() <-chan struct{} { return t.changed }

// TakeUpdates returns, per mesh that changed since the last call, the
// snapshot the caller saw last, the current one and what differs, sorted by
// mesh. Meshes that changed back to what the caller saw are left out.
func (t *Tracker) TakeUpdates() []snapshot.Update {
	t.mu.Lock()
	pending := t.pending
	t.pending = map[string]*snapshot.Update{}
	t.mu.Unlock()
	out := make([]snapshot.Update, 0, len(pending))
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		u := pending[name]
		if u.Old != nil && u.New != nil && u.Old.Hash() == u.New.Hash() {
			continue
		}
		u.Delta = snapshot.Diff(u.Old, u.New)
		out = append(out, *u)
	}
	return out
}

// publish makes snap (nil: deleted) the current snapshot of mesh and queues
// an update for the consumer.
func (t *Tracker) publish(mesh string, snap *snapshot.Snapshot) {
	t.mu.Lock()
	old := t.snaps[mesh]
	if snap == nil {
		delete(t.snaps, mesh)
	} else {
		t.snaps[mesh] = snap
	}
	if u, ok := t.pending[mesh]; ok {
		u.New = snap
	} else {
		t.pending[mesh] = &snapshot.Update{Mesh: mesh, Old: old, New: snap}
	}
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// key of a pending change.
type change struct {
	typ string
	key resource.Key
}

// Start loads every mesh, then applies store events until ctx ends. It
// returns nil when ctx ends.
func (t *Tracker) Start(ctx context.Context) error {
	events := t.store.Watch(ctx) // subscribe first: nothing written after the list is missed
	for {
		err := t.relist(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		t.log.Warn("loading meshes failed; retrying", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	t.readyOnce.Do(func() { close(t.ready) })

	var relistC <-chan time.Time
	if t.opts.RelistInterval > 0 {
		tick := time.NewTicker(t.opts.RelistInterval)
		defer tick.Stop()
		relistC = tick.C
	}
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	deadline := time.NewTimer(time.Hour)
	deadline.Stop()
	batch := map[change]struct{}{}
	resync, started := false, false
	flush := func() {
		quiet.Stop()
		deadline.Stop()
		started = false
		if resync {
			resync = false
			clear(batch)
			if err := t.relist(ctx); err != nil && ctx.Err() == nil {
				t.log.Warn("re-listing meshes failed; retrying soon", "error", err)
				resync, started = true, true
				deadline.Reset(time.Second)
			}
			return
		}
		if err := t.apply(ctx, batch); err != nil && ctx.Err() == nil {
			t.log.Warn("applying store events failed; re-listing", "error", err)
			resync, started = true, true
			deadline.Reset(time.Second)
		}
		clear(batch)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch {
			case ev.Kind == store.Resync:
				resync = true
			case t.relevant[ev.Type]:
				batch[change{ev.Type, ev.Key}] = struct{}{}
			default:
				continue
			}
			t.events.Inc()
			quiet.Reset(t.opts.Quiet)
			if !started {
				started = true
				deadline.Reset(t.opts.MaxDelay)
			}
		case <-quiet.C:
			flush()
		case <-deadline.C:
			flush()
		case <-relistC:
			resync = true
			flush()
		}
	}
}

// apply re-reads what a batch of events names and publishes the meshes it
// changed.
func (t *Tracker) apply(ctx context.Context, batch map[change]struct{}) error {
	start := time.Now()
	defer func() { t.applyD.Observe(time.Since(start).Seconds()) }()
	t.batches.Inc()
	byMesh := map[string][]change{}
	for c := range batch {
		mesh := c.key.Mesh
		if c.typ == resource.MeshType {
			mesh = c.key.Name
		}
		byMesh[mesh] = append(byMesh[mesh], c)
	}
	var errs []error
	for _, mesh := range slices.Sorted(maps.Keys(byMesh)) {
		if err := t.applyMesh(ctx, mesh, byMesh[mesh]); err != nil {
			errs = append(errs, fmt.Errorf("mesh %q: %w", mesh, err))
		}
	}
	return errors.Join(errs...)
}

func (t *Tracker) applyMesh(ctx context.Context, mesh string, changes []change) error {
	st := t.states[mesh]
	if slices.ContainsFunc(changes, func(c change) bool { return c.typ == resource.MeshType }) {
		res, err := t.store.Get(ctx, resource.MeshType, resource.Key{Name: mesh})
		switch {
		case errors.Is(err, store.ErrNotFound):
			if st != nil {
				delete(t.states, mesh)
				t.publish(mesh, nil)
			}
			return nil
		case err != nil:
			return err
		case st == nil:
			return t.load(ctx, mesh)
		}
		if err := st.SetMesh(res); err != nil {
			return err
		}
	}
	if st == nil {
		return nil // contents of a mesh that is gone, or not loaded yet
	}
	for _, c := range changes {
		if c.typ == resource.MeshType {
			continue
		}
		res, err := t.store.Get(ctx, c.typ, c.key)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := st.Set(c.typ, c.key.Name, res); err != nil {
			t.log.Warn("ignoring a resource the snapshot cannot hold", "type", c.typ, "key", c.key.String(), "error", err)
		}
	}
	if st.Changed() {
		t.gen++
		t.publish(mesh, st.Snapshot(t.gen))
	}
	return nil
}

// load reads one whole mesh into a new state and publishes it.
func (t *Tracker) load(ctx context.Context, mesh string) error {
	st, err := t.read(ctx, mesh)
	if err != nil || st == nil {
		return err
	}
	t.states[mesh] = st
	t.gen++
	t.publish(mesh, st.Snapshot(t.gen))
	return nil
}

// read reads one whole mesh; nil when the mesh does not exist.
func (t *Tracker) read(ctx context.Context, mesh string) (*snapshot.Builder, error) {
	res, err := t.store.Get(ctx, resource.MeshType, resource.Key{Name: mesh})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := snapshot.NewBuilder(mesh, t.policyTypes)
	if err := st.SetMesh(res); err != nil {
		return nil, err
	}
	types := append([]string{resource.DataplaneType, resource.MeshServiceType, resource.SecretType}, t.policyTypes...)
	for _, typ := range types {
		list, err := t.store.List(ctx, typ, store.ListOptions{Mesh: mesh})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", typ, err)
		}
		for _, r := range list.Items {
			if err := st.Set(typ, r.Meta.Name, r); err != nil {
				t.log.Warn("ignoring a resource the snapshot cannot hold", "type", typ, "key", r.Key().String(), "error", err)
			}
		}
	}
	return st, nil
}

// relist reads every mesh again, replacing the states, and publishes the
// meshes whose content changed (and the deletion of those that are gone).
func (t *Tracker) relist(ctx context.Context) error {
	t.relists.Inc()
	list, err := t.store.List(ctx, resource.MeshType, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing meshes: %w", err)
	}
	seen := map[string]bool{}
	for _, m := range list.Items {
		name := m.Meta.Name
		st, err := t.read(ctx, name)
		if err != nil {
			return fmt.Errorf("reading mesh %q: %w", name, err)
		}
		if st == nil {
			continue // deleted since the list
		}
		seen[name] = true
		t.gen++
		snap := st.Snapshot(t.gen)
		t.states[name] = st
		if cur := t.Snapshot(name); cur == nil || cur.Hash() != snap.Hash() {
			t.publish(name, snap)
		}
	}
	for name := range t.states {
		if !seen[name] {
			delete(t.states, name)
			t.publish(name, nil)
		}
	}
	return nil
}
