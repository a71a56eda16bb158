package sync

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/pki/secretstore"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/xds/identity"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot/track"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
	"github.com/atoll-mesh/atoll/policies/all"
)

// recorder is a Publisher that keeps every call, as the xDS cache would
// see them.
type recorder struct {
	mu      stdsync.Mutex
	current map[resource.Key]published
	calls   []call
}

type published struct {
	res     *translate.Resources
	version string
}

type call struct {
	key     resource.Key
	version string // empty for Forget
	res     *translate.Resources
}

func newRecorder() *recorder { return &recorder{current: map[resource.Key]published{}} }

func (r *recorder) Publish(key resource.Key, res *translate.Resources, version string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current[key] = published{res, version}
	r.calls = append(r.calls, call{key: key, version: version, res: res})
	return nil
}

func (r *recorder) Forget(key resource.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.current, key)
	r.calls = append(r.calls, call{key: key})
}

// mark returns a position in the call log.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// since returns the calls after mark.
func (r *recorder) since(mark int) []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[mark:])
}

// publishedTo returns the names of the proxies published to after mark.
func (r *recorder) publishedTo(mark int) []string {
	var names []string
	for _, c := range r.since(mark) {
		if c.version != "" {
			names = append(names, c.key.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// forgotten returns the proxies forgotten after mark.
func (r *recorder) forgotten(mark int) []string {
	var names []string
	for _, c := range r.since(mark) {
		if c.version == "" {
			names = append(names, c.key.String())
		}
	}
	slices.Sort(names)
	return names
}

func (r *recorder) get(key resource.Key) (published, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.current[key]
	return p, ok
}

// env is a control plane without the xDS server: memory store, manager,
// snapshot tracker, real CA manager and identity cache, and a reconciler
// publishing to a recorder.
type env struct {
	t    *testing.T
	reg  *resource.Registry
	mgr  *manager.Manager
	rec  *recorder
	r    *Reconciler
	ids  *identity.Cache
	prom *prometheus.Registry
}

type envOptions struct {
	identities func(*identity.Cache) Identities
	mbbDelay   time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	plugins, err := all.PluginRegistry()
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	st := memory.New(reg)
	e := &env{t: t, reg: reg, mgr: manager.New(reg, st, log), rec: newRecorder(), prom: prometheus.NewRegistry()}
	tracker := track.New(st, reg, log, track.Options{Registerer: e.prom})
	e.ids = identity.New(pki.NewManager(secretstore.New(st), pki.ManagerOptions{}), tracker, log, identity.Options{Registerer: e.prom})
	var ids Identities = e.ids
	if o.identities != nil {
		ids = o.identities(e.ids)
	}
	e.r, err = New(Options{
		Snapshots: tracker, Publisher: e.rec, Plugins: plugins, Identities: ids, Log: log,
		Registerer: e.prom, MakeBeforeBreakDelay: o.mbbDelay,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg stdsync.WaitGroup
	for _, start := range []func(context.Context) error{tracker.Start, e.ids.Start, e.r.Start} {
		wg.Go(func() { require.NoError(t, start(ctx)) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	<-tracker.Ready()
	return e
}

// apply writes every document of a YAML stream through the manager.
func (e *env) apply(docs string) {
	e.t.Helper()
	for _, d := range resource.SplitYAML([]byte(docs)) {
		res, err := e.reg.DecodeYAML(d.Data)
		require.NoError(e.t, err, "document %d", d.Index)
		_, err = e.mgr.Apply(context.Background(), res, manager.ApplyOptions{})
		require.NoError(e.t, err, "document %d", d.Index)
	}
}

func (e *env) delete(typ string, key resource.Key) {
	e.t.Helper()
	require.NoError(e.t, e.mgr.Delete(context.Background(), typ, key, manager.DeleteOptions{Force: true}))
}

// quiet waits until nothing has been published or forgotten for a while:
// longer than the snapshot batching window and a round.
func (e *env) quiet() {
	e.t.Helper()
	last, since := e.rec.mark(), time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for time.Since(since) < 400*time.Millisecond {
		require.True(e.t, time.Now().Before(deadline), "publishing never settles")
		time.Sleep(20 * time.Millisecond)
		if n := e.rec.mark(); n != last {
			last, since = n, time.Now()
		}
	}
}

// connect connects proxies and waits until everything settled.
func (e *env) connect(flavour ir.Flavour, mesh string, names ...string) {
	for _, n := range names {
		e.r.ProxyConnected(resource.Key{Mesh: mesh, Name: n}, flavour)
	}
	e.quiet()
}

func (e *env) current(mesh, name string) published {
	e.t.Helper()
	p, ok := e.rec.get(resource.Key{Mesh: mesh, Name: name})
	require.True(e.t, ok, "%s/%s has a configuration", mesh, name)
	return p
}

func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.prom.Gather()
	require.NoError(e.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						match = false
					}
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// endpointsOf returns "address:port" of a cluster's endpoints.
func endpointsOf(res *translate.Resources, cluster string) []string {
	var out []string
	for _, cla := range res.Endpoints {
		if cla.GetClusterName() != cluster {
			continue
		}
		for _, l := range cla.GetEndpoints() {
			for _, lb := range l.GetLbEndpoints() {
				a := lb.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", a.GetAddress(), a.GetPortValue()))
			}
		}
	}
	slices.Sort(out)
	return out
}

func clusterNames(res *translate.Resources) []string {
	var out []string
	for _, c := range res.Clusters {
		out = append(out, c.GetName())
	}
	return out
}

func findCluster(res *translate.Resources, name string) *clusterv3.Cluster {
	for _, c := range res.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	return nil
}

func dp(mesh, name, addr, service string, extra ...string) string {
	return fmt.Sprintf(`type: Dataplane
mesh: %s
name: %s
networking:
  address: %s
  inbound:
    - port: 8080
      tags:
        kuma.io/service: %s
        kuma.io/protocol: http
%s
`, mesh, name, addr, service, strings.Join(extra, "\n"))
}

func outbounds(services ...string) string {
	var b strings.Builder
	b.WriteString("  outbound:\n")
	for i, s := range services {
		fmt.Fprintf(&b, "    - port: %d\n      tags:\n        kuma.io/service: %s\n", 10001+i, s)
	}
	return b.String()
}
