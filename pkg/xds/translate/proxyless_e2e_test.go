package translate

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// TestProxylessGRPC serves translated proxyless resources from a real
// go-control-plane ADS server to a real gRPC-Go xDS server and client, and
// checks what a user would notice: calls to xds:///greeter reach the server,
// the MeshTimeout-derived stream deadline cuts slow calls, and a changed
// timeout takes effect without restarting anything.
func TestProxylessGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gRPC xDS clients and servers")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	mesh := newTestMesh(t, ctx, ir.MTLSOff)

	client := mesh.client(t, ctx, "client-1", "spiffe://default/greeter", 10*time.Second)
	tc := testgrpc.NewTestServiceClient(client)

	// A call reaches the server through LDS → RDS → CDS → EDS.
	resp, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "greeter-1", resp.GetHostname())
	require.Empty(t, resp.GetUsername(), "plaintext: the server sees no client identity")

	// MeshTimeout lowers the request timeout to 300ms; the server takes 1s.
	// The limit counts from the start of a call, so it is set only now that
	// the channel is ready.
	mesh.setClient(t, ctx, "client-1", "spiffe://default/greeter", 300*time.Millisecond)
	slowCall := func() (time.Duration, error) {
		start := time.Now()
		_, err := tc.UnaryCall(delayed(ctx, time.Second), &testgrpc.SimpleRequest{})
		return time.Since(start), err
	}
	require.Eventually(t, func() bool {
		_, err := slowCall()
		return status.Code(err) == codes.DeadlineExceeded
	}, 10*time.Second, 10*time.Millisecond, "the new timeout never applied")
	took, err := slowCall()
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "got %v", err)
	require.GreaterOrEqual(t, took, 250*time.Millisecond)
	require.Less(t, took, 900*time.Millisecond, "the deadline came from max_stream_duration, not the server")

	// A longer MeshTimeout lets a slow call through again.
	mesh.setClient(t, ctx, "client-1", "spiffe://default/greeter", 5*time.Second)
	require.Eventually(t, func() bool {
		_, err := tc.UnaryCall(delayed(ctx, 500*time.Millisecond), &testgrpc.SimpleRequest{})
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// TestProxylessGRPCMutualTLS runs the same mesh with STRICT mTLS: the server
// sees the client's SPIFFE id, and a client expecting another identity from
// the server refuses to talk to it.
func TestProxylessGRPCMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gRPC xDS clients and servers")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	mesh := newTestMesh(t, ctx, ir.MTLSStrict)

	good := testgrpc.NewTestServiceClient(mesh.client(t, ctx, "client-1", "spiffe://default/greeter", 10*time.Second))
	resp, err := good.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "spiffe://default/client", resp.GetUsername(), "the server saw the client's SPIFFE id over mTLS")

	// The server's certificate says spiffe://default/greeter; this client's
	// cluster expects another service, so the handshake must fail.
	badConn := mesh.client(t, ctx, "client-2", "spiffe://default/somebody-else", 10*time.Second)
	bad := testgrpc.NewTestServiceClient(badConn)
	callCtx, callCancel := context.WithTimeout(ctx, 5*time.Second)
	defer callCancel()
	_, err = bad.UnaryCall(callCtx, &testgrpc.SimpleRequest{})
	require.Error(t, err)
	require.Contains(t, []codes.Code{codes.Unavailable, codes.DeadlineExceeded}, status.Code(err), "got %v", err)
	t.Logf("as expected, the client refused the server: %v", err)
	require.NotEqual(t, connectivity.Ready, badConn.GetState())
}

// testMesh is one ADS server and one proxyless gRPC server of service
// "greeter"; clients are added by client.
type testMesh struct {
	cache   cache.SnapshotCache
	ads     string
	mode    ir.MTLSMode
	server  string // greeter's listening address
	certDir string
}

func newTestMesh(t *testing.T, ctx context.Context, mode ir.MTLSMode) *testMesh {
	t.Helper()
	m := &testMesh{mode: mode, cache: cache.NewSnapshotCache(false, cache.IDHash{}, nil)}
	if mode != ir.MTLSOff {
		m.certDir = writeTestCerts(t, "default", "greeter", "client")
	}

	// The control plane: go-control-plane's ADS server over our cache.
	xdsLis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, server.NewServer(ctx, m.cache, server.CallbackFuncs{}))
	go func() { _ = gs.Serve(xdsLis) }()
	t.Cleanup(gs.Stop)
	m.ads = xdsLis.Addr().String()

	// The workload: a gRPC xDS server. Its listener resource is named after
	// the exact address it listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	m.server = lis.Addr().String()
	host, portText, err := net.SplitHostPort(m.server)
	require.NoError(t, err)
	port, err := strconv.ParseUint(portText, 10, 16)
	require.NoError(t, err)
	m.set(t, ctx, &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: "greeter-1", Services: []string{"greeter"}},
		Flavour:  ir.FlavourProxyless,
		Node:     ir.Node{ID: "greeter-1"},
		MTLS:     ir.NewMTLS(mode),
		Inbounds: []ir.Inbound{{Address: host, Port: uint32(port), Service: "greeter", Protocol: ir.ProtocolGRPC}},
	})
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	serving := make(chan struct{})
	srv, err := xds.NewGRPCServer(
		grpc.Creds(creds),
		xds.BootstrapContentsForTesting(m.bootstrap(t, "greeter-1", "greeter")),
		xds.ServingModeCallback(func(_ net.Addr, args xds.ServingModeChangeArgs) {
			if args.Mode == connectivity.ServingModeServing {
				select {
				case <-serving:
				default:
					close(serving)
				}
			}
		}),
	)
	require.NoError(t, err)
	testgrpc.RegisterTestServiceServer(srv, &greeter{name: "greeter-1"})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	select {
	case <-serving:
	case <-ctx.Done():
		t.Fatal("the gRPC xDS server never received its listener")
	}
	return m
}

