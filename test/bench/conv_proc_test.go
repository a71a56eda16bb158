package bench

import (
	"bytes"
	"fmt"
	"io"
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

	"github.com/atoll-mesh/atoll/test/framework"
)

// cpProcess is one atoll-cp process of the convergence harness. Unlike
// framework.ControlPlane it can be killed and started again on the same
// ports and work directory (so the proxies' CA file stays valid), and it
// exposes its pid for /proc.
type cpProcess struct {
	tb      testing.TB
	bin     string
	env     []string
	api     string // http://127.0.0.1:port
	diag    string
	dpAddr  string // 127.0.0.1:port
	workDir string
	logPath string
	http    *http.Client

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time
}

// newCPProcess prepares (does not start) atoll-cp from bin with the
// harness's settings plus extraEnv (ATOLL_* variables).
func newCPProcess(tb testing.TB, bin string, extraEnv ...string) *cpProcess {
	tb.Helper()
	api, diag, https, dp, kds := framework.FreePort(tb), framework.FreePort(tb), framework.FreePort(tb), framework.FreePort(tb), framework.FreePort(tb)
	work := tb.TempDir()
	// The harness's own settings are no configuration of atoll-cp.
	env := append(harnessEnv(),
		"ATOLL_API_SERVER_HTTP_INTERFACE=127.0.0.1",
		"ATOLL_API_SERVER_HTTP_PORT="+strconv.Itoa(api),
		"ATOLL_API_SERVER_HTTPS_INTERFACE=127.0.0.1",
		"ATOLL_API_SERVER_HTTPS_PORT="+strconv.Itoa(https),
		"ATOLL_DIAGNOSTICS_INTERFACE=127.0.0.1",
		"ATOLL_DIAGNOSTICS_PORT="+strconv.Itoa(diag),
		"ATOLL_DIAGNOSTICS_DEBUG_ENDPOINTS=true",
		"ATOLL_DP_SERVER_PORT="+strconv.Itoa(dp),
		"ATOLL_KDS_SERVER_PORT="+strconv.Itoa(kds),
		"ATOLL_GENERAL_WORK_DIR="+work,
	)
	// ATOLL_BENCH_CP_ENV adds variables to the control plane's environment
	// only (say GOGC=50), not to the load generator's.
	if extra := os.Getenv("ATOLL_BENCH_CP_ENV"); extra != "" {
		env = append(env, strings.Fields(extra)...)
	}
	cp := &cpProcess{
		tb: tb, bin: bin, env: append(env, extraEnv...),
		api:     "http://127.0.0.1:" + strconv.Itoa(api),
		diag:    "http://127.0.0.1:" + strconv.Itoa(diag),
		dpAddr:  "127.0.0.1:" + strconv.Itoa(dp),
		workDir: work,
		logPath: filepath.Join(tb.TempDir(), "atoll-cp.log"),
		http:    &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 32}},
	}
	tb.Cleanup(func() {
		cp.stop()
		if tb.Failed() {
			tb.Logf("atoll-cp log (last 60 lines of %s):\n%s", cp.logPath, cp.logTail(60))
		}
	})
	return cp
}

// start launches the process; its output is appended to logPath.
func (c *cpProcess) start() {
	c.tb.Helper()
	log, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.tb.Fatal(err)
	}
	cmd := exec.Command(c.bin, "run")
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done, c.started = cmd, done, time.Now()
	c.mu.Unlock()
}

// pid returns the process id of the running process.
func (c *cpProcess) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd.Process.Pid
}

// exited reports whether the current process has ended.
func (c *cpProcess) exited() bool {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// waitReady waits until /ready answers 200 and returns when it did.
func (c *cpProcess) waitReady(timeout time.Duration) time.Time {
	c.tb.Helper()
	at, err := c.readyWithin(timeout)
	if err != nil {
		c.tb.Fatalf("%v:\n%s", err, c.logTail(40))
	}
	return at
}

// readyWithin polls /ready every 10 ms until it answers 200 and returns
// when it did; it may run in any goroutine.
func (c *cpProcess) readyWithin(timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c.exited() {
			return time.Time{}, fmt.Errorf("atoll-cp exited before becoming ready")
		}
		if res, err := c.http.Get(c.diag + "/ready"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("atoll-cp did not become ready within %s", timeout)
}

// harnessEnv is the environment without the harness's own settings.
func harnessEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ATOLL_CONVERGENCE_") && !strings.HasPrefix(kv, "ATOLL_STORM_") && !strings.HasPrefix(kv, "ATOLL_BENCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill ends the process with SIGKILL and waits for it.
func (c *cpProcess) kill() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends the process with SIGTERM, SIGKILL after 20 s.
func (c *cpProcess) stop() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.kill()
	}
}

