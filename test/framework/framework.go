// Package framework starts Atoll's real binaries for end-to-end tests:
// it builds them once per test binary, runs atoll-cp on free ports, and
// offers small HTTP helpers against its API.
package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries builds atoll-cp, atollctl, atoll-dp and the grpc-echo example
// workload once per test binary.
type Binaries struct {
	once sync.Once
	dir  string
	err  error
}

// Dir returns the folder holding the built binaries, building them first.
func (b *Binaries) Dir(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "atoll-bin-")
		if b.err != nil {
			return
		}
		root := repoRoot()
		cmd := exec.Command("go", "build", "-o", b.dir+"/", "./app/atoll-cp", "./app/atollctl", "./app/atoll-dp", "./docs/examples/grpc-echo")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// Cleanup removes the built binaries; call it from TestMain.
func (b *Binaries) Cleanup() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FreePort returns a TCP port nobody listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ControlPlane is one running atoll-cp process.
type ControlPlane struct {
	// API is the base URL of the REST API ("http://127.0.0.1:port").
	API string
	// Diagnostics is the base URL of /healthy, /ready and /metrics.
	Diagnostics string
	// DPServer is the data-plane server address ("127.0.0.1:port").
	DPServer string
	// WorkDir is the control plane's work directory; dp-server.crt in it is
	// the CA atoll-dp trusts (--ca-cert-file).
	WorkDir string

	t    testing.TB
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// StartControlPlane runs `atoll-cp run` with env (ATOLL_* settings) on
// free ports and waits until /ready answers 200.
func StartControlPlane(t testing.TB, bins *Binaries, env ...string) *ControlPlane {
	t.Helper()
	cp := Launch(t, bins, env...)
	cp.WaitReady(30 * time.Second)
	return cp
}

// Launch runs `atoll-cp run` without waiting for readiness.
func Launch(t testing.TB, bins *Binaries, env ...string) *ControlPlane {
	t.Helper()
	api, diag, https, dp, kds := FreePort(t), FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	work := t.TempDir()
	cmd := exec.Command(filepath.Join(bins.Dir(t), "atoll-cp"), "run")
	cmd.Env = append(os.Environ(),
		"ATOLL_API_SERVER_HTTP_INTERFACE=127.0.0.1",
		"ATOLL_API_SERVER_HTTP_PORT="+strconv.Itoa(api),
		"ATOLL_API_SERVER_HTTPS_INTERFACE=127.0.0.1",
		"ATOLL_API_SERVER_HTTPS_PORT="+strconv.Itoa(https),
		"ATOLL_DIAGNOSTICS_INTERFACE=127.0.0.1",
		"ATOLL_DIAGNOSTICS_PORT="+strconv.Itoa(diag),
		"ATOLL_DP_SERVER_PORT="+strconv.Itoa(dp),
		"ATOLL_KDS_SERVER_PORT="+strconv.Itoa(kds),
		"ATOLL_GENERAL_WORK_DIR="+work,
	)
	cmd.Env = append(cmd.Env, env...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cp := &ControlPlane{
		API:         "http://127.0.0.1:" + strconv.Itoa(api),
		Diagnostics: "http://127.0.0.1:" + strconv.Itoa(diag),
		DPServer:    "127.0.0.1:" + strconv.Itoa(dp),
		WorkDir:     work,
		t:           t, cmd: cmd, logs: logs, done: make(chan struct{}),
	}
	go func() { cp.err = cmd.Wait(); close(cp.done) }()
	t.Cleanup(func() {
		cp.Stop()
		if t.Failed() {
			t.Logf("atoll-cp (%s) log:\n%s", cp.API, logs.String())
		}
	})
	return cp
}

// WaitReady waits until /ready answers 200, failing the test after timeout.
func (cp *ControlPlane) WaitReady(timeout time.Duration) {
	cp.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-cp.done:
			cp.t.Fatalf("atoll-cp exited (%v) before becoming ready:\n%s", cp.err, cp.logs.String())
		default:
		}
		if code, _ := cp.status(cp.Diagnostics + "/ready"); code == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	cp.t.Fatalf("atoll-cp did not become ready within %s:\n%s", timeout, cp.logs.String())
}

func (cp *ControlPlane) status(url string) (int, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// Ready reports whether /ready answers 200 now.
func (cp *ControlPlane) Ready() bool {
	code, _ := cp.status(cp.Diagnostics + "/ready")
	return code == http.StatusOK
}

// Metric returns the value of an unlabelled gauge or counter from /metrics.
func (cp *ControlPlane) Metric(name string) (float64, bool) {
	res, err := http.Get(cp.Diagnostics + "/metrics")
	if err != nil {
		return 0, false
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// Wait waits for the process to exit and returns its error.
func (cp *ControlPlane) Wait(timeout time.Duration) error {
	select {
	case <-cp.done:
		return cp.err
	case <-time.After(timeout):
		return fmt.Errorf("atoll-cp still running after %s", timeout)
	}
}

// Kill ends the process with SIGKILL: no graceful shutdown.
func (cp *ControlPlane) Kill() {
	_ = cp.cmd.Process.Signal(syscall.SIGKILL)
	<-cp.done
}

// Stop ends the process with SIGTERM, then SIGKILL after 10 s.
func (cp *ControlPlane) Stop() {
	select {
	case <-cp.done:
		return
	default:
	}
	_ = cp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cp.done:
	case <-time.After(10 * time.Second):
		cp.Kill()
	}
}

// Logs returns what the process printed so far.
func (cp *ControlPlane) Logs() string { return cp.logs.String() }

// Response is one HTTP answer.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers.
	Header http.Header
	// Body is the raw body.
	Body []byte
}

// JSON decodes the body into a map, failing the test when it is not JSON.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Do sends one request to the API; headers come in name/value pairs. A
// connection error is returned as Status 0.
func (cp *ControlPlane) Do(method, path string, body []byte, headers ...string) Response {
	req, err := http.NewRequest(method, cp.API+path, bytes.NewReader(body))
	if err != nil {
		cp.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return Response{Body: []byte(err.Error())}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// syncBuffer is a bytes.Buffer safe for the process's concurrent writes.
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
