package cache_test

import (
	"context"
	"net"
	"sort"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ads"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

var web1 = atollres.Key{Mesh: "default", Name: "web-1"}

func node(key atollres.Key) *corev3.Node { return &corev3.Node{Id: key.String()} }

// serve starts the ADS server over c on loopback and returns a client
// connection to it.
func serve(t *testing.T, c *cache.Cache) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(ads.ServerOption())
	srv, err := ads.New(ads.Options{Cache: c, Hooks: nodeHooks{}})
	require.NoError(t, err)
	srv.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// nodeHooks admits every stream for the node it names.
type nodeHooks struct{}

func (nodeHooks) Open(context.Context, ads.StreamInfo) ads.StreamHooks { return &nodeStream{} }

type nodeStream struct{ id string }

func (s *nodeStream) Admit(node *corev3.Node) (string, error) {
	s.id = node.GetId()
	return s.id, nil
}
func (s *nodeStream) Check(*corev3.Node) error        { return nil }
func (s *nodeStream) Sent(string, string)             {}
func (s *nodeStream) Acknowledged(string, string)     {}
func (s *nodeStream) Rejected(string, string, string) {}
func (s *nodeStream) Closed()                         {}

func cluster(name string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		ConnectTimeout:       durationpb.New(timeout),
	}
}

func listener(name string) *listenerv3.Listener { return &listenerv3.Listener{Name: name} }

func cla(name string) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func names(resp *discoveryv3.DiscoveryResponse) []string {
	var out []string
	for _, a := range resp.GetResources() {
		switch a.GetTypeUrl() {
		case resource.ClusterType:
			var c clusterv3.Cluster
			_ = a.UnmarshalTo(&c)
			out = append(out, c.GetName())
		case resource.ListenerType:
			var l listenerv3.Listener
			_ = a.UnmarshalTo(&l)
			out = append(out, l.GetName())
		}
	}
	sort.Strings(out)
	return out
}

func TestPublishServesSotW(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t)
	conn := serve(t, c)
	require.NoError(t, c.Publish(web1, &translate.Resources{
		Listeners: []*listenerv3.Listener{listener("l1")},
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", time.Second)},
	}, "v1"))

	cl, err := adstest.NewSotW(ctx, conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Equal(t, "v1."+translate.Revision, resp.GetVersionInfo(), "the version is the content hash plus the translator revision")
	require.Equal(t, []string{"a", "b"}, names(resp))
	require.NoError(t, cl.Ack(resp))

	// A proxy asking by name gets only what it asks for (gRPC asks for the
	// clusters its routes use): the cache is not in ADS mode.
	other, err := adstest.NewSotW(ctx, conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, other.Subscribe(resource.ClusterType, "b"))
	resp, err = other.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, names(resp))

	// An update reaches the waiting watch.
	require.NoError(t, c.Publish(web1, &translate.Resources{
		Listeners: []*listenerv3.Listener{listener("l1")},
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second)},
	}, "v2"))
	resp, err = cl.Recv()
	require.NoError(t, err)
	require.Equal(t, "v2."+translate.Revision, resp.GetVersionInfo())
	require.Equal(t, []string{"a"}, names(resp))
	require.Equal(t, "v2."+translate.Revision, c.Version(web1, resource.ClusterType))
}

// TestUnchangedTypesKeepTheirVersion: a SotW client is not sent a type whose
// content did not change, even when the proxy's version did.
func TestUnchangedTypesKeepTheirVersion(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t)
	conn := serve(t, c)
	l := listener("l1")
	require.NoError(t, c.Publish(web1, &translate.Resources{Listeners: []*listenerv3.Listener{l}, Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1"))

	cl, err := adstest.NewSotW(ctx, conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, cl.Ack)
	require.NoError(t, cl.Subscribe(resource.ListenerType))
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	_, err = got.Wait(ctx, 2)
	require.NoError(t, err)

	// Only the cluster changes; the listener is an equal copy, not the same message.
	require.NoError(t, c.Publish(web1, &translate.Resources{Listeners: []*listenerv3.Listener{listener("l1")}, Clusters: []*clusterv3.Cluster{cluster("a", 2*time.Second)}}, "v2"))
	all, err := got.Wait(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, resource.ClusterType, all[2].GetTypeUrl())
	time.Sleep(200 * time.Millisecond)
	all, _ = got.All()
	require.Len(t, all, 3, "the unchanged listeners were not sent again")
	require.Equal(t, "v1."+translate.Revision, c.Version(web1, resource.ListenerType))
	require.Equal(t, "v2."+translate.Revision, c.Version(web1, resource.ClusterType))

	// A changed content under a reused version still gets a new version.
	require.NoError(t, c.Publish(web1, &translate.Resources{Listeners: []*listenerv3.Listener{listener("l1")}, Clusters: []*clusterv3.Cluster{cluster("a", 3*time.Second)}}, "v2"))
	all, err = got.Wait(ctx, 4)
	require.NoError(t, err)
	require.NotEqual(t, all[2].GetVersionInfo(), all[3].GetVersionInfo())
}

// TestSotWNackIsNotResent is go-control-plane #962: a NACKed version is sent
// once, not again after every NACK, and the next change is sent normally.
func TestSotWNackIsNotResent(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t)
	conn := serve(t, c)
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "good"))

	cl, err := adstest.NewSotW(ctx, conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.NoError(t, cl.Ack(resp))

	// The client rejects everything from now on, as a proxy would reject
	// an invalid config.
	got := adstest.Collect(cl.Recv, func(r *discoveryv3.DiscoveryResponse) error { return cl.Nack(r, "cluster a: unsupported") })
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 5*time.Second)}}, "bad"))
	_, err = got.Wait(ctx, 1)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	all, err := got.All()
	require.NoError(t, err)
	require.Len(t, all, 1, "the rejected version was sent once, not again after the NACK")
	require.Equal(t, "bad."+translate.Revision, all[0].GetVersionInfo())

	// Publishing the same content again sends nothing; a new version is sent.
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 5*time.Second)}}, "bad"))
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 3*time.Second)}}, "fixed"))
	all, err = got.Wait(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, "fixed."+translate.Revision, all[1].GetVersionInfo())
	time.Sleep(300 * time.Millisecond)
	all, _ = got.All()
	require.Len(t, all, 2)
}

