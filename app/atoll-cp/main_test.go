package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testVersion = "v0.0.0-binary-test"

// buildBinary compiles atoll-cp into a temporary directory, stamping a
// version through the linker as a release build does.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "atoll-cp")
	cmd := exec.Command(goTool, "build",
		"-ldflags", "-X github.com/atoll-mesh/atoll/pkg/version.version="+testVersion,
		"-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// freePorts returns n distinct TCP ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close() // held open until all are chosen, so they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// environ returns the test process's environment without ATOLL_* variables,
// plus extra.
func environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATOLL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// result of one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// runToEnd runs the binary to completion.
func runToEnd(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// logRecord is the part of a JSON log line the test reads.
type logRecord struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Component string `json:"component"`
	Address   string `json:"address"`
	Variable  string `json:"variable"`
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the atoll-cp binary")
	}
	bin := buildBinary(t)

	t.Run("run serves diagnostics and stops cleanly on SIGTERM", func(t *testing.T) {
		t.Parallel()
		ports := freePorts(t, 4)
		cmd := exec.Command(bin, "run")
		cmd.Env = environ(
			"ATOLL_LOGGING_FORMAT=json",
			"ATOLL_DIAGNOSTICS_INTERFACE=127.0.0.1",
			"ATOLL_DIAGNOSTICS_PORT="+strconv.Itoa(ports[0]),
			"ATOLL_API_SERVER_HTTP_PORT="+strconv.Itoa(ports[1]),
			"ATOLL_API_SERVER_HTTPS_PORT="+strconv.Itoa(ports[2]),
			"ATOLL_DP_SERVER_PORT="+strconv.Itoa(ports[3]),
			"ATOLL_GENERAL_WORK_DIR="+t.TempDir(),
			"ATOLL_NOT_A_KEY=1",
		)
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill() })

		// Every log line, as the process writes it.
		records := make(chan logRecord, 100)
		go func() {
			defer close(records)
			lines := bufio.NewScanner(stderr)
			for lines.Scan() {
				var rec logRecord
				if json.Unmarshal(lines.Bytes(), &rec) != nil {
					rec.Msg = lines.Text() // not JSON: keep it readable in failures
				}
				records <- rec
			}
		}()
		// Components start concurrently, so their lines come in any order:
		// remember every line read while waiting for another.
		seen := map[string]logRecord{}
		waitLog := func(msg string) logRecord {
			t.Helper()
			deadline := time.After(10 * time.Second)
			for {
				if rec, ok := seen[msg]; ok {
					return rec
				}
				select {
				case rec, ok := <-records:
					require.True(t, ok, "the process ended before logging %q", msg)
					if _, dup := seen[rec.Msg]; !dup {
						seen[rec.Msg] = rec
					}
				case <-deadline:
					t.Fatalf("timed out waiting for log %q", msg)
				}
			}
		}

		warning := waitLog("environment variable does not match any configuration key; it is ignored")
		require.Equal(t, "WARN", warning.Level)
		require.Equal(t, "ATOLL_NOT_A_KEY", warning.Variable)
		listening := waitLog("diagnostics server listening")
		require.Equal(t, "diagnostics", listening.Component)
		base := "http://" + listening.Address
		require.Equal(t, "127.0.0.1:"+strconv.Itoa(ports[0]), listening.Address)

		for _, path := range []string{"/healthy", "/ready"} {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
		}
		resp, err := http.Get(base + "/metrics")
		require.NoError(t, err)
		metrics, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Contains(t, string(metrics), `version="`+testVersion+`"`)

		// The REST API answers on plain HTTP and, with a generated
		// self-signed certificate, over TLS.
		waitLog("api server listening")
		for _, url := range []string{
			"http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/meshes/default",
			"https://127.0.0.1:" + strconv.Itoa(ports[2]) + "/meshes/default",
		} {
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			var resp *http.Response
			require.Eventually(t, func() bool {
				resp, err = client.Get(url)
				return err == nil && resp.StatusCode == http.StatusOK
			}, 10*time.Second, 50*time.Millisecond, "GET %s: %v", url, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Contains(t, string(body), `"name":"default"`, url)
		}

		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		waitLog("control plane stopped")
		exited := make(chan error, 1)
		go func() {
			for range records { // drain so that the process never blocks on stderr
			}
			exited <- cmd.Wait()
		}()
		select {
		case err := <-exited:
			require.NoError(t, err, "exit status 0 after SIGTERM")
		case <-time.After(5 * time.Second):
			t.Fatal("atoll-cp did not exit within 5s of SIGTERM")
		}
	})

	t.Run("config print reflects file, environment and flags", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "atoll-cp.yaml")
		require.NoError(t, os.WriteFile(file, []byte(
			"apiServer:\n  http:\n    port: 6000\nstore:\n  postgres:\n    password: s3cret\nmultizone:\n  zone:\n    name: east\n"), 0o600))
		res := runToEnd(t, bin, environ("ATOLL_API_SERVER_HTTP_PORT=15681", "ATOLL_MODE=global"),
			"config", "print", "--config", file, "--mode", "zone")
		require.Equal(t, 0, res.code, res.stderr)
		require.Contains(t, res.stdout, "mode: zone\n", "the flag wins over ATOLL_MODE")
		require.Contains(t, res.stdout, "  http:\n    interface: 0.0.0.0\n    port: 15681\n", "the environment wins over the file")
		require.Contains(t, res.stdout, "name: east")
		require.Contains(t, res.stdout, "password: '*****'")
		require.NotContains(t, res.stdout, "s3cret")
	})

	t.Run("config print exits 1 after printing an invalid configuration", func(t *testing.T) {
		t.Parallel()
		res := runToEnd(t, bin, environ("ATOLL_MODE=zone"), "config", "print")
		require.Equal(t, 1, res.code)
		require.Contains(t, res.stdout, "mode: zone")
		require.Equal(t, "atoll-cp: invalid configuration: multizone.zone.name: is required in zone mode\n", res.stderr)
	})

	t.Run("version", func(t *testing.T) {
		t.Parallel()
		res := runToEnd(t, bin, environ(), "version")
		require.Equal(t, 0, res.code, res.stderr)
		require.True(t, strings.HasPrefix(res.stdout, "Atoll "+testVersion+" "), res.stdout)
		require.Contains(t, res.stdout, "based on Kuma 2.14.3")
	})

	badConfigs := []struct {
		name   string
		env    []string
		args   []string
		stderr []string
	}{
		{
			name:   "bad mode from the environment",
			env:    []string{"ATOLL_MODE=bogus"},
			args:   []string{"run"},
			stderr: []string{`atoll-cp: invalid configuration: mode: must be one of standalone, zone, global, got "bogus"`},
		},
		{
			name:   "malformed port from the environment",
			env:    []string{"ATOLL_API_SERVER_HTTP_PORT=abc"},
			args:   []string{"run"},
			stderr: []string{"ATOLL_API_SERVER_HTTP_PORT", `must be an integer, got "abc"`, "apiServer.http.port"},
		},
		{
			name: "several problems are listed one per line",
			env:  []string{"ATOLL_MODE=global", "ATOLL_DIAGNOSTICS_PORT=70000", "ATOLL_MULTIZONE_ZONE_NAMES=east"},
			args: []string{"run"},
			stderr: []string{
				"warning: ATOLL_MULTIZONE_ZONE_NAMES does not match any configuration key",
				"atoll-cp: invalid configuration:\n" +
					`  store.type: global mode requires "postgres", got "memory"` + "\n" +
					"  diagnostics.port: must be a port number between 1 and 65535, got 70000\n",
			},
		},
		{
			name:   "bad mode from a flag",
			args:   []string{"run", "--mode", "regional"},
			stderr: []string{`mode: must be one of standalone, zone, global, got "regional"`},
		},
		{
			name:   "missing config file",
			args:   []string{"run", "--config", "/nonexistent/atoll-cp.yaml"},
			stderr: []string{"reading config file", "/nonexistent/atoll-cp.yaml"},
		},
		{
			name:   "unknown flag",
			args:   []string{"run", "--moed", "zone"},
			stderr: []string{"atoll-cp: unknown flag: --moed", "Run 'atoll-cp run --help' for usage."},
		},
		{
			name:   "unknown command",
			args:   []string{"serve"},
			stderr: []string{`unknown command "serve"`},
		},
	}
	for _, tt := range badConfigs {
		t.Run("exits 1 on "+tt.name, func(t *testing.T) {
			t.Parallel()
			res := runToEnd(t, bin, environ(tt.env...), tt.args...)
			require.Equal(t, 1, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
			for _, want := range tt.stderr {
				require.Contains(t, res.stderr, want)
			}
		})
	}

	t.Run("exits 1 when the diagnostics port is taken", func(t *testing.T) {
		t.Parallel()
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer taken.Close()
		port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
		res := runToEnd(t, bin, environ("ATOLL_DIAGNOSTICS_INTERFACE=127.0.0.1", "ATOLL_DIAGNOSTICS_PORT="+port), "run")
		require.Equal(t, 1, res.code, res.stderr)
		require.Contains(t, res.stderr, `atoll-cp: component "diagnostics": opening the diagnostics port: listen tcp 127.0.0.1:`+port)
		require.Contains(t, res.stderr, "address already in use")
	})
}

func TestFileUnknownKeyNamesThePath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "atoll-cp.yaml")
	require.NoError(t, os.WriteFile(file, []byte("apiServer:\n  htp:\n    port: 1\nlogging:\n  levle: debug\n"), 0o600))
	var stdout, stderr bytes.Buffer
	code := execute(t.Context(), []string{"run", "--config", file}, nil, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Equal(t, "atoll-cp: config file "+file+":\n"+
		"  apiServer.htp: unknown field\n"+
		"  logging.levle: unknown field\n", stderr.String())
}
