// Package cache is hop 5 of the xDS pipeline: it holds the latest xDS
// resources of every proxy, ready to be sent, and tells the ADS streams of
// a proxy when they changed. Publish and Forget are the two calls the
// reconciler makes; pkg/xds/ads serves the streams from Watch.
//
// # Nodes
//
// A proxy's xDS node id is "<mesh>/<name>", resource.Key.String() of its
// Dataplane (see bootstrap.NodeID). The server checks that a stream's node
// id matches its dataplane token before it watches anything, so a proxy
// only ever reads its own snapshot.
//
// # Versions
//
// Publish takes the proxy's content hash (ir.Proxy.Hash) as version and
// appends translate.Revision. Each resource type carries its own version: a
// type whose resources hash the same as in the previous snapshot keeps its
// version, so SotW clients (gRPC) are not sent unchanged types again. Delta
// clients (Envoy) compare per-resource content hashes, computed once per
// shared resource.
//
// # Cost
//
// Work and memory are proportional to what changed, not to what a proxy
// holds. The reconciler hands the same message to every proxy with equal
// inputs, and a published message is never changed, so resources are known
// by identity: each distinct message is marshalled, hashed and encoded once
// (Entry), and shared by every proxy and stream that sends it. A snapshot
// refers to the published slices themselves, and Publish compares them
// with the previous ones by pointer, looking at names and content only
// where the messages differ; it records small differences, so streams that
// sent the previous version answer with just the changed resources. Each
// proxy has its own lock: publishing proxies in parallel never waits on
// another proxy.
package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// Options configure a Cache.
type Options struct {
	// Log receives the cache's messages; nil discards them.
	Log *slog.Logger
	// Metrics registers gauges of what the cache holds; nil registers
	// nowhere.
	Metrics prometheus.Registerer
}

// Cache holds one snapshot per proxy. It is safe for concurrent use.
type Cache struct {
	log  *slog.Logger
	memo *memo
	ids  atomic.Uint64 // List ids

	mu    sync.RWMutex
	nodes map[string]*node // by node id
}

// New returns an empty cache.
func New(opts Options) (*Cache, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{log: log, memo: newMemo(), nodes: map[string]*node{}}
	if opts.Metrics != nil {
		gauges := []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "atoll_xds_cache_proxies",
				Help: "Proxies with a published xDS snapshot.",
			}, func() float64 { return float64(c.Stats().Proxies) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "atoll_xds_cache_resources",
				Help: "xDS resources over every snapshot; shared resources count once per proxy.",
			}, func() float64 { return float64(c.Stats().Resources) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "atoll_xds_cache_distinct_resources",
				Help: "Distinct xDS resource messages held: shared resources count once.",
			}, func() float64 { return float64(c.Stats().DistinctResources) }),
		}
		for _, g := range gauges {
			if err := opts.Metrics.Register(g); err != nil {
				return nil, fmt.Errorf("xds cache: registering metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Snapshot is one proxy's resources: a List per type. It is immutable.
type Snapshot struct {
	lists [NumTypes]*List
}

// List returns the resources of type t.
func (s *Snapshot) List(t Type) *List { return s.lists[t] }

func (s *Snapshot) count() int {
	n := 0
	for _, l := range s.lists {
		n += l.Len()
	}
	return n
}

// Publish makes res the configuration of the proxy key, versioned by
// version (its content hash; translate.Revision is appended), and wakes the
// proxy's streams if a type changed. Each list of res should be sorted by
// name (as translate returns them; others are sorted here). res and the
// messages in it must not be changed afterwards; they may be shared with
// other proxies.
func (c *Cache) Publish(key resource.Key, res *translate.Resources, version string) error {
	if res == nil {
		return errors.New("publishing xDS resources: nil resources")
	}
	if version == "" {
		return fmt.Errorf("publishing xDS resources of %s: empty version", key)
	}
	version += "." + translate.Revision
	its := itemsOf(res)
	n := c.lockNode(key.String())
	prev := n.snap.Load()
	var builds [NumTypes]listBuild
	next := &Snapshot{}
	changed := prev == nil
	for t := range NumTypes {
		var old *List
		if prev != nil {
			old = prev.lists[t]
		}
		b, err := c.buildList(t, its[t], old, version)
		if err != nil {
			for u := range t {
				builds[u].rollback(c.memo)
			}
			n.mu.Unlock()
			c.dropIfUnused(key.String(), n)
			return fmt.Errorf("publishing xDS resources of %s: %w", key, err)
		}
		builds[t] = b
		next.lists[t] = b.list
		changed = changed || b.list.version != old.Version()
	}
	n.snap.Store(next)
	var watchers []*Watch
	if changed {
		watchers = append(watchers, n.watchers...)
	}
	n.mu.Unlock()
	for t := range NumTypes {
		builds[t].commit(c.memo)
	}
	for _, w := range watchers {
		w.notify()
	}
	return nil
}

// Forget drops the configuration of the proxy key. The reconciler calls it
// when it stops tracking the proxy (after ProxyDisconnected, or when its
// Dataplane is deleted). While a stream of the proxy still watches it the
// snapshot is kept, so that a proxy that reconnected before Forget arrived
// is not left waiting for a snapshot nobody will send; the next Forget
// after that stream ends drops it.
func (c *Cache) Forget(key resource.Key) {
	id := key.String()
	c.mu.Lock()
	n, ok := c.nodes[id]
	if !ok {
		c.mu.Unlock()
		return
	}
	n.mu.Lock()
	if len(n.watchers) > 0 {
		n.mu.Unlock()
		c.mu.Unlock()
		c.log.Debug("keeping the snapshot of a proxy that still watches it", "node", id)
		return
	}
	s := n.snap.Swap(nil)
	n.dead = true
	delete(c.nodes, id)
	n.mu.Unlock()
	c.mu.Unlock()
	if s != nil {
		for _, l := range s.lists {
			c.memo.releaseList(l)
		}
	}
}

// Version returns the version the proxy key's resources of typeURL were
// last published with, or "" when it has none.
func (c *Cache) Version(key resource.Key, typeURL string) string {
	t, ok := TypeOf(typeURL)
	if !ok {
		return ""
	}
	c.mu.RLock()
	n := c.nodes[key.String()]
	c.mu.RUnlock()
	if n == nil {
		return ""
	}
	if s := n.snap.Load(); s != nil {
		return s.lists[t].Version()
	}
	return ""
}

// Stats reports what the cache holds.
type Stats struct {
	// Proxies is the number of proxies with a snapshot.
	Proxies int
	// Resources counts resources over every snapshot.
	Resources int
	// DistinctResources counts different resource messages: resources
	// shared between proxies count once.
	DistinctResources int
}

// Stats reports what the cache holds.
func (c *Cache) Stats() Stats {
	st := Stats{DistinctResources: c.memo.len()}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.nodes {
		if s := n.snap.Load(); s != nil {
			st.Proxies++
			st.Resources += s.count()
		}
	}
	return st
}
