package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest"
)

const dataplaneYAML = `type: Dataplane
mesh: demo
name: web-1
networking:
  address: 127.0.0.1
  inbound:
  - port: 8080
    servicePort: 18080
    tags:
      kuma.io/service: web
`

// buildBinary compiles atoll-dp into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "atoll-dp")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

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

// environ returns the test's environment without ATOLL_* variables, plus extra.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATOLL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// setup is one fake control plane and the files an agent for web-1 needs.
type setup struct {
	cp        *agenttest.Server
	dpFile    string
	tokenFile string
	readyPort int
}

func newSetup(t *testing.T, tokens map[string]agenttest.Identity) *setup {
	t.Helper()
	if tokens == nil {
		tokens = map[string]agenttest.Identity{"good": {Mesh: "demo", Name: "web-1"}}
	}
	dir := t.TempDir()
	s := &setup{
		cp:        agenttest.Start(t, agenttest.Options{Tokens: tokens}),
		dpFile:    filepath.Join(dir, "dp.yaml"),
		tokenFile: filepath.Join(dir, "token"),
		readyPort: agenttest.FreePort(t),
	}
	require.NoError(t, os.WriteFile(s.dpFile, []byte(dataplaneYAML), 0o600))
	require.NoError(t, os.WriteFile(s.tokenFile, []byte("good\n"), 0o600))
	return s
}

// args returns the common flags followed by extra.
func (s *setup) args(extra ...string) []string {
	return append([]string{"run",
		"--cp-address", s.cp.URL, "--ca-cert-file", s.cp.CAFile,
		"--dataplane-file", s.dpFile, "--dataplane-token-file", s.tokenFile,
		"--ready-port", strconv.Itoa(s.readyPort), "--cp-retry-timeout", "1s",
	}, extra...)
}

func (s *setup) readiness() int {
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(s.readyPort) + "/ready")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// process is a running atoll-dp.
type process struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
}

func start(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own process group, as a shell job
	p.cmd.WaitDelay = 2 * time.Second                       // an orphaned Envoy must not hold the test up
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// wait waits for the process to exit and returns its exit code (-1 when a
// signal ended it).
func (p *process) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("atoll-dp did not exit within %s; stderr:\n%s", within, p.stderr)
		return 0
	}
}

func (s *setup) waitReady(t *testing.T, p *process) {
	t.Helper()
	require.Eventually(t, func() bool { return s.readiness() == http.StatusOK }, 15*time.Second, 20*time.Millisecond,
		"never ready; stderr:\n%s", p.stderr)
}

