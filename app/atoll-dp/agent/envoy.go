package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Envoy admin API paths the agent uses.
const (
	// envoyReadyPath answers "LIVE" with 200 once Envoy serves traffic.
	envoyReadyPath = "/ready"
	// envoyDrainPath starts a graceful drain of the inbound listeners:
	// Envoy stops accepting new inbound connections and asks clients on the
	// open ones to go away, over --drain-time-s, while outbound listeners
	// stay open so the application can finish work that calls other
	// services.
	envoyDrainPath = "/drain_listeners?graceful&inboundonly"
)

// findEnvoy resolves --binary-path to an executable.
func findEnvoy(binary string) (string, error) {
	path, err := exec.LookPath(binary)
	if err == nil {
		return path, nil
	}
	if binary == DefaultBinaryPath {
		return "", errors.New("envoy was not found on PATH; install Envoy or pass --binary-path")
	}
	if errors.Is(err, exec.ErrNotFound) && !strings.ContainsRune(binary, os.PathSeparator) {
		return "", fmt.Errorf("%s was not found on PATH; install Envoy or pass --binary-path with the path of the Envoy executable", binary)
	}
	return "", fmt.Errorf("cannot run Envoy from --binary-path %s: %v", binary, unwrapExec(err))
}

// unwrapExec drops the repetitions of the file name that exec.Error and
// fs.PathError add.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		err = ee.Err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return err
}

var envoyVersionRe = regexp.MustCompile(`version:\s*[0-9a-fA-F]+/([^/\s]+)/`)

// envoyVersion asks Envoy for its version ("1.31.0"). An Envoy that cannot
// tell is reported but not refused: the version is informational.
func envoyVersion(ctx context.Context, binary string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", binary, err)
	}
	if m := envoyVersionRe.FindSubmatch(out); m != nil {
		return string(m[1]), nil
	}
	return "", fmt.Errorf("%s --version printed no Envoy version: %q", binary, strings.TrimSpace(string(out)))
}

