package cli

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// t0 is the fixed time the test control plane's store stamps resources with
// (each write one minute after the previous one).
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// controlPlane is an in-process Atoll control plane served over real HTTP.
type controlPlane struct {
	url   string
	mgr   *manager.Manager
	store store.ResourceStore
	reg   *resource.Registry
	// tokens issued the dataplane tokens the control plane hands out.
	tokens *dptoken.Manager
	// requests lists every request received, as "METHOD uri".
	mu       sync.Mutex
	requests []string
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	var mu sync.Mutex
	tick := t0
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick = tick.Add(time.Minute)
		return tick
	}
	st := memory.New(reg, memory.WithClock(clock))
	mgr := manager.New(reg, st, slog.New(slog.DiscardHandler))
	require.NoError(t, mgr.EnsureDefaultMesh(t.Context()))
	tokens := dptoken.New(pki.NewMemorySecretStore(), dptoken.Options{})
	srv, err := apiserver.New(apiserver.Options{
		Manager:   mgr,
		Tokens:    apiserver.DataplaneTokens(tokens),
		Inspector: stubInspector{},
		Index: apiserver.Index{Product: "Atoll", Version: "1.2.3-test", BasedOnKuma: "2.14.3",
			InstanceID: "i-1", Mode: "standalone", Environment: "universal"},
	})
	require.NoError(t, err)
	cp := &controlPlane{mgr: mgr, store: st, reg: reg, tokens: tokens}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.mu.Lock()
		cp.requests = append(cp.requests, r.Method+" "+r.URL.RequestURI())
		cp.mu.Unlock()
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	cp.url = hs.URL
	return cp
}

// stubInspector answers config inspection with a fixed document naming
// the dataplane, standing in for the xDS pipeline.
type stubInspector struct{}

func (stubInspector) InspectConfig(_ context.Context, key resource.Key) ([]byte, []byte, error) {
	return []byte(`{"listeners":[{"name":"inbound:` + key.Name + `"}]}`), []byte(`{"identity":{"dataplane":"` + key.Name + `"}}`), nil
}

func (stubInspector) InspectRules(_ context.Context, key resource.Key) ([]byte, error) {
	return []byte(`{"mesh":"` + key.Mesh + `","dataplane":"` + key.Name + `","items":[{"type":"MeshTimeout","policies":[{"name":"timeouts"}]}]}`), nil
}

// writes returns the PUT and DELETE requests received so far.
func (cp *controlPlane) writes() []string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []string
	for _, r := range cp.requests {
		if strings.HasPrefix(r, "PUT ") || strings.HasPrefix(r, "DELETE ") {
			out = append(out, r)
		}
	}
	return out
}

// count returns how many resources of typ the store holds.
func (cp *controlPlane) count(t *testing.T, typ string) int {
	t.Helper()
	page, err := cp.store.List(t.Context(), typ, store.ListOptions{})
	require.NoError(t, err)
	return page.Total
}

// cli runs atollctl commands in-process with a config file in a temp dir.
type cli struct {
	t          *testing.T
	configPath string
	env        map[string]string
	now        time.Time
	stdin      string
	dir        string
}

// newCLI returns a CLI whose config makes cp the current control plane
// (cp may be nil: no config file).
func newCLI(t *testing.T, cp *controlPlane) *cli {
	t.Helper()
	dir := t.TempDir()
	c := &cli{t: t, configPath: filepath.Join(dir, "home", ".atollctl", "config"), env: map[string]string{},
		now: t0.Add(3 * time.Hour), dir: dir}
	if cp != nil {
		cfg := &Config{CurrentControlPlane: "test", ControlPlanes: []ControlPlane{{Name: "test", Address: cp.url}}}
		require.NoError(t, cfg.Save(c.configPath))
	}
	return c
}

// result is what one command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	reg, err := all.Registry()
	require.NoError(c.t, err)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(c.t.Context(), 30*time.Second)
	defer cancel()
	code := Execute(ctx, Deps{
		Stdin:      strings.NewReader(c.stdin),
		Stdout:     &stdout,
		Stderr:     &stderr,
		ConfigPath: c.configPath,
		Getenv:     func(k string) string { return c.env[k] },
		Now:        func() time.Time { return c.now },
		Registry:   reg,
	}, args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	require.Equal(c.t, 0, r.code, "atollctl %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r.stdout
}

// fail runs a command that must exit 1 and returns its result.
func (c *cli) fail(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	require.Equal(c.t, 1, r.code, "atollctl %s should fail\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.stdout, r.stderr)
	return r
}

// writeFile writes a file below the CLI's temp dir and returns its path.
func (c *cli) writeFile(name, content string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	require.NoError(c.t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(c.t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test -update")
	require.Equal(t, string(want), got, "golden file %s differs; run go test -update if the change is intended", path)
}

// closedAddress returns an http URL where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}
