package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	stdsync "sync"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/mesh"
	api "github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/xds/build"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot/track"
	xdssync "github.com/atoll-mesh/atoll/pkg/xds/sync"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
	"github.com/atoll-mesh/atoll/policies/all"
)

// meshShape describes a generated mesh.
type meshShape struct {
	services    int  // services svc-0000 … (alternately http, tcp, grpc)
	perService  int  // dataplanes per service (each one endpoint)
	transparent bool // every proxy reaches every service through transparent proxying
	declared    int  // otherwise each proxy declares outbounds to this many services
	mtls        bool
	policies    int // MeshTimeouts targeting one service each, besides a mesh-wide one
	// scoped are MeshTimeouts selecting the proxies of one service each
	// (top-level targetRef), so those proxies need outbound parts of their own.
	scoped   int
	meshName string
}

func svcName(i int) string { return fmt.Sprintf("svc-%04d", i) }

// resources generates the mesh's resources.
func (s meshShape) resources() (*resource.Resource, []*resource.Resource) {
	m := &resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: s.meshName}, Spec: &mesh.Spec{}}
	if s.mtls {
		m.Spec = &mesh.Spec{MTLS: &mesh.MTLS{EnabledBackend: "ca-1", Backends: []mesh.Backend{{Name: "ca-1", Type: mesh.BackendBuiltin}}}}
	}
	var out []*resource.Resource
	protocols := []string{"http", "tcp", "grpc"}
	for i := range s.services * s.perService {
		svc := i % s.services
		spec := &dataplane.Spec{Networking: dataplane.Networking{
			Address: fmt.Sprintf("10.%d.%d.%d", i/62500, (i/250)%250, i%250+1),
			Inbound: []dataplane.Inbound{{Port: 8080, Tags: map[string]string{
				dataplane.ServiceTag: svcName(svc), dataplane.ProtocolTag: protocols[svc%3], "app": svcName(svc)}}},
		}}
		if s.transparent {
			spec.Networking.TransparentProxying = &dataplane.TransparentProxying{RedirectPortInbound: 15006, RedirectPortOutbound: 15001}
		}
		for k := range s.declared {
			spec.Networking.Outbound = append(spec.Networking.Outbound, dataplane.Outbound{
				Port: uint32(10001 + k), Tags: map[string]string{dataplane.ServiceTag: svcName((svc + 1 + k) % s.services)}})
		}
		meta := resource.Meta{Mesh: s.meshName, Name: fmt.Sprintf("dp-%05d", i)}
		out = append(out, &resource.Resource{Type: resource.DataplaneType, Meta: meta, Spec: spec})
	}
	out = append(out, timeout(s.meshName, "mesh-defaults", nil, targetref.TargetRef{Kind: targetref.Mesh}, "20m", ""))
	for i := range s.policies {
		out = append(out, timeout(s.meshName, fmt.Sprintf("to-%s", svcName(i*7%s.services)), nil,
			targetref.TargetRef{Kind: targetref.MeshService, Name: svcName(i * 7 % s.services)}, "", "5s"))
	}
	for i := range s.scoped {
		out = append(out, timeout(s.meshName, fmt.Sprintf("from-%s", svcName(i)), &targetref.TargetRef{Kind: targetref.MeshService, Name: svcName(i)},
			targetref.TargetRef{Kind: targetref.Mesh}, "", "7s"))
	}
	return m, out
}

// timeout returns a MeshTimeout with one to[] entry.
func timeout(meshName, name string, top *targetref.TargetRef, to targetref.TargetRef, idle, request string) *resource.Resource {
	conf := api.Conf{IdleTimeout: duration.Duration(idle)}
	if request != "" {
		conf.HTTP = &api.HTTP{RequestTimeout: duration.Duration(request)}
	}
	return &resource.Resource{Type: "MeshTimeout", Meta: resource.Meta{Mesh: meshName, Name: name},
		Spec: &api.Spec{TargetRef: top, To: []targetref.To[api.Conf]{{TargetRef: to, Default: conf}}}}
}