// client starts a proxyless client of greeter with node id node, whose
// cluster expects the server to be san and whose calls are capped at
// timeout.
func (m *testMesh) client(t *testing.T, ctx context.Context, node, san string, timeout time.Duration) *grpc.ClientConn {
	t.Helper()
	m.setClient(t, ctx, node, san, timeout)
	res, err := xds.NewXDSResolverWithConfigForTesting(m.bootstrap(t, node, "client"))
	require.NoError(t, err)
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(creds), grpc.WithResolvers(res))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func (m *testMesh) setClient(t *testing.T, ctx context.Context, node, san string, timeout time.Duration) {
	t.Helper()
	host, portText, err := net.SplitHostPort(m.server)
	require.NoError(t, err)
	port, err := strconv.ParseUint(portText, 10, 16)
	require.NoError(t, err)
	m.set(t, ctx, &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: node, Services: []string{"client"}},
		Flavour:  ir.FlavourProxyless,
		Node:     ir.Node{ID: node},
		MTLS:     ir.NewMTLS(m.mode),
		Outbounds: []ir.Outbound{{
			Service:  "greeter",
			Protocol: ir.ProtocolGRPC,
			Routes:   []ir.Route{{Clusters: []ir.WeightedCluster{{Name: "greeter"}}}},
			Timeouts: ir.Timeouts{RequestTimeout: timeout},
		}},
		Clusters: []ir.Cluster{{
			Name: "greeter", Service: "greeter", Protocol: ir.ProtocolGRPC, ExpectedSAN: san,
			Localities: []ir.Locality{{Endpoints: []ir.Endpoint{{Address: host, Port: uint32(port)}}}},
		}},
	})
}

// set translates p and publishes it for its node, versioned by content.
func (m *testMesh) set(t *testing.T, ctx context.Context, p *ir.Proxy) {
	t.Helper()
	r, err := Translate(p)
	require.NoError(t, err)
	version, err := p.Hash()
	require.NoError(t, err)
	snap, err := cache.NewSnapshot(version+"-"+Revision, r.ByType())
	require.NoError(t, err)
	require.NoError(t, m.cache.SetSnapshot(ctx, p.Node.ID, snap))
}

// bootstrap is the gRPC xDS bootstrap of a workload with identity service;
// with mTLS it declares file_watcher certificate providers under the names
// the translator refers to.
func (m *testMesh) bootstrap(t *testing.T, node, service string) []byte {
	t.Helper()
	b := map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      m.ads,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []any{"xds_v3"},
		}},
		"node":                                   map[string]any{"id": node},
		"server_listener_resource_name_template": ProxylessServerListenerTemplate,
	}
	if m.certDir != "" {
		b["certificate_providers"] = map[string]any{
			ir.IdentityCertName: map[string]any{"plugin_name": "file_watcher", "config": map[string]any{
				"certificate_file": m.certDir + "/" + service + ".crt",
				"private_key_file": m.certDir + "/" + service + ".key",
				"refresh_interval": "60s",
			}},
			ir.MeshCAName: map[string]any{"plugin_name": "file_watcher", "config": map[string]any{
				"ca_certificate_file": m.certDir + "/ca.crt",
				"refresh_interval":    "60s",
			}},
		}
	}
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return out
}

// greeter answers UnaryCall with its name and the caller's SPIFFE id, after
// the delay the x-delay header asks for.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (g *greeter) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("x-delay")) > 0 {
		d, err := time.ParseDuration(md.Get("x-delay")[0])
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "x-delay: %v", err)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp := &testgrpc.SimpleResponse{Hostname: g.name}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			for _, u := range ti.State.PeerCertificates[0].URIs {
				resp.Username = u.String()
			}
		}
	}
	return resp, nil
}

func delayed(ctx context.Context, d time.Duration) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-delay", fmt.Sprint(d))
}