// envoyAdminAddress returns where Envoy's admin API listens according to
// the bootstrap (snake_case or camelCase JSON), or 127.0.0.1:fallbackPort
// when the bootstrap does not say. A wildcard address is reached on the
// loopback interface.
func envoyAdminAddress(bootstrapJSON []byte, fallbackPort int) string {
	fallback := net.JoinHostPort("127.0.0.1", strconv.Itoa(fallbackPort))
	var doc map[string]any
	if json.Unmarshal(bootstrapJSON, &doc) != nil {
		return fallback
	}
	sock, _ := field(field(field(doc, "admin"), "address"), "socket_address", "socketAddress").(map[string]any)
	if sock == nil {
		return fallback
	}
	host, _ := sock["address"].(string)
	var port int
	switch p := field(sock, "port_value", "portValue").(type) {
	case float64:
		port = int(p)
	case string:
		port, _ = strconv.Atoi(p)
	}
	if port == 0 {
		return fallback
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// field returns the first present key of m, which may be any JSON value.
func field(m any, keys ...string) any {
	obj, _ := m.(map[string]any)
	for _, k := range keys {
		if v, ok := obj[k]; ok {
			return v
		}
	}
	return nil
}

// envoyRunner runs Envoy as a child process: it restarts it when it exits
// unexpectedly and drains and stops it when the agent stops.
type envoyRunner struct {
	binary    string
	args      []string
	adminURL  string
	drainTime time.Duration
	timing    Timing
	stdout    io.Writer
	stderr    io.Writer
	logger    *slog.Logger
	admin     *http.Client

	mu       sync.Mutex
	running  bool
	draining bool
}

// newEnvoyRunner prepares to run binary with the bootstrap at configFile.
func newEnvoyRunner(binary, configFile, adminAddress string, drainTime time.Duration, logLevel string, timing Timing, stdout, stderr io.Writer, logger *slog.Logger) *envoyRunner {
	drainSeconds := int((drainTime + time.Second - 1) / time.Second)
	return &envoyRunner{
		binary: binary,
		args: []string{
			"-c", configFile,
			"--drain-time-s", strconv.Itoa(drainSeconds),
			"--drain-strategy", "immediate",
			"--log-level", logLevel,
			"--disable-hot-restart",
		},
		adminURL:  "http://" + adminAddress,
		drainTime: drainTime,
		timing:    timing,
		stdout:    stdout,
		stderr:    stderr,
		logger:    logger,
		admin:     &http.Client{Timeout: timing.AdminTimeout},
	}
}

// run keeps Envoy running until ctx ends, then drains and stops it. It
// returns once Envoy has exited.
func (e *envoyRunner) run(ctx context.Context) error {
	var delay time.Duration
	for {
		started := time.Now()
		cmd, exited, err := e.start()
		if err == nil {
			select {
			case <-ctx.Done():
				e.stop(cmd, exited)
				return nil
			case err = <-exited:
				e.setState(false, false)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		uptime := time.Since(started)
		if uptime >= e.timing.RestartResetAfter {
			delay = 0
		}
		delay = e.timing.RestartBackoff.next(delay)
		if cmd == nil {
			e.logger.Error("could not start envoy; retrying", "error", err, "retryIn", delay)
		} else {
			e.logger.Error("envoy exited unexpectedly; restarting it", "exit", describeExit(err),
				"uptime", uptime.Round(time.Millisecond), "restartIn", delay)
		}
		if !sleep(ctx, delay) {
			return nil
		}
	}
}

// start launches Envoy; exited receives the result of its Wait.
func (e *envoyRunner) start() (*exec.Cmd, <-chan error, error) {
	cmd := exec.Command(e.binary, e.args...)
	cmd.Stdout, cmd.Stderr = e.stdout, e.stderr
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting envoy: %w", err)
	}
	e.logger.Info("envoy started", "pid", cmd.Process.Pid, "binary", e.binary, "args", strings.Join(e.args, " "))
	e.setState(true, false)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, nil
}

// stop drains Envoy for the drain time, then sends SIGTERM and waits for
// it to exit, killing it after Timing.StopTimeout.
func (e *envoyRunner) stop(cmd *exec.Cmd, exited <-chan error) {
	e.setState(true, true)
	defer e.setState(false, false)
	e.logger.Info("draining envoy", "drainTime", e.drainTime)
	if err := e.drain(); err != nil {
		e.logger.Warn("could not ask envoy to drain; waiting the drain time anyway", "error", err)
	}
	drainDone := time.NewTimer(e.drainTime)
	defer drainDone.Stop()
	select {
	case err := <-exited:
		e.logger.Warn("envoy exited while draining", "exit", describeExit(err))
		return
	case <-drainDone.C:
	}
	e.logger.Info("stopping envoy", "pid", cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	stopTimeout := time.NewTimer(e.timing.StopTimeout)
	defer stopTimeout.Stop()
	select {
	case err := <-exited:
		e.logger.Info("envoy stopped", "exit", describeExit(err))
	case <-stopTimeout.C:
		e.logger.Warn("envoy did not exit after SIGTERM; killing it", "waited", e.timing.StopTimeout)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// drain asks Envoy's admin API to drain the inbound listeners gracefully.
func (e *envoyRunner) drain() error {
	resp, err := e.admin.Post(e.adminURL+envoyDrainPath, "text/plain", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("POST %s: HTTP %d: %s", envoyDrainPath, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// check is the readiness check of Envoy mode: Envoy runs, is not draining,
// and its admin API reports LIVE.
func (e *envoyRunner) check(ctx context.Context) error {
	e.mu.Lock()
	running, draining := e.running, e.draining
	e.mu.Unlock()
	switch {
	case draining:
		return errors.New("envoy is draining")
	case !running:
		return errors.New("envoy is not running")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.adminURL+envoyReadyPath, nil)
	if err != nil {
		return err
	}
	resp, err := e.admin.Do(req)
	if err != nil {
		return fmt.Errorf("envoy's admin API does not answer: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	state := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK || state != "LIVE" {
		return fmt.Errorf("envoy is not live yet (%s: HTTP %d %q)", envoyReadyPath, resp.StatusCode, state)
	}
	return nil
}

func (e *envoyRunner) setState(running, draining bool) {
	e.mu.Lock()
	e.running, e.draining = running, draining
	e.mu.Unlock()
}

// describeExit renders how a child process ended.
func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
		return "exit code " + strconv.Itoa(ee.ExitCode())
	}
	if err != nil {
		return err.Error()
	}
	return "exit code 0"
}
