package ads

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/proto"

	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

type greeter struct {
	testgrpc.UnimplementedTestServiceServer
}

func (greeter) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Hostname: "greeter-1"}, nil
}

// grpcBootstrap is the gRPC xDS bootstrap of node against the harness.
func (h *harness) grpcBootstrap(node string) []byte {
	b, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      h.addr,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node":                                   map[string]any{"id": node},
		"server_listener_resource_name_template": translate.ProxylessServerListenerTemplate,
	})
	require.NoError(h.t, err)
	return b
}

// publishIR translates p and publishes it for key.
func (h *harness) publishIR(key atollres.Key, p *ir.Proxy) *translate.Resources {
	h.t.Helper()
	res, err := translate.Translate(p)
	require.NoError(h.t, err)
	version, err := p.Hash()
	require.NoError(h.t, err)
	h.publish(key, res, version)
	return res
}

func clientProxy(greeterHost string, greeterPort uint32, timeout time.Duration) *ir.Proxy {
	outbound := func(service string, port uint32) (ir.Outbound, ir.Cluster) {
		return ir.Outbound{
				Service: service, Protocol: ir.ProtocolGRPC,
				Routes:   []ir.Route{{Clusters: []ir.WeightedCluster{{Name: service}}}},
				Timeouts: ir.Timeouts{RequestTimeout: timeout},
			}, ir.Cluster{
				Name: service, Service: service, Protocol: ir.ProtocolGRPC,
				Localities: []ir.Locality{{Endpoints: []ir.Endpoint{{Address: greeterHost, Port: port}}}},
			}
	}
	g, gc := outbound("greeter", greeterPort)
	o, oc := outbound("other", 1)
	return &ir.Proxy{
		Identity:  ir.Identity{Mesh: "default", Dataplane: "client-1", Services: []string{"client"}},
		Flavour:   ir.FlavourProxyless,
		Node:      ir.Node{ID: "default/client-1"},
		Outbounds: []ir.Outbound{g, o},
		Clusters:  []ir.Cluster{gc, oc},
	}
}

// TestGRPCClient serves a real gRPC-Go xDS server and client. The client's
// snapshot holds a second service it never calls: gRPC asks only for what
// its route uses, and is sent exactly that. A change arrives; a cluster gRPC
// rejects is NACKed once, traffic keeps flowing on the last good
// configuration, and the next good version is accepted.
func TestGRPCClient(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test starts real gRPC xDS clients and servers; make test runs it")
	}
	ctx := ctxT(t)
	h := newHarness(t)
	greeterKey := atollres.Key{Mesh: "default", Name: "greeter-1"}
	clientKey := atollres.Key{Mesh: "default", Name: "client-1"}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host, portText, _ := net.SplitHostPort(lis.Addr().String())
	port64, _ := strconv.ParseUint(portText, 10, 16)
	port := uint32(port64)
	h.publishIR(greeterKey, &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: "greeter-1", Services: []string{"greeter"}},
		Flavour:  ir.FlavourProxyless,
		Node:     ir.Node{ID: greeterKey.String()},
		Inbounds: []ir.Inbound{{Address: host, Port: port, Service: "greeter", Protocol: ir.ProtocolGRPC}},
	})
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	serving := make(chan struct{}, 1)
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting(h.grpcBootstrap(greeterKey.String())),
		xds.ServingModeCallback(func(_ net.Addr, args xds.ServingModeChangeArgs) {
			if args.Mode == connectivity.ServingModeServing {
				select {
				case serving <- struct{}{}:
				default:
				}
			}
		}))
	require.NoError(t, err)
	testgrpc.RegisterTestServiceServer(srv, greeter{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	select {
	case <-serving:
	case <-ctx.Done():
		t.Fatal("the gRPC xDS server never received its listener")
	}

	good := h.publishIR(clientKey, clientProxy(host, port, 10*time.Second))
	res, err := xds.NewXDSResolverWithConfigForTesting(h.grpcBootstrap(clientKey.String()))
	require.NoError(t, err)
	ccreds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(ccreds), grpc.WithResolvers(res))
	require.NoError(t, err)
	defer conn.Close()
	tc := testgrpc.NewTestServiceClient(conn)
	resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "greeter-1", resp.GetHostname())

	for _, r := range h.rec.SotW() {
		for _, name := range sotwNames(t, r) {
			require.NotContains(t, name, "other", "gRPC never asked for the other service's %s", short(r.GetTypeUrl()))
		}
	}
	require.Eventually(t, func() bool {
		acked := map[string]bool{}
		for _, e := range h.rec.Events("ack " + clientKey.String()) {
			acked[strings.Fields(e)[2]] = true
		}
		return acked["Listener"] && acked["RouteConfiguration"] && acked["Cluster"] && acked["ClusterLoadAssignment"]
	}, 5*time.Second, 10*time.Millisecond)

	// A new timeout arrives and is accepted.
	acks := len(h.rec.Events("ack " + clientKey.String()))
	h.publishIR(clientKey, clientProxy(host, port, 5*time.Second))
	require.Eventually(t, func() bool { return len(h.rec.Events("ack "+clientKey.String())) > acks }, 10*time.Second, 10*time.Millisecond)

	// gRPC refuses STATIC clusters.
	bad := *good
	broken := proto.Clone(good.Clusters[0]).(*clusterv3.Cluster)
	broken.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	broken.EdsClusterConfig = nil
	bad.Clusters = append([]*clusterv3.Cluster{broken}, good.Clusters[1:]...)
	h.publish(clientKey, &bad, "deliberately-bad")
	require.Eventually(t, func() bool { return len(h.rec.Events("nack")) > 0 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(time.Second)
	nacks := h.rec.Events("nack")
	require.Len(t, nacks, 1, "the rejected version was not sent again")
	require.Contains(t, nacks[0], "Cluster deliberately-bad."+translate.Revision)
	for range 10 {
		_, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		require.NoError(t, err, "traffic keeps flowing on the last good configuration")
	}

	acks = len(h.rec.Events("ack " + clientKey.String()))
	h.publishIR(clientKey, clientProxy(host, port, 9*time.Second))
	require.Eventually(t, func() bool {
		for _, e := range h.rec.Events("ack " + clientKey.String())[acks:] {
			if strings.Contains(e, " Cluster ") {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	_, err = tc.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	require.NoError(t, err)
}
