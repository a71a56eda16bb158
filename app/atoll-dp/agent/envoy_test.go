package agent

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest"
)

// withFakeEnvoy points the harness at a stand-in Envoy configured by env
// and returns its events file.
func (h *harness) withFakeEnvoy(t *testing.T, bin string, env map[string]string) string {
	t.Helper()
	events := filepath.Join(t.TempDir(), "events")
	if env == nil {
		env = map[string]string{}
	}
	env["EVENTS"] = events
	h.cfg.BinaryPath = agenttest.FakeEnvoyScript(t, bin, env)
	return events
}

func (h *harness) adminURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(h.cfg.AdminPort) + path
}

func TestEnvoyMode(t *testing.T) {
	bin := agenttest.BuildFakeEnvoy(t)

	t.Run("crashes are restarted with exponential backoff", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.timing.RestartResetAfter = time.Second
		events := h.withFakeEnvoy(t, bin, map[string]string{"CRASH_STARTS": "3"})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)

		ev := agenttest.ReadEvents(t, events)
		starts := agenttest.Named(ev, "start")
		require.Len(t, starts, 4)
		require.Len(t, agenttest.Named(ev, "crash"), 3)
		for i, want := range []time.Duration{100, 200, 400} {
			gap := starts[i+1].At.Sub(starts[i].At)
			require.GreaterOrEqual(t, gap, want*time.Millisecond, "restart %d came after %s", i+1, gap)
		}
		require.Equal(t, 3, strings.Count(h.logs.String(), `msg="envoy exited unexpectedly; restarting it" component=envoy exit="exit code 1"`))
		require.Contains(t, h.stdout.String(), "[fakeenvoy] started pid=", "Envoy's stdout is forwarded")
		require.Contains(t, h.stderr.String(), "[fakeenvoy] crashing on purpose", "Envoy's stderr is forwarded")
		require.Contains(t, h.stderr.String(), "[fakeenvoy] log-level=info")

		// Once Envoy has stayed up a while, the backoff starts over.
		time.Sleep(h.timing.RestartResetAfter)
		resp, err := http.Post(h.adminURL("/crash"), "text/plain", nil)
		if err == nil {
			resp.Body.Close()
		}
		h.waitReadiness(t, http.StatusServiceUnavailable, 5*time.Second)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		require.Len(t, agenttest.Named(agenttest.ReadEvents(t, events), "start"), 5)
		require.Contains(t, h.logs.String(), `exit="exit code 2"`)
		require.Regexp(t, `exit="exit code 2" uptime=\S+ restartIn=100ms`, h.logs.String())
		require.NoError(t, stop())
	})

	t.Run("a stop drains Envoy, then terminates it", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.cfg.DrainTime = time.Second
		events := h.withFakeEnvoy(t, bin, nil)
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)

		stopped := make(chan error, 1)
		go func() { stopped <- stop() }()
		// Not ready as soon as the drain starts, while Envoy still runs.
		h.waitReadiness(t, http.StatusServiceUnavailable, 5*time.Second)
		code, body := h.readiness()
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.Equal(t, "NOT READY: envoy is draining\n", body)
		require.NoError(t, <-stopped)

		ev := agenttest.ReadEvents(t, events)
		var names []string
		for _, e := range ev {
			names = append(names, e.Name)
		}
		require.Equal(t, []string{"start", "drain", "signal", "exit"}, names)
		require.Equal(t, "graceful&inboundonly", ev[1].Detail)
		require.Equal(t, "terminated", ev[2].Detail)
		require.GreaterOrEqual(t, ev[2].At.Sub(ev[1].At), time.Second, "SIGTERM only after the drain time")
		require.Contains(t, h.stdout.String(), "drain-time-s=1")
		require.Contains(t, h.logs.String(), `msg="envoy stopped" component=envoy exit="exit code 0"`)
	})

	t.Run("an Envoy that ignores SIGTERM is killed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.cfg.DrainTime = 0
		h.timing.StopTimeout = 300 * time.Millisecond
		events := h.withFakeEnvoy(t, bin, map[string]string{"IGNORE_SIGTERM": "1"})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		require.NoError(t, stop())
		ev := agenttest.ReadEvents(t, events)
		require.Len(t, agenttest.Named(ev, "signal"), 1)
		require.Empty(t, agenttest.Named(ev, "exit"))
		require.Contains(t, h.logs.String(), "envoy did not exit after SIGTERM; killing it")
	})

	t.Run("readiness waits for Envoy to be LIVE", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.withFakeEnvoy(t, bin, map[string]string{"READY_DELAY": "1500ms"})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusServiceUnavailable, 5*time.Second)
		require.Eventually(t, func() bool {
			_, body := h.readiness()
			return strings.Contains(body, `envoy is not live yet (/ready: HTTP 503 "PRE_INITIALIZING")`)
		}, 5*time.Second, 20*time.Millisecond)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		require.NoError(t, stop())
	})

	t.Run("the bootstrap request and file", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.withFakeEnvoy(t, bin, nil)
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)

		reqs := h.cp.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "Bearer good", reqs[0].Authorization)
		var req bootstrap.Request
		require.NoError(t, json.Unmarshal(reqs[0].Body, &req))
		require.Equal(t, bootstrap.ProxyEnvoy, req.ProxyType)
		require.Equal(t, "demo", req.Mesh)
		require.Equal(t, "web-1", req.Name)
		require.Equal(t, uint32(h.cfg.AdminPort), req.AdminPort)
		require.Equal(t, "1.99.0-fake", req.Version.Envoy)
		require.NotEmpty(t, req.Version.AtollDP)
		require.Equal(t, strings.TrimPrefix(h.cp.URL, "https://"), req.XDSServer)
		require.Contains(t, req.Dataplane, `"type":"Dataplane"`)
		require.Nil(t, req.Proxyless)

		file := filepath.Join(h.cfg.ConfigDir, EnvoyBootstrapFile)
		fi, err := os.Stat(file)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the bootstrap holds the token")
		require.NoError(t, stop())
	})

	t.Run("without --config-dir the bootstrap lives in a temporary directory removed at exit", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeEnvoy, agenttest.Options{})
		h.cfg.ConfigDir = ""
		h.withFakeEnvoy(t, bin, nil)
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		m := regexpFind(t, `msg="envoy bootstrap written" component=envoy file=(\S+)`, h.logs.String())
		require.FileExists(t, m)
		require.NoError(t, stop())
		require.NoDirExists(t, filepath.Dir(m))
	})
}

