// Package e2e runs Atoll end to end with real processes: atoll-cp, atoll-dp
// in proxyless mode, and real gRPC-Go xDS clients and servers as the mesh
// workloads, so behaviour (not just config shape) is proven.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"

	"github.com/atoll-mesh/atoll/test/framework"
)

var bins framework.Binaries

func TestMain(m *testing.M) {
	code := m.Run()
	bins.Cleanup()
	os.Exit(code)
}

// workload is one proxyless gRPC workload with its atoll-dp agent.
type workload struct {
	mesh, name, service string
	port                int // the gRPC server port (servers) or a nominal inbound (clients)
	bootstrap           []byte
	certsDir            string
}

func (w *workload) dataplaneYAML() string {
	return fmt.Sprintf(`type: Dataplane
mesh: %s
name: %s
networking:
  address: 127.0.0.1
  inbound:
    - port: %d
      tags:
        kuma.io/service: %s
        kuma.io/protocol: grpc
`, w.mesh, w.name, w.port, w.service)
}

// token asks the control plane for a token bound to the workload.
func token(t *testing.T, cp *framework.ControlPlane, mesh, name string) string {
	t.Helper()
	res := cp.Do(http.MethodPost, "/tokens/dataplane", fmt.Appendf(nil, `{"mesh":%q,"name":%q}`, mesh, name))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	return strings.TrimSpace(string(res.Body))
}

// runAgent starts atoll-dp in proxyless mode for w with tokenText and
// waits until it is ready; it returns the agent's process.
func runAgent(t *testing.T, cp *framework.ControlPlane, w *workload, tokenText string) {
	t.Helper()
	dir := t.TempDir()
	w.certsDir = filepath.Join(dir, "certs")
	dpFile, tokFile, bootFile := filepath.Join(dir, "dp.yaml"), filepath.Join(dir, "token"), filepath.Join(dir, "xds.json")
	require.NoError(t, os.WriteFile(dpFile, []byte(w.dataplaneYAML()), 0o644))
	require.NoError(t, os.WriteFile(tokFile, []byte(tokenText), 0o600))
	ready := framework.FreePort(t)
	cmd := exec.Command(filepath.Join(bins.Dir(t), "atoll-dp"), "run", "--mode", "proxyless",
		"--cp-address", "https://"+cp.DPServer, "--ca-cert-file", filepath.Join(cp.WorkDir, "dp-server.crt"),
		"--dataplane-file", dpFile, "--dataplane-token-file", tokFile,
		"--grpc-bootstrap-out", bootFile, "--certs-dir", w.certsDir, "--ready-port", strconv.Itoa(ready))
	var logs strings.Builder
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &logs}, lockedWriter{&mu, &logs}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("atoll-dp %s/%s log:\n%s", w.mesh, w.name, logs.String())
			mu.Unlock()
		}
	})
	require.Eventually(t, func() bool {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", ready))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "atoll-dp for %s/%s never became ready", w.mesh, w.name)
	b, err := os.ReadFile(bootFile)
	require.NoError(t, err)
	w.bootstrap = b
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// echo answers UnaryCall with its name and the caller's SPIFFE id.
type echo struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (e *echo) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	resp := &testgrpc.SimpleResponse{Hostname: e.name}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			for _, u := range ti.State.PeerCertificates[0].URIs {
				if u.Scheme == "spiffe" {
					resp.Username = u.String()
				}
			}
		}
	}
	return resp, nil
}

// serve runs a real gRPC xDS server for w on its port and waits until the
// control plane's listener arrived.
func serve(t *testing.T, w *workload) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(w.port))
	require.NoError(t, err)
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	serving := make(chan struct{})
	var once sync.Once
	srv, err := xds.NewGRPCServer(grpc.Creds(creds), xds.BootstrapContentsForTesting(w.bootstrap),
		xds.ServingModeCallback(func(_ net.Addr, args xds.ServingModeChangeArgs) {
			if args.Mode == connectivity.ServingModeServing {
				once.Do(func() { close(serving) })
			}
		}))
	require.NoError(t, err)
	testgrpc.RegisterTestServiceServer(srv, &echo{name: w.name})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	select {
	case <-serving:
	case <-time.After(30 * time.Second):
		t.Fatalf("the gRPC xDS server %s never received its listener from the control plane", w.name)
	}
}

// dial returns a client of xds:///<service> using w's bootstrap.
func dial(t *testing.T, w *workload, service string) testgrpc.TestServiceClient {
	t.Helper()
	res, err := xds.NewXDSResolverWithConfigForTesting(w.bootstrap)
	require.NoError(t, err)
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///"+service, grpc.WithTransportCredentials(creds), grpc.WithResolvers(res))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return testgrpc.NewTestServiceClient(conn)
}

func mustPut(t *testing.T, cp *framework.ControlPlane, path, body string) {
	t.Helper()
	res := cp.Do(http.MethodPut, path, []byte(body))
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, res.Status, "PUT %s: %s", path, res.Body)
}

