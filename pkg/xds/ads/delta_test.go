package ads

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

type deltaResponse = discoveryv3.DeltaDiscoveryResponse

func endpoints(ls ...*endpointv3.ClusterLoadAssignment) *translate.Resources {
	return &translate.Resources{Endpoints: ls}
}

// deltaStep waits for the n-th response of got and returns it.
func deltaStep(t *testing.T, got *adstest.Responses[*deltaResponse], n int) *deltaResponse {
	t.Helper()
	all, err := got.Wait(ctxT(t), n)
	require.NoError(t, err)
	require.Len(t, all, n)
	return all[n-1]
}

// TestDeltaExplicitSubscriptions follows Envoy's named EDS subscriptions:
// only subscribed resources are sent, and only when they change; a name
// subscribed before it exists is sent when it appears and announced removed
// when it goes; an unsubscribed name is forgotten, so subscribing again
// sends it again.
func TestDeltaExplicitSubscriptions(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	a, b := cla("a", 1), cla("b", 1)
	h.publish(web1, endpoints(a, b), "v1")
	cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, cl.Ack)

	require.NoError(t, cl.Subscribe(resource.EndpointType, "a", "x"))
	resp := deltaStep(t, got, 1)
	require.Equal(t, []string{"a"}, deltaNames(resp))
	require.Equal(t, "v1."+translate.Revision, resp.GetSystemVersionInfo())

	h.publish(web1, endpoints(a, cla("b", 2)), "v2") // b is not subscribed
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 1, "a change of an unsubscribed resource sends nothing")

	h.publish(web1, endpoints(cla("a", 2), cla("b", 2), cla("x", 1)), "v3")
	require.Equal(t, []string{"a", "x"}, deltaNames(deltaStep(t, got, 2)))

	require.NoError(t, cl.Unsubscribe(resource.EndpointType, "a"))
	require.NoError(t, cl.Subscribe(resource.EndpointType, "b"))
	require.Equal(t, []string{"b"}, deltaNames(deltaStep(t, got, 3)))
	require.NoError(t, cl.Subscribe(resource.EndpointType, "a"))
	require.Equal(t, []string{"a"}, deltaNames(deltaStep(t, got, 4)), "subscribing again sends it again")

	h.publish(web1, endpoints(cla("a", 2), cla("b", 2)), "v4")
	resp = deltaStep(t, got, 5)
	require.Empty(t, resp.GetResources())
	require.Equal(t, []string{"x"}, resp.GetRemovedResources())
	require.Equal(t, []string{"a", "b"}, sortedKeys(cl.Known(resource.EndpointType)))
}

// TestDeltaInitialResourceVersions: a proxy that reconnects with the
// versions it holds is sent only what differs, and told what is gone.
func TestDeltaInitialResourceVersions(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", time.Second), cluster("c", time.Second)}}, "v1")
	first, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, first.Subscribe(resource.ClusterType, "*"))
	resp, err := first.Recv()
	require.NoError(t, err)
	require.Len(t, resp.GetResources(), 3)
	held := first.Known(resource.ClusterType)

	// While the proxy is away: b changes, c goes, d comes.
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", 2*time.Second), cluster("d", time.Second)}}, "v2")
	again, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, again.Resume(resource.ClusterType, held, "*"))
	resp, err = again.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"b", "d"}, deltaNames(resp))
	require.Equal(t, []string{"c"}, resp.GetRemovedResources())

	fresh, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, fresh.Subscribe(resource.ClusterType, "*"))
	_, err = fresh.Recv()
	require.NoError(t, err)
	require.Equal(t, fresh.Known(resource.ClusterType), again.Known(resource.ClusterType))
}

// TestDeltaWildcardStartsEvenWhenEmpty: the first wildcard request is
// answered even when the type has nothing (Envoy waits for it to finish
// initialising); named subscriptions to nothing are not.
func TestDeltaWildcardStartsEvenWhenEmpty(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1")
	cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, cl.Ack)
	require.NoError(t, cl.Subscribe(resource.RouteType, "nothing"))
	require.NoError(t, cl.Subscribe(resource.ListenerType))
	resp := deltaStep(t, got, 1)
	require.Equal(t, resource.ListenerType, resp.GetTypeUrl())
	require.Empty(t, resp.GetResources())
	time.Sleep(200 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 1)
}

// TestDeltaCatchesUpOnLatestOnly: a proxy slow to ACK gets, once it does,
// the net difference to the latest snapshot in one response — not every
// intermediate version.
func TestDeltaCatchesUpOnLatestOnly(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	cs := func(timeouts ...time.Duration) *translate.Resources {
		r := &translate.Resources{}
		for i, d := range timeouts {
			if d > 0 {
				r.Clusters = append(r.Clusters, cluster(string(rune('a'+i)), d))
			}
		}
		return r
	}
	h.publish(web1, cs(time.Second, time.Second, time.Second), "v1")
	cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Len(t, resp.GetResources(), 3)

	// Not ACKed yet: the changes wait.
	h.publish(web1, cs(time.Second, 2*time.Second, time.Second), "v2")
	h.publish(web1, cs(time.Second, 3*time.Second, 0, time.Second), "v3")
	h.publish(web1, cs(time.Second, time.Second, 0, time.Second), "v4") // b back as it was
	require.NoError(t, cl.Ack(resp))
	resp, err = cl.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"d"}, deltaNames(resp))
	require.Equal(t, []string{"c"}, resp.GetRemovedResources())
	require.Equal(t, "v4."+translate.Revision, resp.GetSystemVersionInfo())
}

// TestDeltaUnsubscribeUnderWildcard: unsubscribing a name the wildcard
// still covers sends it again, as go-control-plane does; unsubscribing the
// wildcard stops updates of resources not named.
func TestDeltaUnsubscribeUnderWildcard(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, endpoints(cla("a", 1), cla("b", 1)), "v1")
	cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, cl.Ack)
	require.NoError(t, cl.Subscribe(resource.EndpointType, "*", "a"))
	require.Equal(t, []string{"a", "b"}, deltaNames(deltaStep(t, got, 1)))
	require.NoError(t, cl.Unsubscribe(resource.EndpointType, "a"))
	require.Equal(t, []string{"a"}, deltaNames(deltaStep(t, got, 2)))

	require.NoError(t, cl.Unsubscribe(resource.EndpointType, "*"))
	require.NoError(t, cl.Subscribe(resource.EndpointType, "a"))
	time.Sleep(200 * time.Millisecond)
	h.publish(web1, endpoints(cla("a", 1), cla("b", 2)), "v2")
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 2, "b is no longer subscribed")
	h.publish(web1, endpoints(cla("a", 2), cla("b", 2)), "v3")
	require.Equal(t, []string{"a"}, deltaNames(deltaStep(t, got, 3)))
}

// TestDeltaNackIsNotResent: a rejected resource is not sent again, and the
// NACK is reported once with the response's version.
func TestDeltaNackIsNotResent(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1")
	cl, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, func(r *deltaResponse) error { return cl.Nack(r, "rejected") })
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	deltaStep(t, got, 1)
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 1)
	require.Equal(t, []string{"nack default/web-1 Cluster v1." + translate.Revision + ": rejected"}, h.rec.Events("nack"))
}
