package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/xds"

	xdsboot "github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
)

// childEnv selects what a re-executed test binary does instead of testing.
const childEnv = "ATOLL_XDS_SERVER_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "grpc-client":
		os.Exit(grpcClientChild())
	case "load":
		os.Exit(loadChild())
	}
	os.Exit(m.Run())
}

// grpcClientChild calls xds:///greeter once with the bootstrap in
// $BOOTSTRAP_FILE and prints who answered. gRPC reads its environment
// (GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS) when the process starts,
// which is why this runs in its own process.
func grpcClientChild() int {
	boot, err := os.ReadFile(os.Getenv("BOOTSTRAP_FILE"))
	if err != nil {
		fmt.Println("reading the bootstrap:", err)
		return 2
	}
	deadline, _ := time.ParseDuration(os.Getenv("DEADLINE"))
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	res, err := xds.NewXDSResolverWithConfigForTesting(boot)
	if err != nil {
		fmt.Println("bootstrap:", err)
		return 2
	}
	creds, _ := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	conn, err := grpc.NewClient("xds:///greeter", grpc.WithTransportCredentials(creds), grpc.WithResolvers(res))
	if err != nil {
		fmt.Println("client:", err)
		return 2
	}
	defer conn.Close()
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.WaitForReady(true))
	if err != nil {
		fmt.Println("call failed:", err)
		return 3
	}
	fmt.Println("answered by", resp.GetHostname())
	return 0
}

// TestProxylessCallCredentials proves gRFC A97 with gRPC-Go 1.85: a
// bootstrap with "jwt_token_file" call credentials and no token in the node
// metadata authenticates the ADS stream with the authorization header —
// but only when the workload runs with
// GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true; without it gRPC silently
// drops the call credentials and the server refuses the stream.
func TestProxylessCallCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real gRPC xDS clients and servers in a child process")
	}
	r := newReconciler(t)
	e := newEnv(t, envOptions{onConnect: r.connected})
	r.e = e
	greeterAddr := e.startGreeter(r)
	e.createDataplane(clientKey, dataplaneSpec("client", 9000))
	r.set(clientKey, clientIR(greeterAddr, 10*time.Second))

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(e.token(clientKey)+"\n"), 0o600))
	boot, err := xdsboot.GRPC(xdsboot.GRPCParams{
		Node:         xdsboot.Node{Mesh: clientKey.Mesh, Name: clientKey.Name, AgentVersion: "0.1.0"},
		XDSServer:    e.addr,
		ServerCAFile: e.caFile,
		TokenFile:    tokenFile, // and no Token: the header is the only way in
	})
	require.NoError(t, err)
	require.NotContains(t, string(boot), xdsboot.MetadataToken)
	bootFile := filepath.Join(dir, "bootstrap.json")
	require.NoError(t, os.WriteFile(bootFile, boot, 0o600))

	run := func(extraEnv string, deadline time.Duration) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=grpc-client", "BOOTSTRAP_FILE="+bootFile, "DEADLINE="+deadline.String())
		if extraEnv != "" {
			cmd.Env = append(cmd.Env, extraEnv)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true", 30*time.Second)
	require.NoError(t, err, out)
	require.Contains(t, out, "answered by greeter-1")
	require.Contains(t, e.tracker.Events(), "connected default/client-1 proxyless")

	refusedBefore := e.counter("atoll_xds_streams_refused_total", "code", "Unauthenticated")
	out, err = run("", 3*time.Second)
	require.Error(t, err, "without the variable gRPC ignores call_creds")
	require.True(t, strings.Contains(out, "call failed"), out)
	require.Greater(t, e.counter("atoll_xds_streams_refused_total", "code", "Unauthenticated"), refusedBefore,
		"the server refused the stream that came without a token")
}