// TestDeltaIsIncremental: a delta client gets only what changed, removals
// included, and a NACKed resource is not sent again.
func TestDeltaIsIncremental(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t)
	conn := serve(t, c)
	a, b := cluster("a", time.Second), cluster("b", time.Second)
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{a, b}}, "v1"))

	cl, err := adstest.NewDelta(ctx, conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Len(t, resp.GetResources(), 2)
	require.NoError(t, cl.Ack(resp))

	// b changes, a stays, c appears.
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{a, cluster("b", 2*time.Second), cluster("c", time.Second)}}, "v2"))
	resp, err = cl.Recv()
	require.NoError(t, err)
	var sent []string
	for _, r := range resp.GetResources() {
		sent = append(sent, r.GetName())
	}
	sort.Strings(sent)
	require.Equal(t, []string{"b", "c"}, sent)
	require.NoError(t, cl.Nack(resp, "cluster c: rejected"))

	// Nothing is re-sent after the NACK; removing a is.
	got := adstest.Collect(cl.Recv, cl.Ack)
	time.Sleep(300 * time.Millisecond)
	all, err := got.All()
	require.NoError(t, err)
	require.Empty(t, all)
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("b", 2*time.Second), cluster("c", time.Second)}}, "v3"))
	all, err = got.Wait(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, all[0].GetResources())
	require.Equal(t, []string{"a"}, all[0].GetRemovedResources())
	require.Equal(t, []string{"b", "c"}, sortedKeys(cl.Known(resource.ClusterType)))
}

// TestSharedResources: proxies publishing the same messages share them, and
// forgetting proxies releases them.
func TestSharedResources(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := cache.New(cache.Options{Metrics: reg})
	require.NoError(t, err)
	shared := &translate.Resources{
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", time.Second)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a"), cla("b")},
	}
	for i := range 100 {
		key := atollres.Key{Mesh: "default", Name: "web-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		require.NoError(t, c.Publish(key, shared, "v1"))
	}
	st := c.Stats()
	require.Equal(t, cache.Stats{Proxies: 100, Resources: 400, DistinctResources: 4}, st)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	gauges := map[string]float64{}
	for _, mf := range mfs {
		gauges[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	require.Equal(t, map[string]float64{"atoll_xds_cache_proxies": 100, "atoll_xds_cache_resources": 400, "atoll_xds_cache_distinct_resources": 4}, gauges)
	for i := range 100 {
		c.Forget(atollres.Key{Mesh: "default", Name: "web-" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	require.Equal(t, cache.Stats{}, c.Stats())
}

// TestForgetKeepsAWatchedSnapshot: a proxy that is waiting for updates keeps
// its snapshot across Forget (it reconnected before Forget arrived); once
// its stream ended, Forget drops it.
func TestForgetKeepsAWatchedSnapshot(t *testing.T) {
	ctx := ctxT(t)
	c := newCache(t)
	conn := serve(t, c)
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1"))

	streamCtx, cancel := context.WithCancel(ctx)
	cl, err := adstest.NewSotW(streamCtx, conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.NoError(t, cl.Ack(resp))   // opens a watch waiting for v != v1
	time.Sleep(200 * time.Millisecond) // for the server to open it
	c.Forget(web1)
	require.Equal(t, 1, c.Stats().Proxies)

	// The watch still gets the next publish.
	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 2*time.Second)}}, "v2"))
	resp, err = cl.Recv()
	require.NoError(t, err)
	require.Equal(t, "v2."+translate.Revision, resp.GetVersionInfo())

	cancel()
	require.Eventually(t, func() bool {
		c.Forget(web1)
		return c.Stats().Proxies == 0
	}, 5*time.Second, 10*time.Millisecond, "the snapshot is dropped once nobody watches it")
}

func TestPublishRejects(t *testing.T) {
	c := newCache(t)
	require.ErrorContains(t, c.Publish(web1, nil, "v"), "nil resources")
	require.ErrorContains(t, c.Publish(web1, &translate.Resources{}, ""), "empty version")
	err := c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second), cluster("a", time.Second)}}, "v")
	require.ErrorContains(t, err, `two type.googleapis.com/envoy.config.cluster.v3.Cluster resources are named "a"`)
	require.Equal(t, cache.Stats{}, c.Stats(), "a rejected publish holds nothing")
}

func newCacheB() (*cache.Cache, error) { return cache.New(cache.Options{}) }

func newCache(t *testing.T) *cache.Cache {
	t.Helper()
	c, err := cache.New(cache.Options{})
	require.NoError(t, err)
	return c
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
