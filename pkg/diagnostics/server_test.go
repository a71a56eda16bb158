package diagnostics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/version"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts s on a free local port and returns its base URL. The server is
// stopped, and must stop cleanly, when the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("diagnostics server did not stop")
		}
	})
	return "http://" + ln.Addr().String()
}

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHealthy(t *testing.T) {
	base := serve(t, NewServer(discard(), Options{}))
	status, body := get(t, base+"/healthy")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok\n", body)
}

func TestReady(t *testing.T) {
	var storeUp, kdsUp atomic.Bool
	check := func(up *atomic.Bool, reason string) func(context.Context) error {
		return func(context.Context) error {
			if up.Load() {
				return nil
			}
			return errors.New(reason)
		}
	}
	base := serve(t, NewServer(discard(), Options{Checks: []Check{
		{Name: "store", Ready: check(&storeUp, "dial tcp 127.0.0.1:5432:\nconnection refused")},
		{Name: "kds", Ready: check(&kdsUp, "not connected to the global control plane")},
		{Name: "always", Ready: func(context.Context) error { return nil }},
	}}))

	status, body := get(t, base+"/ready")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "not ready:\n"+
		"kds: not connected to the global control plane\n"+
		"store: dial tcp 127.0.0.1:5432: connection refused\n", body)

	storeUp.Store(true)
	status, body = get(t, base+"/ready")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.NotContains(t, body, "store")
	require.Contains(t, body, "kds:")

	kdsUp.Store(true)
	status, body = get(t, base+"/ready")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ready\n", body)

	status, _ = get(t, base+"/healthy")
	require.Equal(t, http.StatusOK, status, "liveness does not depend on readiness")
}

func TestReadyWithoutChecks(t *testing.T) {
	status, _ := get(t, serve(t, NewServer(discard(), Options{}))+"/ready")
	require.Equal(t, http.StatusOK, status)
}

func TestReadyBoundsSlowAndBrokenChecks(t *testing.T) {
	base := serve(t, NewServer(discard(), Options{
		CheckTimeout: 50 * time.Millisecond,
		Checks: []Check{
			{Name: "hung", Ready: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
			{Name: "broken", Ready: func(context.Context) error { panic("oops") }},
		},
	}))
	status, body := get(t, base+"/ready")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "not ready:\nbroken: check panicked: oops\nhung: context deadline exceeded\n", body)
}

func TestMetricsComeFromTheInjectedGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_test_requests_total", Help: "Requests."})
	reg.MustRegister(requests)
	requests.Add(3)
	base := serve(t, NewServer(discard(), Options{Gatherer: reg}))

	status, body := get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "atoll_test_requests_total 3")
	require.NotContains(t, body, "go_goroutines", "the global default registry is not served")
}

func TestNewRegistry(t *testing.T) {
	reg, err := NewRegistry(version.Info{Version: "v1.2.3", GitCommit: "abc", BasedOnKuma: version.BasedOnKuma, GoVersion: "go1.26"})
	require.NoError(t, err)
	base := serve(t, NewServer(discard(), Options{Gatherer: reg}))

	_, body := get(t, base+"/metrics")
	require.Contains(t, body, `atoll_build_info{based_on_kuma="2.14.3",git_commit="abc",goversion="go1.26",version="v1.2.3"} 1`)
	require.Contains(t, body, "go_goroutines")
	require.Contains(t, body, "process_")
}

func TestDebugEndpoints(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		base := serve(t, NewServer(discard(), Options{}))
		status, _ := get(t, base+"/debug/pprof/")
		require.Equal(t, http.StatusNotFound, status)
	})
	t.Run("served when enabled", func(t *testing.T) {
		base := serve(t, NewServer(discard(), Options{DebugEndpoints: true}))
		status, body := get(t, base+"/debug/pprof/")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "goroutine")
		status, body = get(t, base+"/debug/pprof/goroutine?debug=1")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "goroutine profile")
		status, _ = get(t, base+"/debug/pprof/cmdline")
		require.Equal(t, http.StatusOK, status)
	})
}

func TestStartListensOnTheConfiguredAddressAndStops(t *testing.T) {
	// Take a free port, then hand its address to Start.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := probe.Addr().String()
	require.NoError(t, probe.Close())

	s := NewServer(discard(), Options{Address: addr})
	require.Equal(t, "diagnostics", s.Name())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "the server answers on %s", addr)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	_, err = http.Get("http://" + addr + "/healthy")
	require.Error(t, err, "the port is released")
}

func TestStartFailsWhenThePortIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()

	err = NewServer(discard(), Options{Address: taken.Addr().String()}).Start(t.Context())
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "opening the diagnostics port: listen tcp "+taken.Addr().String()), err.Error())
	require.ErrorContains(t, err, "address already in use")
}
