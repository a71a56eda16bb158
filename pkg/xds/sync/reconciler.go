// Package sync is the reconciler between the mesh snapshots (hop 2) and the
// xDS cache (hop 5): it decides which connected proxies need new
// configuration, builds (hop 3) and translates (hop 4) it, and publishes the
// result with a content-hash version.
//
// # Event-driven and dependency-scoped
//
// Work starts from events, never from polling: snapshot updates (with their
// Delta), proxies connecting or disconnecting, certificates due for
// renewal, and, as a safety net only, a slow periodic resync. Each update
// regenerates only the proxies whose inputs it touches:
//   - a service change (endpoints, protocol, its MeshService): the proxies
//     that call the service (declared or reachable outbounds, or every
//     service with transparent proxying), and for a MeshService the proxies
//     backing it (policies may select them through it);
//   - a dataplane change: that proxy (and, through the services it backs,
//     its callers);
//   - a policy change: the proxies the policy (before or after the change)
//     may select, narrowed to the callers of the destinations its to[]
//     entries name unless it configures every destination or inbound
//     traffic (policy.Plugin.Targets);
//   - a change of the Mesh or its CA material: every proxy of the mesh.
//
// A regenerated proxy whose version is unchanged is not published again, so
// only proxies whose configuration really changed see an update.
//
// # Shared work
//
// Proxies of one snapshot with equal outbound inputs share one outbound part
// (build.Batch), translated once per snapshot; every outbound, cluster and
// inbound is rendered once and reused while its IR is unchanged
// (translate.Cache). A proxy's own work is then its inbound part and a few
// slice copies. Versions are content digests of what the resources are
// rendered from (translate.Version), computed piece by piece, so equal
// configurations have equal versions in every process.
//
// # Proxyless make-before-break
//
// gRPC fails RPCs that race with the removal of a cluster they were routed
// to. When a proxyless proxy's new configuration drops clusters, they are
// published once more alongside it and removed by the next publish (at the
// latest Options.MakeBeforeBreakDelay later).
package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	stdsync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/identity"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot/track"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// Defaults of Options.
const (
	// DefaultResyncInterval is how often every connected proxy is
	// regenerated as a safety net.
	DefaultResyncInterval = 5 * time.Minute
	// DefaultMakeBeforeBreakDelay is how long clusters a proxyless proxy no
	// longer uses are kept at most.
	DefaultMakeBeforeBreakDelay = 2 * time.Second
	// DefaultSweepInterval is how often unused translated resources are
	// dropped from the translation cache.
	DefaultSweepInterval = time.Minute
)

// Publisher receives the configuration of connected proxies; the xDS
// snapshot cache implements it. Publish is called when a proxy's version
// changed or the proxy (re)connected, never concurrently for one proxy.
// Versions are content digests (translate.Version; translate.Revision is
// part of them). Resources are shared with other proxies and with the
// reconciler: read-only.
type Publisher interface {
	// Publish sets the configuration of a proxy.
	Publish(key resource.Key, res *translate.Resources, version string) error
	// Forget drops the configuration of a proxy (its Dataplane or mesh was
	// deleted, or it disconnected).
	Forget(key resource.Key)
}

// Snapshots is the source of mesh snapshots (snapshot.Tracker).
type Snapshots interface {
	// Snapshot returns the current snapshot of a mesh, or nil.
	Snapshot(mesh string) *snapshot.Snapshot
	// Changed receives a value when updates are waiting.
	Changed() <-chan struct{}
	// TakeUpdates returns the updates since the last call.
	TakeUpdates() []snapshot.Update
}

// Identities issues workload certificates (identity.Cache).
type Identities interface {
	// Get returns (issuing when needed) a dataplane's certificate.
	Get(ctx context.Context, snap *snapshot.Snapshot, dp *snapshot.Dataplane) (*identity.Material, error)
	// Peek returns the certificate held for a dataplane, if any.
	Peek(key resource.Key) (*identity.Material, bool)
	// Forget drops one dataplane's certificate.
	Forget(key resource.Key)
	// ForgetMesh drops the certificates of a mesh.
	ForgetMesh(mesh string)
	// Due receives a value when certificates are due for renewal.
	Due() <-chan struct{}
	// TakeDue returns the proxies whose certificates are due.
	TakeDue() []resource.Key
}

