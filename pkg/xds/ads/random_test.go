package ads

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// randomMesh publishes random changes of one proxy's clusters and load
// assignments: resources come and go, change content, come back as the very
// message they were or as an equal copy — the cases the cache's pointer
// comparison and recorded differences must get right.
type randomMesh struct {
	rng      *rand.Rand
	clusters map[string]*clusterv3.Cluster
	clas     map[string]*endpointv3.ClusterLoadAssignment
	pool     map[string]proto.Message // by name and variant, to reuse messages
}

const randomNames = 16

func (m *randomMesh) name(i int) string { return fmt.Sprintf("r%02d", i) }

func (m *randomMesh) step() *translate.Resources {
	for i := range randomNames {
		n := m.name(i)
		switch m.rng.IntN(6) {
		case 0:
			delete(m.clusters, n)
			delete(m.clas, n)
		case 1, 2:
			v := m.rng.IntN(3)
			key := fmt.Sprintf("%s/%d", n, v)
			c, ok := m.pool["c"+key].(*clusterv3.Cluster)
			if !ok || m.rng.IntN(3) == 0 { // an equal copy now and then
				c = cluster(n, time.Duration(v+1)*time.Second)
				m.pool["c"+key] = c
			}
			m.clusters[n] = c
			e, ok := m.pool["e"+key].(*endpointv3.ClusterLoadAssignment)
			if !ok || m.rng.IntN(3) == 0 {
				e = cla(n, uint32(v+1))
				m.pool["e"+key] = e
			}
			m.clas[n] = e
		}
	}
	res := &translate.Resources{}
	for _, n := range slices.Sorted(maps.Keys(m.clusters)) {
		res.Clusters = append(res.Clusters, m.clusters[n])
	}
	for _, n := range slices.Sorted(maps.Keys(m.clas)) {
		res.Endpoints = append(res.Endpoints, m.clas[n])
	}
	return res
}

// expected returns the versions of the current resources of t, by name,
// keeping only names when names is not nil.
func expected(h *harness, t cache.Type, names map[string]bool) map[string]string {
	w := h.cache.Watch(web1.String(), func() {})
	defer w.Close()
	out := map[string]string{}
	l := w.Snapshot().List(t)
	for i := range l.Len() {
		if names == nil || names[l.Name(i)] {
			out[l.Name(i)] = l.Entry(i).Version()
		}
	}
	return out
}

// sotwState is what a SotW client holds of one type: its last response.
type sotwState struct {
	mu   sync.Mutex
	last map[string]*sotwResponse
}

func (s *sotwState) take(r *sotwResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[r.GetTypeUrl()] = r
}

func (s *sotwState) get(typeURL string) *sotwResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[typeURL]
}

// TestRandomChanges: after any sequence of publishes, subscription changes
// and reconnections, every client holds exactly what the snapshot says for
// its subscription — delta clients by name and version, SotW clients in
// their last response.
func TestRandomChanges(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) { randomChanges(t, seed) })
	}
}

