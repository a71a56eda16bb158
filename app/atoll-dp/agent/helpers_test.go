package agent

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

// fastTiming shortens every delay so that supervision tests run quickly.
func fastTiming() Timing {
	return Timing{
		RequestTimeout:    5 * time.Second,
		ConnectBackoff:    Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		RestartBackoff:    Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond},
		RestartResetAfter: 5 * time.Second,
		StopTimeout:       2 * time.Second,
		AdminTimeout:      time.Second,
		RenewBackoff:      Backoff{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond},
	}
}

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

// writeFile writes content to a new file of the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func coreRegistry(t *testing.T) *resource.Registry {
	t.Helper()
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(t, err)
	return reg
}

// harness runs one agent against a fake control plane.
type harness struct {
	cp     *agenttest.Server
	cfg    Config
	logs   *syncBuffer
	stdout *syncBuffer
	stderr *syncBuffer
	timing Timing
}

// newHarness returns a harness for web-1 of mesh demo, whose token is
// "good", in mode.
func newHarness(t *testing.T, mode string, opts agenttest.Options) *harness {
	t.Helper()
	if opts.Tokens == nil {
		opts.Tokens = map[string]agenttest.Identity{"good": {Mesh: "demo", Name: "web-1"}}
	}
	cp := agenttest.Start(t, opts)
	cfg := DefaultConfig()
	cfg.Mode = mode
	cfg.CPAddress = cp.URL
	cfg.CACertFile = cp.CAFile
	cfg.DataplaneFile = writeFile(t, "dp.yaml", dataplaneYAML)
	cfg.TokenFile = writeFile(t, "token", "good\n")
	cfg.ReadyPort = agenttest.FreePort(t)
	cfg.CPRetryTimeout = time.Second
	if mode == ModeProxyless {
		dir := t.TempDir()
		cfg.GRPCBootstrapOut = filepath.Join(dir, "xds-bootstrap.json")
		cfg.CertsDir = filepath.Join(dir, "certs")
	} else {
		cfg.AdminPort = agenttest.FreePort(t)
		cfg.ConfigDir = t.TempDir()
		cfg.DrainTime = 100 * time.Millisecond
	}
	return &harness{cp: cp, cfg: cfg, logs: &syncBuffer{}, stdout: &syncBuffer{}, stderr: &syncBuffer{}, timing: fastTiming()}
}

// newAgent builds the agent of the harness's configuration.
func (h *harness) newAgent(t *testing.T) (*Agent, error) {
	t.Helper()
	return New(h.cfg, Deps{
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stdout:   h.stdout,
		Stderr:   h.stderr,
		Registry: coreRegistry(t),
		Timing:   h.timing,
	})
}

// run starts the agent; stop cancels it and returns Run's result.
func (h *harness) run(t *testing.T) (stop func() error) {
	t.Helper()
	a, err := h.newAgent(t)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var result error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case result = <-done:
			case <-time.After(15 * time.Second):
				t.Fatalf("the agent did not stop; logs:\n%s", h.logs)
			}
		})
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// readyURL is the readiness endpoint of the harness.
func (h *harness) readyURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(h.cfg.ReadyPort) + ReadyPath
}

// readiness returns the readiness endpoint's status code and body, or 0
// when it does not answer.
func (h *harness) readiness() (int, string) {
	resp, err := http.Get(h.readyURL())
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadiness waits until the readiness endpoint answers status.
func (h *harness) waitReadiness(t *testing.T, status int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := h.readiness()
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness never answered %d (last: %d %s); logs:\n%s", status, code, body, h.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// regexpFind returns the first group of pattern in s.
func regexpFind(t *testing.T, pattern, s string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	require.NotNil(t, m, "%s not found in:\n%s", pattern, s)
	return m[1]
}