var (
	_ Identities = (*identity.Cache)(nil)
	_ Snapshots  = (*track.Tracker)(nil)
)

// Options configure a Reconciler.
type Options struct {
	// Snapshots is the source of mesh snapshots. Required.
	Snapshots Snapshots
	// Publisher receives the configurations. Required.
	Publisher Publisher
	// Plugins are the policy plugins; nil runs none.
	Plugins *policy.Registry
	// Identities issues workload certificates; required for meshes with
	// mTLS and Envoy proxies.
	Identities Identities
	// Log is the component's logger. Required.
	Log *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// Workers bounds how many proxies are built at once; zero means
	// GOMAXPROCS.
	Workers int
	// ResyncInterval is the safety-net resync period; zero means
	// DefaultResyncInterval, negative disables it.
	ResyncInterval time.Duration
	// MakeBeforeBreakDelay bounds how long removed clusters stay with a
	// proxyless proxy; zero means DefaultMakeBeforeBreakDelay.
	MakeBeforeBreakDelay time.Duration
	// SweepInterval is how often the translation cache drops unused
	// entries; zero means DefaultSweepInterval.
	SweepInterval time.Duration
	// Cache is the translation cache; nil makes one.
	Cache *translate.Cache
}

// Reconciler keeps the configuration of connected proxies current. It is
// safe for concurrent use; Start runs it.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	cache   *translate.Cache
	metrics *metrics

	mu       stdsync.Mutex
	inbox    map[resource.Key]inboxEvent
	flavours map[resource.Key]ir.Flavour // connected proxies, for Inspect
	kick     chan struct{}

	// Owned by the Start goroutine.
	proxies map[resource.Key]*proxyState
	meshes  map[string]*meshIndex
	batches map[string]*batchState
	settle  []settleItem
	swept   time.Time
}

// inboxEvent is what happened to a proxy since the last round.
type inboxEvent struct {
	connected    bool
	disconnected bool
	regenerate   bool
	flavour      ir.Flavour
}

// settleItem is a proxyless proxy whose removed clusters must go.
type settleItem struct {
	key resource.Key
	at  time.Time
}