func (s meshShape) snapshot(b *testing.B) *snapshot.Snapshot {
	b.Helper()
	m, rest := s.resources()
	snap, err := snapshot.FromResources(m, rest...)
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

// benchIdentity stands for an issued workload certificate: generation
// benchmarks leave certificate issuance out (see pkg/pki's benchmarks).
var benchIdentity = &build.Identity{
	CertificateChain: "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n",
	PrivateKey:       "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
	TrustBundle:      "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
}

// generator does per proxy what pkg/xds/sync does: a shared batch per
// snapshot, one translation per outbound part, a cached inbound part, a
// merge and a version.
type generator struct {
	batch *build.Batch
	cache *translate.Cache
	parts map[*build.OutboundPart]part
}

type part struct {
	res    *translate.Resources
	digest string
}

func newGenerator(snap *snapshot.Snapshot, cache *translate.Cache) *generator {
	plugins, err := all.PluginRegistry()
	if err != nil {
		panic(err)
	}
	return &generator{batch: build.NewBatch(snap, plugins), cache: cache, parts: map[*build.OutboundPart]part{}}
}

func (g *generator) generate(name string) (*translate.Resources, string, error) {
	r, err := g.batch.Build(name, "", benchIdentity)
	if err != nil {
		return nil, "", err
	}
	pt, ok := g.parts[r.Outbound]
	if !ok {
		res, d, err := g.cache.Outbounds(r.Outbound.Proxy())
		if err != nil {
			return nil, "", err
		}
		pt = part{res, d}
		g.parts[r.Outbound] = pt
	}
	in, d, err := g.cache.Inbounds(r.Proxy)
	if err != nil {
		return nil, "", err
	}
	return translate.Merge(in, pt.res), translate.Version(pt.digest, d), nil
}

// counter is a Publisher counting publishes per proxy and signalling when
// every proxy of an expected set has been published to.
type counter struct {
	mu       stdsync.Mutex
	counts   map[resource.Key]int
	expected map[resource.Key]bool
	done     chan struct{}
}

func newCounter() *counter { return &counter{counts: map[resource.Key]int{}} }

func (c *counter) Publish(key resource.Key, _ *translate.Resources, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[key]++
	if c.expected[key] {
		delete(c.expected, key)
		if len(c.expected) == 0 && c.done != nil {
			close(c.done)
			c.done = nil
		}
	}
	return nil
}

func (c *counter) Forget(resource.Key) {}

// expect arms the counter for the next change.
func (c *counter) expect(keys []resource.Key) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expected = map[resource.Key]bool{}
	for _, k := range keys {
		c.expected[k] = true
	}
	c.done = make(chan struct{})
	return c.done
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// controlPlane is a control plane without the xDS server: memory store,
// manager, tracker and reconciler publishing to a counter.
type controlPlane struct {
	mgr     *manager.Manager
	pub     *counter
	rec     *xdssync.Reconciler
	tracker *track.Tracker
}

func startControlPlane(b *testing.B, s meshShape) *controlPlane {
	b.Helper()
	reg, err := all.Registry()
	if err != nil {
		b.Fatal(err)
	}
	plugins, err := all.PluginRegistry()
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st := memory.New(reg)
	cp := &controlPlane{mgr: manager.New(reg, st, log), pub: newCounter()}
	m, rest := s.resources()
	ctx := context.Background()
	for _, r := range append([]*resource.Resource{m}, rest...) {
		if _, err := cp.mgr.Apply(ctx, r, manager.ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	cp.tracker = track.New(st, reg, log, track.Options{})
	cp.rec, err = xdssync.New(xdssync.Options{Snapshots: cp.tracker, Publisher: cp.pub, Plugins: plugins, Log: log, ResyncInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg stdsync.WaitGroup
	wg.Go(func() { _ = cp.tracker.Start(runCtx) })
	wg.Go(func() { _ = cp.rec.Start(runCtx) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	<-cp.tracker.Ready()
	var keys []resource.Key
	for _, r := range rest {
		if r.Type == resource.DataplaneType {
			keys = append(keys, r.Key())
		}
	}
	done := cp.pub.expect(keys)
	for _, k := range keys {
		cp.rec.ProxyConnected(k, ir.FlavourEnvoy)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("proxies never got their first configuration")
	}
	return cp
}

// percentile returns the p-th percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
