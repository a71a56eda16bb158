package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/insight"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
)

type discoveryResponse = discoveryv3.DiscoveryResponse

// connect opens an admitted SotW stream for key that ACKs everything, and
// returns a function closing it.
func (e *env) connect(key atollres.Key) (*adstest.Responses[*discoveryResponse], func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(withToken(e.ctx, e.token(key)))
	cl, err := adstest.NewSotW(ctx, e.grpcConn(), envoyNode(key))
	require.NoError(e.t, err)
	got := adstest.Collect(cl.Recv, cl.Ack)
	require.NoError(e.t, cl.Subscribe(resource.ClusterType))
	return got, cancel
}

// wait waits for n responses, at most 10s.
func (e *env) wait(got *adstest.Responses[*discoveryResponse], n int) ([]*discoveryResponse, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	return got.Wait(ctx, n)
}

func (e *env) dataplaneExists(key atollres.Key) bool {
	_, err := e.mgr.Get(context.Background(), atollres.DataplaneType, key)
	return err == nil
}

func (e *env) register(key atollres.Key) {
	e.t.Helper()
	code, msg := e.post(dpapi.BootstrapPath, e.token(key), envoyRequest(key, dataplaneJSON(e.t, key, dataplaneSpec("web", 8080))), nil)
	require.Equal(e.t, http.StatusOK, code, msg)
}

// TestPreCreatedDataplaneStays: a dataplane created by a user shows online,
// then offline, and is never deleted.
func TestPreCreatedDataplaneStays(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	got, closeStream := e.connect(web1)
	_, err := e.wait(got, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { in := e.insight(web1); return in != nil && in.IsOnline() }, 5*time.Second, 10*time.Millisecond)
	connectTime := *e.insight(web1).Subscriptions[0].ConnectTime

	closeStream()
	require.Eventually(t, func() bool { in := e.insight(web1); return in != nil && !in.IsOnline() }, 5*time.Second, 10*time.Millisecond)
	sub := e.insight(web1).Subscriptions[0]
	require.Equal(t, connectTime, *sub.ConnectTime)
	require.False(t, sub.DisconnectTime.Before(*sub.ConnectTime))
	time.Sleep(600 * time.Millisecond) // twice the grace period
	require.True(t, e.dataplaneExists(web1))
	require.Equal(t, []string{"connected default/web-1 envoy", "disconnected default/web-1"}, e.tracker.Events())
}

// TestAgentRegisteredDataplane: a dataplane registered at bootstrap
// survives a reconnect within the grace period and is deleted, with its
// insight, when its proxy stays away.
func TestAgentRegisteredDataplane(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.register(web1)
	e.publishCluster(web1, "v1")
	got, closeStream := e.connect(web1)
	_, err := e.wait(got, 1)
	require.NoError(t, err)

	// Reconnects within the grace period.
	closeStream()
	time.Sleep(100 * time.Millisecond)
	got, closeStream = e.connect(web1)
	_, err = e.wait(got, 1)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.True(t, e.dataplaneExists(web1))
	require.Eventually(t, func() bool { in := e.insight(web1); return in != nil && len(in.Subscriptions) == 2 && in.IsOnline() }, 5*time.Second, 10*time.Millisecond)

	closeStream()
	require.Eventually(t, func() bool { return !e.dataplaneExists(web1) && e.insight(web1) == nil }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{
		"connected default/web-1 envoy", "disconnected default/web-1",
		"connected default/web-1 envoy", "disconnected default/web-1",
	}, e.tracker.Events())
}

// TestRegisteredButNeverConnected: a dataplane registered at bootstrap whose
// proxy never connects is removed after the registration timeout.
func TestRegisteredButNeverConnected(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(o *server.Options) { o.RegistrationTimeout = 200 * time.Millisecond }})
	e.register(web1)
	require.True(t, e.dataplaneExists(web1))
	require.Eventually(t, func() bool { return !e.dataplaneExists(web1) }, 5*time.Second, 10*time.Millisecond)
}

// TestShutdownKeepsDataplanes: stopping the control plane ends every stream
// (the insight says so) but deletes nothing: the proxies will be back.
func TestShutdownKeepsDataplanes(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.register(web1)
	e.publishCluster(web1, "v1")
	got, _ := e.connect(web1)
	_, err := e.wait(got, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { in := e.insight(web1); return in != nil && in.IsOnline() }, 5*time.Second, 10*time.Millisecond)
	e.stop()
	in := e.insight(web1)
	require.NotNil(t, in)
	require.False(t, in.IsOnline(), "the final flush recorded the disconnection")
	time.Sleep(600 * time.Millisecond)
	require.True(t, e.dataplaneExists(web1))
}