// names lists the events' names.
func names(events []agenttest.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Name+" "+e.Detail)
	}
	return out
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the atoll-dp binary")
	}
	bin := buildBinary(t)
	envoy := agenttest.BuildFakeEnvoy(t)

	t.Run("SIGTERM drains Envoy, then stops it, and exits 0", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, nil)
		events := filepath.Join(t.TempDir(), "events")
		p := start(t, bin, environ("FAKE_ENVOY_EVENTS="+events),
			s.args("--binary-path", envoy, "--admin-port", strconv.Itoa(agenttest.FreePort(t)), "--drain-time", "1s")...)
		s.waitReady(t, p)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.Eventually(t, func() bool { return s.readiness() == http.StatusServiceUnavailable }, 5*time.Second, 10*time.Millisecond,
			"not ready while draining")
		require.Equal(t, 0, p.wait(t, 15*time.Second), p.stderr.String())
		ev := agenttest.ReadEvents(t, events)
		require.Equal(t, []string{"start " + ev[0].Detail, "drain graceful&inboundonly", "signal terminated", "exit "}, names(ev))
		require.GreaterOrEqual(t, ev[2].At.Sub(ev[1].At), time.Second)
		require.Contains(t, p.stdout.String(), "[fakeenvoy] started pid=")
		require.Contains(t, p.stderr.String(), `msg="atoll-dp stopped"`)
	})

	t.Run("Ctrl-C reaches the agent only, which drains Envoy first", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, nil)
		events := filepath.Join(t.TempDir(), "events")
		p := start(t, bin, environ("FAKE_ENVOY_EVENTS="+events),
			s.args("--binary-path", envoy, "--admin-port", strconv.Itoa(agenttest.FreePort(t)), "--drain-time", "200ms")...)
		s.waitReady(t, p)
		// A terminal sends SIGINT to the whole foreground process group.
		require.NoError(t, syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT))
		require.Equal(t, 0, p.wait(t, 15*time.Second), p.stderr.String())
		ev := agenttest.ReadEvents(t, events)
		require.Equal(t, []string{"start " + ev[0].Detail, "drain graceful&inboundonly", "signal terminated", "exit "}, names(ev))
	})

	t.Run("a second signal exits at once and Envoy is still stopped", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, nil)
		events := filepath.Join(t.TempDir(), "events")
		p := start(t, bin, environ("FAKE_ENVOY_EVENTS="+events),
			s.args("--binary-path", envoy, "--admin-port", strconv.Itoa(agenttest.FreePort(t)), "--drain-time", "1m",
				"--config-dir", t.TempDir())...)
		s.waitReady(t, p)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.Eventually(t, func() bool { return len(agenttest.Named(agenttest.ReadEvents(t, events), "drain")) == 1 }, 5*time.Second, 10*time.Millisecond)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.NotEqual(t, 0, p.wait(t, 5*time.Second))
		require.Eventually(t, func() bool { return len(agenttest.Named(agenttest.ReadEvents(t, events), "exit")) == 1 }, 5*time.Second, 10*time.Millisecond,
			"Envoy got SIGTERM from the kernel when the agent died")
	})

	t.Run("proxyless prints the export line and stops on SIGTERM", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, nil)
		dir := t.TempDir()
		out := filepath.Join(dir, "xds.json")
		p := start(t, bin, environ(), s.args("--mode", "proxyless", "--grpc-bootstrap-out", out, "--certs-dir", filepath.Join(dir, "certs"))...)
		s.waitReady(t, p)
		require.Equal(t, "export GRPC_XDS_BOOTSTRAP="+out+"\n", p.stdout.String())
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 0, p.wait(t, 10*time.Second), p.stderr.String())
	})

	t.Run("misconfigurations exit 1 with one clear line", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, map[string]agenttest.Identity{"good": {Mesh: "b"}})
		other := agenttest.Start(t, agenttest.Options{})
		unreachable := agenttest.Start(t, agenttest.Options{})
		unreachable.Close()
		emptyPath := t.TempDir()
		badDP := filepath.Join(t.TempDir(), "dp.yaml")
		require.NoError(t, os.WriteFile(badDP, []byte(strings.Replace(dataplaneYAML, "port: 8080", "port: 70000", 1)), 0o600))
		missingToken := filepath.Join(t.TempDir(), "token")

		tests := []struct {
			name string
			env  []string
			args []string
			want string
		}{
			{"envoy missing", []string{"PATH=" + emptyPath}, s.args(),
				"atoll-dp: envoy was not found on PATH; install Envoy or pass --binary-path"},
			{"token of another mesh", nil, s.args("--binary-path", envoy),
				`atoll-dp: the control plane refused the dataplane token: token is for mesh "b", not "demo"`},
			{"missing token file", nil, append(s.args("--binary-path", envoy), "--dataplane-token-file", missingToken),
				"atoll-dp: dataplane token file " + missingToken + " does not exist (--dataplane-token-file)"},
			{"invalid dataplane file", nil, append(s.args("--binary-path", envoy), "--dataplane-file", badDP),
				"atoll-dp: dataplane file " + badDP + " is invalid: networking.inbound[0].port: must be a port number between 1 and 65535"},
			{"name given both ways", nil, append(s.args("--binary-path", envoy), "--name", "web-2"),
				`atoll-dp: --name "web-2" does not match name "web-1" in dataplane file ` + s.dpFile},
			{"CA that did not sign the control plane", nil, append(s.args("--binary-path", envoy), "--ca-cert-file", other.CAFile),
				"atoll-dp: TLS verification of the control plane at " + s.cp.URL + " failed with the CA in " + other.CAFile + ": x509: certificate signed by unknown authority"},
			{"control plane unreachable", nil, append(s.args("--binary-path", envoy), "--cp-address", unreachable.URL),
				"atoll-dp: the control plane at " + unreachable.URL + " is unreachable after 1s ("},
		}
		for _, tt := range tests {
			p := start(t, bin, environ(tt.env...), tt.args...)
			require.Equal(t, 1, p.wait(t, 10*time.Second), tt.name)
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			last := lines[len(lines)-1]
			require.True(t, strings.HasPrefix(last, tt.want), "%s: last line of stderr:\n%s\nwant prefix:\n%s", tt.name, last, tt.want)
			require.Empty(t, p.stdout.String(), tt.name)
		}
	})
}

// TestStaysLight keeps the agent free of the control plane's heavy
// dependencies: it speaks HTTPS and JSON, nothing more.
func TestStaysLight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{
			"github.com/envoyproxy/", "google.golang.org/grpc", "google.golang.org/protobuf",
			"github.com/jackc/", "github.com/prometheus/", "k8s.io/", "sigs.k8s.io/controller-runtime",
			"github.com/atoll-mesh/atoll/pkg/xds", "github.com/atoll-mesh/atoll/pkg/store",
		} {
			require.False(t, strings.HasPrefix(dep, heavy), "atoll-dp depends on %s", dep)
		}
	}
}
