package server_test

import (
	"context"
	"testing"
	"time"

	envoyres "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
)

// TestSweeperRepairsWhatAStoppedInstanceLeft: dataplanes whose latest
// subscription belongs to an instance that is gone are marked offline (once
// the grace has passed), and those atoll-dp registered are deregistered
// after the deregistration grace; subscriptions of live instances, of this
// instance and fresh ones are left alone.
func TestSweeperRepairsWhatAStoppedInstanceLeft(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	ago := func(d time.Duration) *time.Time { at := now.Add(-d); return &at }
	put := func(name string, registered bool, subs ...insight.Subscription) resource.Key {
		key := resource.Key{Mesh: "default", Name: name}
		dp := &resource.Resource{Type: resource.DataplaneType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name}, Spec: dataplaneSpec("web", 8080)}
		if registered {
			dp.Meta.Labels = map[string]string{server.RegisteredByLabel: server.RegisteredByAgent}
		}
		_, err := e.mgr.Apply(e.ctx, dp, manager.ApplyOptions{})
		require.NoError(t, err)
		_, err = e.mgr.Apply(e.ctx, &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name},
			Spec: &insight.DataplaneInsight{Subscriptions: subs}}, manager.ApplyOptions{System: true})
		require.NoError(t, err)
		return key
	}
	sub := func(instance string, connected, disconnected *time.Time) insight.Subscription {
		return insight.Subscription{ID: instance + "-1", ControlPlaneInstanceID: instance, ConnectTime: connected, DisconnectTime: disconnected}
	}
	orphan := put("orphan", false, sub("live", ago(2*time.Hour), ago(time.Hour)), sub("dead", ago(time.Hour), nil))
	onLive := put("on-live", false, sub("live", ago(time.Hour), nil))
	onSelf := put("on-self", false, sub("self", ago(time.Hour), nil))
	fresh := put("fresh", false, sub("starting", ago(time.Second), nil))
	gone := put("gone", true, sub("dead", ago(time.Hour), ago(10*time.Minute)))
	goneByHand := put("gone-by-hand", false, sub("dead", ago(time.Hour), ago(10*time.Minute)))
	recentlyGone := put("recently-gone", true, sub("dead", ago(time.Hour), ago(5*time.Second)))

	sw, err := server.NewSweeper(server.SweepOptions{
		Resources: e.mgr, Self: "self",
		Live:  func(context.Context) (map[string]bool, error) { return map[string]bool{"live": true}, nil },
		Grace: time.Minute, DeregistrationGrace: 30 * time.Second, Interval: time.Minute,
		Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	offline, deleted, err := sw.Sweep(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, offline)
	require.Equal(t, 1, deleted)

	online := func(key resource.Key) bool {
		res, err := e.mgr.Get(e.ctx, resource.DataplaneInsightType, key)
		require.NoError(t, err)
		return res.Spec.(*insight.DataplaneInsight).IsOnline()
	}
	require.False(t, online(orphan), "its instance stopped: offline")
	require.True(t, online(onLive))
	require.True(t, online(onSelf))
	require.True(t, online(fresh), "an instance that just started may not have announced itself yet")
	for _, key := range []resource.Key{gone} {
		_, err := e.mgr.Get(e.ctx, resource.DataplaneType, key)
		require.ErrorIs(t, err, store.ErrNotFound, "registered by atoll-dp, gone for longer than the grace: deregistered")
	}
	for _, key := range []resource.Key{goneByHand, recentlyGone, orphan} {
		_, err := e.mgr.Get(e.ctx, resource.DataplaneType, key)
		require.NoError(t, err, "%s stays", key)
	}

	// A second pass has nothing left to do until the grace runs out.
	offline, deleted, err = sw.Sweep(e.ctx)
	require.NoError(t, err)
	require.Zero(t, offline+deleted)
}

// TestRewriteInsightsRestoresWhatTheSweeperMarked: an instance back from a
// partition writes its view of its proxies again, undoing the leader's
// marking them offline.
func TestRewriteInsightsRestoresWhatTheSweeperMarked(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	cl, err := adstest.NewSotW(withToken(e.ctx, e.token(web1)), e.grpcConn(), envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(envoyres.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.NoError(t, cl.Ack(resp))
	online := func() bool { ins := e.insight(web1); return ins != nil && ins.IsOnline() }
	// Wait for the last write the stream causes: the one counting the ACK.
	require.Eventually(t, func() bool {
		ins := e.insight(web1)
		return ins != nil && ins.IsOnline() && ins.Subscriptions[len(ins.Subscriptions)-1].Status.Total.ResponsesAcknowledged == 1
	}, 5*time.Second, 20*time.Millisecond)

	// The leader, taking this instance for dead, marks the proxy offline.
	sw, err := server.NewSweeper(server.SweepOptions{
		Resources: e.mgr, Self: "leader", Grace: time.Nanosecond, Interval: time.Minute,
		Live: func(context.Context) (map[string]bool, error) { return map[string]bool{}, nil },
	})
	require.NoError(t, err)
	offline, _, err := sw.Sweep(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, offline)
	require.False(t, online())
	require.Never(t, online, 300*time.Millisecond, 20*time.Millisecond, "nothing rewrites it by itself")

	e.srv.RewriteInsights()
	require.Eventually(t, online, 5*time.Second, 20*time.Millisecond, "this instance's view is written again")
}
