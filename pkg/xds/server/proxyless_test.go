package server_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/proto"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/dataplane"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

var (
	greeterKey = atollres.Key{Mesh: "default", Name: "greeter-1"}
	clientKey  = atollres.Key{Mesh: "default", Name: "client-1"}
)

// reconciler stands in for pkg/xds/sync: it publishes the IR a test set for
// a proxy when the proxy connects, and on every change while it is.
type reconciler struct {
	t     testing.TB
	e     *env
	mu    sync.Mutex
	proxy map[atollres.Key]*ir.Proxy
	live  map[atollres.Key]bool
}

func newReconciler(t testing.TB) *reconciler {
	return &reconciler{t: t, proxy: map[atollres.Key]*ir.Proxy{}, live: map[atollres.Key]bool{}}
}

func (r *reconciler) connected(key atollres.Key, f ir.Flavour) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[key] = true
	if p := r.proxy[key]; p != nil {
		r.publish(key, p)
	}
}

func (r *reconciler) set(key atollres.Key, p *ir.Proxy) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.proxy[key] = p
	r.publish(key, p)
}

func (r *reconciler) publish(key atollres.Key, p *ir.Proxy) {
	res, err := translate.Translate(p)
	require.NoError(r.t, err)
	version, err := p.Hash()
	require.NoError(r.t, err)
	require.NoError(r.t, r.e.cache.Publish(key, res, version))
}

func greeterIR(addr string) *ir.Proxy {
	host, port := splitAddr(addr)
	return &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: "greeter-1", Services: []string{"greeter"}},
		Flavour:  ir.FlavourProxyless,
		Node:     ir.Node{ID: greeterKey.String()},
		Inbounds: []ir.Inbound{{Address: host, Port: port, Service: "greeter", Protocol: ir.ProtocolGRPC}},
	}
}

func clientIR(addr string, timeout time.Duration) *ir.Proxy {
	host, port := splitAddr(addr)
	return &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: "client-1", Services: []string{"client"}},
		Flavour:  ir.FlavourProxyless,
		Node:     ir.Node{ID: clientKey.String()},
		Outbounds: []ir.Outbound{{
			Service: "greeter", Protocol: ir.ProtocolGRPC,
			Routes:   []ir.Route{{Clusters: []ir.WeightedCluster{{Name: "greeter"}}}},
			Timeouts: ir.Timeouts{RequestTimeout: timeout},
		}},
		Clusters: []ir.Cluster{{
			Name: "greeter", Service: "greeter", Protocol: ir.ProtocolGRPC,
			Localities: []ir.Locality{{Endpoints: []ir.Endpoint{{Address: host, Port: port}}}},
		}},
	}
}

func splitAddr(addr string) (string, uint32) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.ParseUint(p, 10, 16)
	return host, uint32(port)
}

// proxylessBootstrap registers key through POST /bootstrap as atoll-dp does
// in proxyless mode and returns the gRPC bootstrap JSON.
func (e *env) proxylessBootstrap(key atollres.Key, service string, port uint32) []byte {
	e.t.Helper()
	spec := &dataplane.Spec{Networking: dataplane.Networking{
		Address: "127.0.0.1",
		Inbound: []dataplane.Inbound{{Port: port, Tags: map[string]string{dataplane.ServiceTag: service, dataplane.ProtocolTag: "grpc"}}},
	}}
	dir := e.t.TempDir()
	var resp dpapi.Response
	code, msg := e.post(dpapi.BootstrapPath, e.token(key), dpapi.Request{
		Mesh: key.Mesh, Name: key.Name, ProxyType: dpapi.ProxyProxyless,
		Dataplane: dataplaneJSON(e.t, key, spec),
		Version:   dpapi.Version{AtollDP: "0.1.0"},
		XDSServer: e.addr,
		Proxyless: &dpapi.ProxylessPaths{
			CertificateFile: dir + "/cert.pem", PrivateKeyFile: dir + "/key.pem", CABundleFile: dir + "/ca.pem",
			ServerCAFile: e.caFile,
		},
	}, &resp)
	require.Equal(e.t, http.StatusOK, code, msg)
	require.Equal(e.t, key.String(), resp.NodeID)
	return resp.Bootstrap
}

// startGreeter starts a gRPC xDS server from the bootstrap the control plane
// returned and waits until it serves.
func (e *env) startGreeter(r *reconciler) string {
	e.t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(e.t, err)
	_, port := splitAddr(lis.Addr().String())
	boot := e.proxylessBootstrap(greeterKey, "greeter", port)
	r.set(greeterKey, greeterIR(lis.Addr().String()))
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(e.t, err)
	serving := make(chan struct{})
	var once sync.Once
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting(boot),
		xds.ServingModeCallback(func(_ net.Addr, args xds.ServingModeChangeArgs) {
			if args.Mode == connectivity.ServingModeServing {
				once.Do(func() { close(serving) })
			}
		}))
	require.NoError(e.t, err)
	testgrpc.RegisterTestServiceServer(srv, &greeter{name: "greeter-1"})
	go func() { _ = srv.Serve(lis) }()
	e.t.Cleanup(srv.Stop)
	select {
	case <-serving:
	case <-time.After(20 * time.Second):
		e.t.Fatal("the gRPC xDS server never received its listener")
	}
	return lis.Addr().String()
}