// TestProxylessWorkloadsInTwoIsolatedMeshes is issue 3's acceptance test:
// real gRPC workloads in two meshes with mTLS, each through atoll-dp.
func TestProxylessWorkloadsInTwoIsolatedMeshes(t *testing.T) {
	cp := framework.StartControlPlane(t, &bins)
	for _, m := range []string{"a", "b"} {
		mustPut(t, cp, "/meshes/"+m, `{"type":"Mesh","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","mode":"STRICT"}]}}`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	backend1 := &workload{mesh: "a", name: "backend-1", service: "backend", port: framework.FreePort(t)}
	runAgent(t, cp, backend1, token(t, cp, "a", "backend-1"))
	serve(t, backend1)
	clientA := &workload{mesh: "a", name: "client-a", service: "client", port: framework.FreePort(t)}
	runAgent(t, cp, clientA, token(t, cp, "a", "client-a"))

	// Calls between services of mesh a succeed over mTLS, and the server
	// sees the client's SPIFFE id (not just a successful call: gRPC falls
	// back to plaintext when no TLS config arrives).
	calls := dial(t, clientA, "backend")
	resp, err := calls.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	require.NoError(t, err)
	require.Equal(t, "backend-1", resp.GetHostname())
	require.Equal(t, "spiffe://a/client", resp.GetUsername(), "the server saw the client's mesh identity")

	// The control plane shows both proxies online with what they accepted.
	require.Eventually(t, func() bool {
		ov := cp.Do(http.MethodGet, "/meshes/a/dataplanes/client-a/_overview", nil)
		return ov.Status == http.StatusOK && strings.Contains(string(ov.Body), `"connectTime"`) && !strings.Contains(string(ov.Body), `"disconnectTime"`)
	}, 15*time.Second, 100*time.Millisecond)
	cfg := cp.Do(http.MethodGet, "/meshes/a/dataplanes/client-a/_config", nil)
	require.Equal(t, http.StatusOK, cfg.Status)
	require.Contains(t, string(cfg.Body), "spiffe://a/backend", "inspect shows the identity the client expects from backend")

	// A second backend instance is seen by the client; removing it is too.
	backend2 := &workload{mesh: "a", name: "backend-2", service: "backend", port: framework.FreePort(t)}
	runAgent(t, cp, backend2, token(t, cp, "a", "backend-2"))
	serve(t, backend2)
	require.Eventually(t, func() bool {
		r, err := calls.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		return err == nil && r.GetHostname() == "backend-2"
	}, 20*time.Second, 20*time.Millisecond, "the new instance receives traffic")
	require.Equal(t, http.StatusOK, cp.Do(http.MethodDelete, "/meshes/a/dataplanes/backend-2", nil).Status)
	require.Eventually(t, func() bool {
		for range 20 {
			r, err := calls.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			if err != nil || r.GetHostname() != "backend-1" {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "after the instance is removed only backend-1 answers")

	// A workload of mesh b cannot reach mesh a: its xDS config has no
	// backend, and dialling backend directly with its mesh-b identity fails
	// the TLS handshake.
	clientB := &workload{mesh: "b", name: "client-b", service: "client", port: framework.FreePort(t)}
	runAgent(t, cp, clientB, token(t, cp, "b", "client-b"))
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	_, err = dial(t, clientB, "backend").UnaryCall(short, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	cancelShort()
	require.Error(t, err, "mesh b has no route to mesh a's backend")

	cert, err := tls.LoadX509KeyPair(filepath.Join(clientB.certsDir, "cert.pem"), filepath.Join(clientB.certsDir, "key.pem"))
	require.NoError(t, err)
	caB, err := os.ReadFile(filepath.Join(clientB.certsDir, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caB))
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(backend1.port), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, InsecureSkipVerify: true, //nolint:gosec // the point is the server's refusal
	})))
	require.NoError(t, err)
	defer conn.Close()
	short, cancelShort = context.WithTimeout(ctx, 5*time.Second)
	_, err = testgrpc.NewTestServiceClient(conn).UnaryCall(short, &testgrpc.SimpleRequest{})
	cancelShort()
	require.Error(t, err, "backend refuses a client certificate from mesh b")

	// A token of mesh b cannot fetch mesh a's configuration.
	dir := t.TempDir()
	stolen := &workload{mesh: "a", name: "intruder", service: "backend", port: framework.FreePort(t)}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dp.yaml"), []byte(stolen.dataplaneYAML()), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token(t, cp, "b", "intruder")), 0o600))
	out, err := exec.Command(filepath.Join(bins.Dir(t), "atoll-dp"), "run", "--mode", "proxyless",
		"--cp-address", "https://"+cp.DPServer, "--ca-cert-file", filepath.Join(cp.WorkDir, "dp-server.crt"),
		"--dataplane-file", filepath.Join(dir, "dp.yaml"), "--dataplane-token-file", filepath.Join(dir, "token"),
		"--grpc-bootstrap-out", filepath.Join(dir, "xds.json"), "--certs-dir", filepath.Join(dir, "certs"),
		"--ready-port", strconv.Itoa(framework.FreePort(t))).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `issued for mesh "b"`, "the refusal names the mesh mismatch: %s", out)
	t.Logf("cross-mesh token refused: %s", strings.TrimSpace(string(out)))
}