// New returns a Reconciler; see Options for what is required.
func New(opts Options) (*Reconciler, error) {
	switch {
	case opts.Snapshots == nil:
		return nil, errors.New("xds sync: Snapshots is required")
	case opts.Publisher == nil:
		return nil, errors.New("xds sync: Publisher is required")
	case opts.Log == nil:
		return nil, errors.New("xds sync: Log is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.MakeBeforeBreakDelay <= 0 {
		opts.MakeBeforeBreakDelay = DefaultMakeBeforeBreakDelay
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	r := &Reconciler{
		opts: opts, log: opts.Log, cache: opts.Cache,
		inbox:    map[resource.Key]inboxEvent{},
		flavours: map[resource.Key]ir.Flavour{},
		kick:     make(chan struct{}, 1),
		proxies:  map[resource.Key]*proxyState{},
		meshes:   map[string]*meshIndex{},
		batches:  map[string]*batchState{},
	}
	if r.cache == nil {
		r.cache = translate.NewCache()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	return r, nil
}

// ProxyConnected tells the reconciler that a proxy's xDS stream is up, with
// the flavour its agent announced (empty: the Dataplane's label decides). It
// is built and published at once. Calling it again (a reconnect) publishes
// its configuration again even if unchanged.
func (r *Reconciler) ProxyConnected(key resource.Key, flavour ir.Flavour) {
	r.mu.Lock()
	r.flavours[key] = flavour
	ev := r.inbox[key]
	r.inbox[key] = inboxEvent{connected: true, disconnected: ev.disconnected, flavour: flavour}
	r.mu.Unlock()
	r.wake()
}

// ProxyDisconnected tells the reconciler that a proxy's stream ended: it is
// no longer built, and its configuration is forgotten.
func (r *Reconciler) ProxyDisconnected(key resource.Key) {
	r.mu.Lock()
	delete(r.flavours, key)
	r.inbox[key] = inboxEvent{disconnected: true}
	r.mu.Unlock()
	r.wake()
}

// Regenerate asks for the given proxies to be built again (those not
// connected are ignored).
func (r *Reconciler) Regenerate(keys ...resource.Key) {
	r.mu.Lock()
	for _, k := range keys {
		ev := r.inbox[k]
		ev.regenerate = true
		r.inbox[k] = ev
	}
	r.mu.Unlock()
	r.wake()
}

func (r *Reconciler) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start reconciles until ctx ends; it returns nil then.
func (r *Reconciler) Start(ctx context.Context) error {
	var resyncC <-chan time.Time
	if r.opts.ResyncInterval > 0 {
		t := time.NewTicker(r.opts.ResyncInterval)
		defer t.Stop()
		resyncC = t.C
	}
	var dueC <-chan struct{}
	if r.opts.Identities != nil {
		dueC = r.opts.Identities.Due()
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	r.swept = time.Now()
	for {
		resync := false
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
		case <-r.opts.Snapshots.Changed():
		case <-dueC:
		case <-settle.C:
		case <-resyncC:
			resync = true
		}
		dirty := r.collect(resync)
		if len(dirty) > 0 {
			r.round(ctx, dirty)
		}
		if len(r.settle) > 0 {
			settle.Reset(max(time.Until(r.settle[0].at), 0))
		}
		if time.Since(r.swept) >= r.opts.SweepInterval {
			r.cache.Sweep()
			r.swept = time.Now()
		}
	}
}

// collect gathers everything that happened since the last round and returns
// the connected proxies to regenerate.
func (r *Reconciler) collect(resync bool) map[resource.Key]bool {
	dirty := map[resource.Key]bool{}
	r.mu.Lock()
	inbox := r.inbox
	r.inbox = map[resource.Key]inboxEvent{}
	r.mu.Unlock()
	for key, ev := range inbox {
		if ev.disconnected {
			r.disconnect(key)
		}
		if ev.connected {
			r.connect(key, ev.flavour)
			dirty[key] = true
		}
		if ev.regenerate && r.proxies[key] != nil {
			dirty[key] = true
		}
	}
	for _, u := range r.opts.Snapshots.TakeUpdates() {
		r.scope(u, dirty)
	}
	if r.opts.Identities != nil {
		for _, key := range r.opts.Identities.TakeDue() {
			if r.proxies[key] != nil {
				dirty[key] = true
			}
		}
	}
	now := time.Now()
	for len(r.settle) > 0 && !r.settle[0].at.After(now) {
		if r.proxies[r.settle[0].key] != nil {
			dirty[r.settle[0].key] = true
		}
		r.settle = r.settle[1:]
	}
	if resync {
		for key := range r.proxies {
			dirty[key] = true
		}
	}
	return dirty
}

// connect starts tracking a proxy.
func (r *Reconciler) connect(key resource.Key, flavour ir.Flavour) {
	p := r.proxies[key]
	if p == nil {
		p = &proxyState{key: key}
		r.proxies[key] = p
		r.mesh(key.Mesh).proxies[key] = struct{}{}
	}
	p.flavour = flavour
	p.reset() // a new stream gets its configuration even if unchanged
	r.metrics.connected.Set(float64(len(r.proxies)))
}

// disconnect stops tracking a proxy and forgets its configuration.
func (r *Reconciler) disconnect(key resource.Key) {
	p := r.proxies[key]
	if p == nil {
		return
	}
	r.mesh(key.Mesh).remove(p)
	delete(r.proxies, key)
	r.opts.Publisher.Forget(key)
	r.metrics.connected.Set(float64(len(r.proxies)))
}

// Inspect builds the configuration of any dataplane, connected or not, with
// the same pure hops the reconciler uses (build.Build, translate.Translate)
// on the current snapshot. A connected proxy is built with the flavour it
// announced; an Envoy proxy in an mTLS mesh gets the certificate it holds,
// or a placeholder when none was issued (inspecting never issues one).
// Errors match store.ErrNotFound when the mesh or dataplane does not exist.
func (r *Reconciler) Inspect(ctx context.Context, key resource.Key) (*ir.Proxy, *translate.Resources, error) {
	r.mu.Lock()
	flavour := r.flavours[key]
	r.mu.Unlock()
	p, err := inspect(ctx, r.opts.Snapshots, r.opts.Identities, r.opts.Plugins, key, flavour)
	if err != nil {
		return nil, nil, err
	}
	res, err := translate.Translate(p)
	if err != nil {
		return p, nil, fmt.Errorf("inspecting %s: %w", key.String(), err)
	}
	return p, res, nil
}