type greeter struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (g *greeter) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Hostname: g.name}, nil
}

// TestProxylessEndToEnd runs real gRPC-Go xDS workloads on bootstraps the
// server generated: configuration arrives over TLS, authenticated by the
// token in the bootstrap, and an RPC works. A deliberately invalid update is
// NACKed: the NACK lands in the insight and a metric, is not re-sent, and
// traffic keeps flowing on the last good configuration until a fixed update
// is accepted. When the client goes away its insight shows it offline and
// its dataplane, registered by the agent, is deleted after the grace period.
func TestProxylessEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gRPC xDS clients and servers")
	}
	r := newReconciler(t)
	e := newEnv(t, envOptions{onConnect: r.connected})
	r.e = e
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()

	greeterAddr := e.startGreeter(r)
	clientBoot := e.proxylessBootstrap(clientKey, "client", 9000)
	r.set(clientKey, clientIR(greeterAddr, 10*time.Second))
	res, err := xds.NewXDSResolverWithConfigForTesting(clientBoot)
	require.NoError(t, err)
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(creds), grpc.WithResolvers(res))
	require.NoError(t, err)
	defer conn.Close()
	tc := testgrpc.NewTestServiceClient(conn)

	resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "greeter-1", resp.GetHostname())
	require.Eventually(t, func() bool { return len(e.tracker.Events()) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{"connected default/greeter-1 proxyless", "connected default/client-1 proxyless"}, e.tracker.Events())

	// The insight shows the client online, with what it acknowledged.
	require.Eventually(t, func() bool {
		in := e.insight(clientKey)
		return in != nil && in.IsOnline() && in.Subscriptions[0].Status.CDS.ResponsesAcknowledged >= 1 && in.Subscriptions[0].Status.EDS.ResponsesAcknowledged >= 1
	}, 5*time.Second, 20*time.Millisecond)
	sub := e.insight(clientKey).Subscriptions[0]
	require.Equal(t, "cp-1", sub.ControlPlaneInstanceID)
	require.Equal(t, "0.1.0", sub.Version.KumaDp.Version)
	require.Contains(t, sub.Version.Dependencies, "gRPC Go")

	// A cluster gRPC rejects: gRPC clusters must be EDS, LOGICAL_DNS or aggregate.
	good, err := translate.Translate(clientIR(greeterAddr, 10*time.Second))
	require.NoError(t, err)
	bad := *good
	broken := proto.Clone(good.Clusters[0]).(*clusterv3.Cluster)
	broken.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	broken.EdsClusterConfig = nil
	bad.Clusters = []*clusterv3.Cluster{broken}
	require.NoError(t, e.cache.Publish(clientKey, &bad, "deliberately-bad"))
	require.Eventually(t, func() bool { return len(e.obs.NACKs()) > 0 }, 10*time.Second, 10*time.Millisecond, "gRPC NACKs the cluster")
	nack := e.obs.NACKs()[0]
	require.Contains(t, nack, "default/client-1 "+resource.ClusterType+" deliberately-bad."+translate.Revision)
	require.Contains(t, nack, "unsupported cluster type")
	t.Logf("gRPC's NACK: %s", nack)

	time.Sleep(time.Second)
	require.Len(t, e.obs.NACKs(), 1, "the rejected version was not sent again")
	require.Equal(t, 1.0, e.counter("atoll_xds_nacks_total", "type", "cds"))
	for range 20 {
		resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		require.NoError(t, err, "traffic keeps flowing on the last good configuration")
		require.Equal(t, "greeter-1", resp.GetHostname())
	}
	require.Eventually(t, func() bool {
		in := e.insight(clientKey)
		return in != nil && in.Subscriptions[0].Status.CDS.ResponsesRejected == 1
	}, 5*time.Second, 20*time.Millisecond)
	lastNack := e.insight(clientKey).Subscriptions[0].Status.LastNACK
	require.Contains(t, lastNack, "cds version deliberately-bad")
	require.Contains(t, lastNack, "unsupported cluster type")

	// A fixed configuration with another version is sent and accepted.
	acks := len(e.obs.ACKs())
	r.set(clientKey, clientIR(greeterAddr, 9*time.Second))
	require.Eventually(t, func() bool {
		for _, a := range e.obs.ACKs()[acks:] {
			if strings.Contains(a, resource.ClusterType) {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	_, err = tc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	require.NoError(t, err)

	// The client goes away: offline, then deleted (atoll-dp registered it).
	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool {
		in := e.insight(clientKey)
		return in != nil && !in.IsOnline() && in.Subscriptions[0].DisconnectTime != nil
	}, 10*time.Second, 10*time.Millisecond, "the insight shows the client offline")
	require.Contains(t, e.tracker.Events(), "disconnected default/client-1")
	require.Eventually(t, func() bool {
		_, err := e.mgr.Get(e.ctx, atollres.DataplaneType, clientKey)
		return err != nil && e.insight(clientKey) == nil
	}, 10*time.Second, 20*time.Millisecond, "the agent-registered dataplane and its insight are deleted after the grace period")
	_, err = e.mgr.Get(e.ctx, atollres.DataplaneType, greeterKey)
	require.NoError(t, err, "the connected greeter stays")
}
