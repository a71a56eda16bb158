package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/app/atoll-dp/agent"
	"github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type outcome struct {
	code           int
	stdout, stderr string
}

// execute runs the command tree in-process until it returns or ctx ends.
func execute(t *testing.T, ctx context.Context, environ []string, args ...string) outcome {
	t.Helper()
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(t, err)
	var stdout, stderr syncBuffer
	code := Execute(ctx, Deps{Environ: environ, Stdout: &stdout, Stderr: &stderr, Registry: reg}, args)
	return outcome{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestMisconfigurationsGiveOneClearLine(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("x"), 0o600))
	base := []string{"run", "--ca-cert-file", ca, "--name", "web-1", "--mesh", "demo", "--dataplane-token", "t"}
	tests := []struct {
		name    string
		environ []string
		args    []string
		want    string
	}{
		{"a flag of the other mode", nil, append(base, "--grpc-bootstrap-out", "b.json"),
			"atoll-dp: --grpc-bootstrap-out does not apply to --mode=envoy\nRun 'atoll-dp run --help' for usage.\n"},
		{"a variable of the other mode", []string{"ATOLL_DP_ADMIN_PORT=9000"}, append(base, "--mode", "proxyless"),
			"atoll-dp: --admin-port does not apply to --mode=proxyless\nRun 'atoll-dp run --help' for usage.\n"},
		{"a variable with a bad value", []string{"ATOLL_DP_DRAIN_TIME=soon"}, base,
			"atoll-dp: ATOLL_DP_DRAIN_TIME must be a duration such as 30s or 2m (it sets --drain-time), got \"soon\"\nRun 'atoll-dp run --help' for usage.\n"},
		{"a bad log level", nil, append(base, "--log-level", "loud"),
			"atoll-dp: --log-level must be debug, info, warn or error, got \"loud\"\nRun 'atoll-dp run --help' for usage.\n"},
		{"an unknown flag", nil, append(base, "--dataplane-tokn", "x"),
			"atoll-dp: unknown flag: --dataplane-tokn\nRun 'atoll-dp run --help' for usage.\n"},
		{"a missing token file", nil, []string{"run", "--ca-cert-file", ca, "--name", "web-1", "--mesh", "demo", "--dataplane-token-file", filepath.Join(dir, "token")},
			"atoll-dp: dataplane token file " + filepath.Join(dir, "token") + " does not exist (--dataplane-token-file)\n"},
		{"an unusable CA file", nil, base,
			"atoll-dp: --ca-cert-file " + ca + " holds no PEM certificate\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := execute(t, context.Background(), tt.environ, tt.args...)
			require.Equal(t, 1, out.code)
			require.Equal(t, tt.want, out.stderr)
			require.Empty(t, out.stdout)
		})
	}
}

func TestEnvironmentVariablesSetFlags(t *testing.T) {
	cp := agenttest.Start(t, agenttest.Options{
		Tokens:     map[string]agenttest.Identity{"from-env": {Mesh: "demo", Name: "web-1"}},
		Dataplanes: []string{"demo/web-1"},
	})
	dir := t.TempDir()
	environ := []string{
		"ATOLL_DP_MODE=proxyless",
		"ATOLL_DP_CP_ADDRESS=" + cp.URL,
		"ATOLL_DP_CA_CERT_FILE=" + cp.CAFile,
		"ATOLL_DP_NAME=web-1",
		"ATOLL_DP_MESH=demo",
		"ATOLL_DP_DATAPLANE_TOKEN=from-env",
		"ATOLL_DP_GRPC_BOOTSTRAP_OUT=" + filepath.Join(dir, "ignored.json"),
		"ATOLL_DP_CERTS_DIR=" + filepath.Join(dir, "certs"),
		"ATOLL_DP_READY_PORT=" + strconv.Itoa(agenttest.FreePort(t)),
		"ATOLL_DP_LOG_FORMAT=json",
		"ATOLL_DP_NOT_A_FLAG=1",
		"ATOLL_MODE=zone", // atoll-cp's, not ours
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan outcome, 1)
	go func() {
		// The flag wins over ATOLL_DP_GRPC_BOOTSTRAP_OUT.
		done <- execute(t, ctx, environ, "run", "--grpc-bootstrap-out", filepath.Join(dir, "xds.json"))
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "xds.json"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	cancel()
	out := <-done
	require.Equal(t, 0, out.code, out.stderr)
	require.Equal(t, "export GRPC_XDS_BOOTSTRAP="+filepath.Join(dir, "xds.json")+"\n", out.stdout)
	require.True(t, strings.HasPrefix(out.stderr, "warning: ATOLL_DP_NOT_A_FLAG does not match any atoll-dp flag; it is ignored\n{"), out.stderr)
	require.NotContains(t, out.stderr, "ATOLL_MODE")
	require.Contains(t, out.stderr, `"msg":"atoll-dp stopped"`)
	require.NoFileExists(t, filepath.Join(dir, "ignored.json"))
	require.Equal(t, "Bearer from-env", cp.Requests()[0].Authorization)
}

func TestEnvName(t *testing.T) {
	require.Equal(t, "ATOLL_DP_CP_ADDRESS", EnvName("cp-address"))
	require.Equal(t, "ATOLL_DP_GRPC_BOOTSTRAP_OUT", EnvName("grpc-bootstrap-out"))
}

func TestEnvoyLogLevelFollowsTheAgents(t *testing.T) {
	require.Equal(t, "warning", envoyLevel("warn"))
	require.Equal(t, "debug", envoyLevel("debug"))
	require.Equal(t, agent.DefaultEnvoyLogLevel, envoyLevel("other"))
}

func TestVersion(t *testing.T) {
	out := execute(t, context.Background(), nil, "version")
	require.Equal(t, 0, out.code)
	require.True(t, strings.HasPrefix(out.stdout, "Atoll "), out.stdout)
}