// TestTrackerSeesProxiesNotStreams: two streams of one proxy make one
// connection for the tracker.
func TestTrackerSeesProxiesNotStreams(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	got1, close1 := e.connect(web1)
	got2, close2 := e.connect(web1)
	_, err := e.wait(got1, 1)
	require.NoError(t, err)
	_, err = e.wait(got2, 1)
	require.NoError(t, err)
	close1()
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, []string{"connected default/web-1 envoy"}, e.tracker.Events())
	close2()
	require.Eventually(t, func() bool { return len(e.tracker.Events()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "disconnected default/web-1", e.tracker.Events()[1])
}

// TestInsightWritesAreBounded: a burst of updates and ACKs becomes a few
// insight writes, not one per ACK; the subscription list keeps the latest.
func TestInsightWritesAreBounded(t *testing.T) {
	e := newEnv(t, envOptions{mutate: func(o *server.Options) {
		o.InsightFlushInterval = time.Second
		o.MaxSubscriptions = 3
	}})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v0")
	got, closeStream := e.connect(web1)
	_, err := e.wait(got, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.insight(web1) != nil }, 5*time.Second, 10*time.Millisecond)
	before := e.counter("atoll_dataplane_insight_writes_total")

	const updates = 200
	start := time.Now()
	for i := 1; i <= updates; i++ {
		e.publishCluster(web1, fmt.Sprintf("v%d", i))
		_, err := e.wait(got, i+1)
		require.NoError(t, err)
	}
	elapsed := time.Since(start)
	time.Sleep(1500 * time.Millisecond)
	writes := e.counter("atoll_dataplane_insight_writes_total") - before
	t.Logf("%d updates ACKed in %s caused %.0f insight writes", updates, elapsed, writes)
	require.LessOrEqual(t, writes, elapsed.Seconds()+3, "at most one write per flush interval")
	require.Equal(t, insight.Counter(updates+1), e.insight(web1).Subscriptions[0].Status.CDS.ResponsesAcknowledged)
	closeStream()

	for range 4 {
		got, closeStream := e.connect(web1)
		_, err := e.wait(got, 1)
		require.NoError(t, err)
		closeStream()
	}
	require.Eventually(t, func() bool {
		in := e.insight(web1)
		return in != nil && !in.IsOnline() && len(in.Subscriptions) == 3 && in.Subscriptions[2].DisconnectTime != nil &&
			in.Subscriptions[0].Status.CDS.ResponsesSent == 1
	}, 5*time.Second, 20*time.Millisecond, "the insight keeps the latest 3 subscriptions")
}

// TestReconnectRegistersAgain: a proxy away for longer than the grace period
// lost its agent-registered dataplane; its bootstrap's node carries the
// dataplane document, so reconnecting registers it again instead of being
// refused forever.
func TestReconnectRegistersAgain(t *testing.T) {
	e := newEnv(t, envOptions{})
	var boot dpapi.Response
	code, msg := e.post(dpapi.BootstrapPath, e.token(web1), envoyRequest(web1, dataplaneJSON(t, web1, dataplaneSpec("web", 8080))), &boot)
	require.Equal(t, http.StatusOK, code, msg)
	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.Unmarshal(boot.Bootstrap, &b))
	node := b.GetNode() // what Envoy sends on every new stream
	token := strings.TrimPrefix(b.GetDynamicResources().GetAdsConfig().GetGrpcServices()[0].GetInitialMetadata()[0].GetValue(), "Bearer ")
	e.publishCluster(web1, "v1")

	stream := func() func() {
		ctx, cancel := context.WithCancel(withToken(e.ctx, token))
		cl, err := adstest.NewSotW(ctx, e.grpcConn(), node)
		require.NoError(t, err)
		require.NoError(t, cl.Subscribe(resource.ClusterType))
		resp, err := cl.Recv()
		require.NoError(t, err)
		require.Equal(t, []string{"config-of-default/web-1"}, clusterNames(resp))
		return cancel
	}
	stream()()
	require.Eventually(t, func() bool { return !e.dataplaneExists(web1) }, 5*time.Second, 10*time.Millisecond)

	closeStream := stream()
	defer closeStream()
	dp, err := e.mgr.Get(context.Background(), atollres.DataplaneType, web1)
	require.NoError(t, err, "the reconnecting proxy registered its dataplane again")
	require.Equal(t, server.RegisteredByAgent, dp.Meta.Labels[server.RegisteredByLabel])
}