// logTail returns the last n lines of the log.
func (c *cpProcess) logTail(n int) string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// do sends one API request and returns the status and body.
func (c *cpProcess) do(method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, c.api+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// put creates or replaces a resource through the REST API.
func (c *cpProcess) put(path string, body []byte) error {
	code, out, err := c.do(http.MethodPut, path, body)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", path, err)
	}
	if code != http.StatusOK && code != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d %s", path, code, out)
	}
	return nil
}

// liveHeap forces a garbage collection in the control plane (through its
// pprof endpoint, saving the heap profile to profile when it is not
// empty) and returns the bytes of live heap objects from /metrics.
func (c *cpProcess) liveHeap(profile string) (uint64, error) {
	res, err := c.http.Get(c.diag + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	heap, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, err
	}
	if profile != "" {
		if err := os.WriteFile(profile, heap, 0o644); err != nil {
			return 0, err
		}
	}
	res, err = c.http.Get(c.diag + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	metrics, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, "go_memstats_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return uint64(f), err
		}
	}
	return 0, fmt.Errorf("no go_memstats_alloc_bytes in /metrics")
}

// cpuProfile records a CPU profile of d into file, in the background; the
// returned function waits for it.
func (c *cpProcess) cpuProfile(file string, d time.Duration) func() {
	if file == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: d + time.Minute}
		res, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.diag, int(d.Seconds())))
		if err != nil {
			c.tb.Logf("CPU profile %s: %v", file, err)
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			c.tb.Logf("CPU profile %s: %v", file, err)
		}
	}()
	return func() { <-done }
}

// goroutines saves samples of the control plane's goroutine stacks
// (debug=1, grouped), one every interval, into one text file, in the
// background; "" does nothing. Counting a stack across samples shows
// where goroutines wait (a lock, a channel).
func (c *cpProcess) goroutines(file string, samples int, interval time.Duration) {
	if file == "" {
		return
	}
	go func() {
		var out bytes.Buffer
		for i := range samples {
			time.Sleep(interval)
			res, err := c.http.Get(c.diag + "/debug/pprof/goroutine?debug=1")
			if err != nil {
				break
			}
			fmt.Fprintf(&out, "=== sample %d at +%s\n", i+1, time.Duration(i+1)*interval)
			_, _ = io.Copy(&out, res.Body)
			res.Body.Close()
		}
		_ = os.WriteFile(strings.TrimSuffix(file, ".pprof")+".txt", out.Bytes(), 0o644)
	}()
}

// procStats is what /proc says about a process.
type procStats struct {
	cpu time.Duration // user + system
	rss uint64        // resident set, bytes
	hwm uint64        // peak resident set, bytes
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100

// readProc reads /proc/<pid>/stat and status.
func readProc(pid int) (procStats, error) {
	var st procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name (field 2) may hold spaces: fields count from ")".
	rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseUint(f[12], 10, 64) // field 15
	st.cpu = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			st.rss = kb << 10
		case "VmHWM":
			st.hwm = kb << 10
		}
	}
	return st, nil
}

// rssSampler samples the control plane's RSS every 100 ms and keeps the
// peak since the last reset, across restarts.
type rssSampler struct {
	cp   *cpProcess
	mu   sync.Mutex
	peak uint64
	stop chan struct{}
	done chan struct{}
}

func newRSSSampler(cp *cpProcess) *rssSampler {
	s := &rssSampler{cp: cp, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := readProc(cp.pid()); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, st.rss)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	cp.tb.Cleanup(s.close)
	return s
}

// reset starts a new peak.
func (s *rssSampler) reset() {
	s.mu.Lock()
	s.peak = 0
	s.mu.Unlock()
}

// max returns the peak since the last reset.
func (s *rssSampler) max() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *rssSampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
