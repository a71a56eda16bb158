package sync

import (
	"context"
	"errors"
	stdsync "sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/build"
	"github.com/atoll-mesh/atoll/pkg/xds/identity"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// batchState is the shared work of one mesh snapshot: the builder's batch
// and the translation of each outbound part.
type batchState struct {
	snap  *snapshot.Snapshot
	batch *build.Batch

	mu    stdsync.Mutex
	parts map[*build.OutboundPart]*translatedPart
}

type translatedPart struct {
	once   stdsync.Once
	res    *translate.Resources
	digest string
	err    error
}

// batchFor returns the shared work of the mesh's current snapshot.
func (r *Reconciler) batchFor(snap *snapshot.Snapshot) *batchState {
	bs := r.batches[snap.Mesh()]
	if bs == nil || bs.snap != snap {
		bs = &batchState{snap: snap, batch: build.NewBatch(snap, r.opts.Plugins), parts: map[*build.OutboundPart]*translatedPart{}}
		r.batches[snap.Mesh()] = bs
	}
	return bs
}

// translate returns the translation of an outbound part, once per part.
func (bs *batchState) translate(c *translate.Cache, part *build.OutboundPart) (*translate.Resources, string, error) {
	bs.mu.Lock()
	tp := bs.parts[part]
	if tp == nil {
		tp = &translatedPart{}
		bs.parts[part] = tp
	}
	bs.mu.Unlock()
	tp.once.Do(func() { tp.res, tp.digest, tp.err = c.Outbounds(part.Proxy()) })
	return tp.res, tp.digest, tp.err
}

// job is one proxy to build in a round.
type job struct {
	p  *proxyState
	bs *batchState
}

// outcome is what building one proxy changed, applied by the Start
// goroutine after the round.
type outcome struct {
	p           *proxyState
	built       bool
	services    []string
	allServices bool
	settle      bool
	forget      bool
}

// round builds the dirty proxies with a bounded pool of workers and applies
// the outcomes.
func (r *Reconciler) round(ctx context.Context, dirty map[resource.Key]bool) {
	start := time.Now()
	var jobs []job
	for key := range dirty {
		p := r.proxies[key]
		if p == nil {
			continue
		}
		snap := r.opts.Snapshots.Snapshot(key.Mesh)
		if snap == nil {
			continue // the mesh is not loaded (or gone): its update will come
		}
		jobs = append(jobs, job{p: p, bs: r.batchFor(snap)})
	}
	if len(jobs) == 0 {
		return
	}
	outcomes := make([]outcome, len(jobs))
	next := make(chan int)
	var wg stdsync.WaitGroup
	for range min(r.opts.Workers, len(jobs)) {
		wg.Go(func() {
			for i := range next {
				outcomes[i] = r.build(ctx, jobs[i])
			}
		})
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	for _, o := range outcomes {
		if o.p == nil {
			continue
		}
		mi := r.mesh(o.p.key.Mesh)
		switch {
		case o.forget:
			r.forget(o.p)
		case o.built:
			mi.index(o.p, o.services, o.allServices)
		}
		if o.settle {
			r.settle = append(r.settle, settleItem{key: o.p.key, at: time.Now().Add(r.opts.MakeBeforeBreakDelay)})
		}
	}
	r.metrics.rounds.Inc()
	r.metrics.roundSeconds.Observe(time.Since(start).Seconds())
}

// build builds, translates and (when its version changed) publishes one
// proxy. Errors are logged and counted; the proxy keeps its last good
// configuration.
func (r *Reconciler) build(ctx context.Context, j job) outcome {
	p, snap := j.p, j.bs.snap
	out := outcome{p: p}
	if ctx.Err() != nil {
		return outcome{}
	}
	dp := snap.Dataplane(p.key.Name)
	if dp == nil {
		out.forget = true // connected before its Dataplane exists, or deleted
		return out
	}
	flavour := p.flavour
	if flavour == "" {
		flavour = build.FlavourOf(dp)
	}
	r.metrics.builds.Inc()
	var id *build.Identity
	if snap.MTLSBackend() != nil && flavour == ir.FlavourEnvoy {
		if r.opts.Identities == nil {
			r.fail(p, "identity", errors.New("mTLS is on but the reconciler has no certificate issuer"))
			return outcome{}
		}
		m, err := r.opts.Identities.Get(ctx, snap, dp)
		if err != nil {
			r.fail(p, "identity", err)
			return outcome{}
		}
		id = identityOf(m)
	}
	res, err := j.bs.batch.Build(dp.Name(), flavour, id)
	if err != nil {
		r.fail(p, "build", err)
		return outcome{}
	}
	out.built, out.services, out.allServices = true, res.Outbound.Services, res.Outbound.AllServices
	outRes, outDigest, err := j.bs.translate(r.cache, res.Outbound)
	if err != nil {
		r.fail(p, "translate", err)
		return outcome{}
	}
	inRes, inDigest, err := r.cache.Inbounds(res.Proxy)
	if err != nil {
		r.fail(p, "translate", err)
		return outcome{}
	}
	version := translate.Version(outDigest, inDigest)
	if version == p.version && len(p.lingering) == 0 {
		r.metrics.unchanged.Inc()
		return out
	}
	merged := translate.Merge(inRes, outRes)
	publish, pubVersion := merged, version
	var lingering []string
	if flavour == ir.FlavourProxyless && p.published != nil && version != p.version {
		publish, lingering = keepRemoved(merged, p.published)
		if len(lingering) > 0 {
			pubVersion = translate.Version(append([]string{version, "make-before-break"}, lingering...)...)
		}
	}
	if err := r.opts.Publisher.Publish(p.key, publish, pubVersion); err != nil {
		r.fail(p, "publish", err)
		return outcome{}
	}
	r.metrics.publishes.Inc()
	p.version, p.published, p.lingering = version, merged, lingering
	out.settle = len(lingering) > 0
	return out
}

// fail logs and counts a proxy that could not be regenerated.
func (r *Reconciler) fail(p *proxyState, stage string, err error) {
	r.metrics.errors.WithLabelValues(stage).Inc()
	r.log.Warn("regenerating proxy failed; it keeps its last configuration", "proxy", p.key.String(), "stage", stage, "error", err)
}

// keepRemoved returns next plus the clusters (and load assignments) of prev
// that next no longer has, and their names.
func keepRemoved(next, prev *translate.Resources) (*translate.Resources, []string) {
	have := make(map[string]bool, len(next.Clusters))
	for _, c := range next.Clusters {
		have[c.GetName()] = true
	}
	var removed []string
	var clusters []*clusterv3.Cluster
	for _, c := range prev.Clusters {
		if !have[c.GetName()] {
			removed = append(removed, c.GetName())
			clusters = append(clusters, c)
		}
	}
	if len(removed) == 0 {
		return next, nil
	}
	gone := map[string]bool{}
	for _, n := range removed {
		gone[n] = true
	}
	var endpoints []*endpointv3.ClusterLoadAssignment
	for _, e := range prev.Endpoints {
		if gone[e.GetClusterName()] {
			endpoints = append(endpoints, e)
		}
	}
	return translate.Merge(next, &translate.Resources{Clusters: clusters, Endpoints: endpoints}), removed
}

// identityOf converts issued material for the builder.
func identityOf(m *identity.Material) *build.Identity {
	return &build.Identity{CertificateChain: string(m.CertPEM), PrivateKey: string(m.KeyPEM), TrustBundle: string(m.TrustBundle)}
}