func TestEnvoyMustBeFound(t *testing.T) {
	h := newHarness(t, ModeEnvoy, agenttest.Options{})
	h.cfg.BinaryPath = filepath.Join(t.TempDir(), "envoy")
	_, err := h.newAgent(t)
	require.EqualError(t, err, "cannot run Envoy from --binary-path "+h.cfg.BinaryPath+": no such file or directory")

	notExec := writeFile(t, "envoy", "#!/bin/sh\n")
	h.cfg.BinaryPath = notExec
	_, err = h.newAgent(t)
	require.EqualError(t, err, "cannot run Envoy from --binary-path "+notExec+": permission denied")

	h.cfg.BinaryPath = "envoy-1.31"
	t.Setenv("PATH", t.TempDir())
	_, err = h.newAgent(t)
	require.EqualError(t, err, "envoy-1.31 was not found on PATH; install Envoy or pass --binary-path with the path of the Envoy executable")

	h.cfg.BinaryPath = DefaultBinaryPath
	_, err = h.newAgent(t)
	require.EqualError(t, err, "envoy was not found on PATH; install Envoy or pass --binary-path")
	require.Empty(t, h.cp.Requests(), "nothing is registered when Envoy is missing")
}

func TestRealEnvoy(t *testing.T) {
	path, err := exec.LookPath("envoy")
	if err != nil {
		t.Skip("envoy is not on PATH: install Envoy to run atoll-dp against a real one")
	}
	h := newHarness(t, ModeEnvoy, agenttest.Options{})
	h.cfg.BinaryPath = path
	h.cfg.DrainTime = time.Second
	stop := h.run(t)
	h.waitReadiness(t, http.StatusOK, 30*time.Second)
	require.NoError(t, stop())
	require.Contains(t, h.logs.String(), `msg="envoy stopped"`)
}

func TestEnvoyAdminAddress(t *testing.T) {
	for doc, want := range map[string]string{
		`{"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":9911}}}}`: "127.0.0.1:9911",
		`{"admin":{"address":{"socketAddress":{"address":"0.0.0.0","portValue":9912}}}}`:     "127.0.0.1:9912",
		`{"admin":{"address":{"socket_address":{"address":"::","port_value":9913}}}}`:        "[::1]:9913",
		`{"admin":{"address":{"pipe":{"path":"/tmp/admin.sock"}}}}`:                          "127.0.0.1:9901",
		`not json`: "127.0.0.1:9901",
	} {
		require.Equal(t, want, envoyAdminAddress([]byte(doc), 9901), doc)
	}
}

func TestDescribeExit(t *testing.T) {
	require.Equal(t, "exit code 0", describeExit(nil))
	err := exec.Command("sh", "-c", "exit 3").Run()
	require.Equal(t, "exit code 3", describeExit(err))
	err = exec.Command("sh", "-c", "kill -SEGV $$").Run()
	require.Equal(t, "killed by signal segmentation fault", describeExit(err))
	require.Equal(t, "boom", describeExit(errors.New("boom")))
}
