// Package cache is hop 5 of the xDS pipeline: it holds the latest xDS
// resources of every proxy and answers the data-plane server's SotW and delta
// ADS watches from them. It wraps go-control-plane's snapshot cache (in
// non-ADS mode, so gRPC clients that ask only for the clusters their routes
// use are answered at once; see notes/proxyless-grpc.md, pitfall 2) behind
// Publish and Forget, the two calls the reconciler makes.
//
// # Nodes
//
// A proxy's xDS node id is "<mesh>/<name>", resource.Key.String() of its
// Dataplane (see bootstrap.NodeID). The server checks that a stream's node
// id matches its dataplane token before it creates any watch, so a proxy
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
// # NACKs
//
// go-control-plane answers a SotW NACK (a request with error_detail, whose
// version_info is the last version the client accepted) by sending the
// rejected version again at once, and again after every NACK — hundreds of
// responses in tens of milliseconds (go-control-plane #962). Cache answers a
// NACK with a watch that fires only when the type's version moves away from
// the rejected one, so a rejected version is sent once, and the next Publish
// that changes the type is sent as usual. Delta xDS does not have the
// problem: a delta watch fires only for resources whose hash changed.
// Counting and reporting NACKs is the server's job (it sees every request).
//
// # Memory
//
// Identical resources are shared, not copied: a snapshot holds references to
// the messages the reconciler publishes, and go-control-plane marshals them
// per response only. Published messages must never be changed afterwards.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	gcache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// Options configure a Cache.
type Options struct {
	// Log receives go-control-plane's messages (at debug level, except
	// errors); nil discards them.
	Log *slog.Logger
	// Metrics registers gauges of what the cache holds; nil registers
	// nowhere.
	Metrics prometheus.Registerer
}

// Cache holds one snapshot per proxy and serves ADS watches from them. It
// implements go-control-plane's cache.Cache, which the data-plane server
// hands to go-control-plane's xDS server. It is safe for concurrent use.
type Cache struct {
	log   *slog.Logger
	gcp   gcache.SnapshotCache
	memo  *hashes
	mu    sync.Mutex           // serializes snapshot changes with watch creation
	snaps map[string]*snapshot // by node id, the last published snapshot
}

var _ gcache.Cache = (*Cache)(nil)

// New returns an empty cache.
func New(opts Options) (*Cache, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		log:   log,
		gcp:   gcache.NewSnapshotCache(false, gcache.IDHash{}, gcpLogger{log}),
		memo:  newHashes(),
		snaps: map[string]*snapshot{},
	}
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

// Publish makes res the configuration of the proxy key, versioned by
// version (its content hash; translate.Revision is appended). Open watches
// of the proxy whose type changed are answered at once. res and the messages
// in it must not be changed afterwards; they may be shared with other
// proxies.
func (c *Cache) Publish(key resource.Key, res *translate.Resources, version string) error {
	if res == nil {
		return errors.New("publishing xDS resources: nil resources")
	}
	if version == "" {
		return fmt.Errorf("publishing xDS resources of %s: empty version", key)
	}
	id := key.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.snaps[id]
	s, err := buildSnapshot(res, version+"."+translate.Revision, prev, c.memo)
	if err != nil {
		return fmt.Errorf("publishing xDS resources of %s: %w", key, err)
	}
	if err := c.gcp.SetSnapshot(context.Background(), id, s); err != nil {
		c.memo.releaseSnapshot(s)
		return fmt.Errorf("publishing xDS resources of %s: %w", key, err)
	}
	c.snaps[id] = s
	c.memo.releaseSnapshot(prev)
	return nil
}

// Forget drops the configuration of the proxy key. The reconciler calls it
// when it stops tracking the proxy (after ProxyDisconnected, or when its
// Dataplane is deleted). While a stream of the proxy is still waiting for
// updates the snapshot is kept, so that a proxy that reconnected before
// Forget arrived is not left waiting for a snapshot nobody will send; the
// next Forget after that stream ends drops it.
func (c *Cache) Forget(key resource.Key) {
	id := key.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.snaps[id]
	if !ok {
		return
	}
	if info := c.gcp.GetStatusInfo(id); info != nil && info.GetNumWatches()+info.GetNumDeltaWatches() > 0 {
		c.log.Debug("keeping the snapshot of a proxy that still watches it", "node", id)
		return
	}
	c.gcp.ClearSnapshot(id)
	delete(c.snaps, id)
	c.memo.releaseSnapshot(s)
}

// Version returns the version the proxy key's resources of typeURL were
// last published with, or "" when it has none.
func (c *Cache) Version(key resource.Key, typeURL string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.snaps[key.String()]; ok {
		return s.GetVersion(typeURL)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{Proxies: len(c.snaps), DistinctResources: c.memo.len()}
	for _, s := range c.snaps {
		st.Resources += s.count()
	}
	return st
}

// CreateWatch implements go-control-plane's ConfigWatcher for SotW streams.
// A NACK (a request with error_detail) waits for a version other than the
// rejected one instead of being answered with it again.
func (c *Cache) CreateWatch(req *gcache.Request, sub gcache.Subscription, out chan gcache.Response) (func(), error) {
	if req.GetErrorDetail() != nil {
		if rejected := rejectedVersion(sub); rejected != "" && rejected != req.GetVersionInfo() {
			clone := proto.Clone(req).(*gcache.Request)
			clone.VersionInfo = rejected
			req = clone
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gcp.CreateWatch(req, sub, out)
}

// rejectedVersion is the version of the response a SotW NACK answers: the
// version go-control-plane recorded for the resources it last returned on
// the stream (a SotW response gives them all its version).
func rejectedVersion(sub gcache.Subscription) string {
	for _, v := range sub.ReturnedResources() {
		return v
	}
	return ""
}

// CreateDeltaWatch implements go-control-plane's ConfigWatcher for delta
// streams.
func (c *Cache) CreateDeltaWatch(req *gcache.DeltaRequest, sub gcache.Subscription, out chan gcache.DeltaResponse) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gcp.CreateDeltaWatch(req, sub, out)
}

// Fetch implements go-control-plane's ConfigFetcher (REST xDS), which the
// data-plane server does not serve; it answers from the snapshot anyway.
func (c *Cache) Fetch(ctx context.Context, req *gcache.Request) (gcache.Response, error) {
	return c.gcp.Fetch(ctx, req)
}

// gcpLogger adapts slog to go-control-plane's logger. go-control-plane logs
// every watch at info level, so everything but errors goes to debug.
type gcpLogger struct{ l *slog.Logger }

// Debugf logs at debug level.
func (g gcpLogger) Debugf(format string, args ...any) { g.log(slog.LevelDebug, format, args) }

// Infof logs at debug level: go-control-plane logs every watch at info.
func (g gcpLogger) Infof(format string, args ...any) { g.log(slog.LevelDebug, format, args) }

// Warnf logs at debug level: go-control-plane warns about routine events
// (a status lookup of a node without streams).
func (g gcpLogger) Warnf(format string, args ...any) { g.log(slog.LevelDebug, format, args) }

// Errorf logs at warning level.
func (g gcpLogger) Errorf(format string, args ...any) { g.log(slog.LevelWarn, format, args) }

func (g gcpLogger) log(level slog.Level, format string, args []any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, fmt.Sprintf(format, args...), "source", "go-control-plane")
	}
}