func randomChanges(t *testing.T, seed uint64) {
	ctx := ctxT(t)
	h := newHarness(t)
	m := &randomMesh{rng: rand.New(rand.NewPCG(seed, 1)), clusters: map[string]*clusterv3.Cluster{},
		clas: map[string]*endpointv3.ClusterLoadAssignment{}, pool: map[string]proto.Message{}}
	h.publish(web1, m.step(), "v0")

	// A delta client with wildcards, one with named load assignments, and a
	// SotW client with wildcard clusters and named load assignments.
	openDelta := func() *adstest.Delta {
		cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
		require.NoError(t, err)
		adstest.Collect(cl.Recv, cl.Ack)
		return cl
	}
	wild := openDelta()
	require.NoError(t, wild.Subscribe(resource.ClusterType))
	require.NoError(t, wild.Subscribe(resource.EndpointType, "*"))
	named := openDelta()
	sub := map[string]bool{}
	sotw, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	state := &sotwState{last: map[string]*sotwResponse{}}
	adstest.Collect(sotw.Recv, func(r *sotwResponse) error { state.take(r); return sotw.Ack(r) })
	require.NoError(t, sotw.Subscribe(resource.ClusterType))
	sotwSub := map[string]bool{}

	for i := 1; i <= 30; i++ {
		if m.rng.IntN(3) > 0 {
			h.publish(web1, m.step(), fmt.Sprint("v", i))
		}
		// Change the named subscriptions.
		var add, drop []string
		for k := range randomNames {
			n := m.name(k)
			switch r := m.rng.IntN(8); {
			case r == 0 && !sub[n]:
				add, sub[n] = append(add, n), true
			case r == 1 && sub[n]:
				drop = append(drop, n)
				delete(sub, n)
			case r == 2:
				sotwSub[n] = !sotwSub[n]
			}
		}
		if len(add) > 0 {
			require.NoError(t, named.Subscribe(resource.EndpointType, add...))
		}
		if len(drop) > 0 {
			require.NoError(t, named.Unsubscribe(resource.EndpointType, drop...))
		}
		var sotwNamesNow []string
		for n, on := range sotwSub {
			if on {
				sotwNamesNow = append(sotwNamesNow, n)
			}
		}
		if len(sotwNamesNow) > 0 {
			require.NoError(t, sotw.Subscribe(resource.EndpointType, sotwNamesNow...))
		}
		if m.rng.IntN(6) == 0 { // the wildcard client reconnects with what it holds
			held := map[cache.Type]map[string]string{cache.Clusters: wild.Known(resource.ClusterType), cache.Endpoints: wild.Known(resource.EndpointType)}
			wild = openDelta()
			require.NoError(t, wild.Resume(resource.ClusterType, held[cache.Clusters], "*"))
			require.NoError(t, wild.Resume(resource.EndpointType, held[cache.Endpoints], "*"))
		}

		checks := func() []string {
			var bad []string
			if got, want := wild.Known(resource.ClusterType), expected(h, cache.Clusters, nil); !maps.Equal(got, want) {
				bad = append(bad, fmt.Sprintf("delta wildcard clusters: %v, want %v", got, want))
			}
			if got, want := wild.Known(resource.EndpointType), expected(h, cache.Endpoints, nil); !maps.Equal(got, want) {
				bad = append(bad, fmt.Sprintf("delta wildcard endpoints: %v, want %v", got, want))
			}
			// A response that crossed an unsubscription may bring back a
			// resource the client just dropped; a proxy ignores those.
			got := named.Known(resource.EndpointType)
			maps.DeleteFunc(got, func(n, _ string) bool { return !sub[n] })
			if want := expected(h, cache.Endpoints, sub); !maps.Equal(got, want) {
				bad = append(bad, fmt.Sprintf("delta named endpoints: %v, want %v", got, want))
			}
			if !sotwHolds(t, h, state, sotwSub) {
				bad = append(bad, "sotw")
			}
			return bad
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(checks()) > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		require.Empty(t, checks(), "step %d", i)
	}
}

// sotwHolds reports whether the SotW client's last responses are the
// current clusters, all of them, and the current load assignments it
// subscribes to.
func sotwHolds(t *testing.T, h *harness, s *sotwState, sub map[string]bool) bool {
	c := s.get(resource.ClusterType)
	if c == nil || c.GetVersionInfo() != h.cache.Version(web1, resource.ClusterType) {
		return false
	}
	if !slices.Equal(sotwNames(t, c), slices.Sorted(maps.Keys(expected(h, cache.Clusters, nil)))) {
		return false
	}
	want := expected(h, cache.Endpoints, sub)
	if len(want) == 0 {
		return true // nothing to hold (or nothing ever asked for)
	}
	e := s.get(resource.EndpointType)
	if e == nil || e.GetVersionInfo() != h.cache.Version(web1, resource.EndpointType) {
		return false
	}
	got := map[string]bool{}
	for _, n := range sotwNames(t, e) {
		if sub[n] {
			got[n] = true
		}
	}
	return len(got) == len(want)
}
