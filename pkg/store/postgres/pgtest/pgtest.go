// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb and
// pg_ctl in a temporary directory, run as an unprivileged OS user (initdb
// refuses root), listening on a free loopback port and on a unix socket in
// that directory, with durability switched off for speed. Tests never depend
// on a server someone started by hand.
//
// A test binary usually shares one cluster (see Shared) and gives each test a
// fresh database (Cluster.NewDatabase). Fault tests that stop the server take
// a cluster of their own (New) so they do not disturb the others.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// InstallHint tells how to get the PostgreSQL server binaries on the
// project's machines.
const InstallHint = "install the PostgreSQL server with `apt-get install -y postgresql` (Debian/Ubuntu), " +
	"or point ATOLL_PGTEST_BIN_DIR at a directory holding initdb and pg_ctl"

// Superuser is the role initdb creates; it authenticates with "trust".
const Superuser = "postgres"

const (
	dirPrefix = "atoll-pgtest-"
	ownerFile = "owner.pid"
)

// Options tune Launch. The zero value is fine for tests.
type Options struct {
	// BinDir holds initdb and pg_ctl. Empty: $ATOLL_PGTEST_BIN_DIR, then
	// PATH, then the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// OSUser runs the server when the test runs as root. Empty: "postgres",
	// falling back to "nobody".
	OSUser string
	// MaxConnections is the server's max_connections; 0 means 300.
	MaxConnections int
}

// Cluster is one running (or stopped) throwaway PostgreSQL server. Its
// methods are safe for concurrent use.
type Cluster struct {
	binDir  string
	dir     string
	dataDir string
	sockDir string
	logFile string
	port    int
	cred    *syscall.Credential

	mu      sync.Mutex // serialises Start/Stop/Close
	running bool
	closed  bool
	dbSeq   atomic.Int64
}

// Launch creates a cluster with initdb in a new temporary directory and
// starts it. Close stops it and removes the directory.
func Launch(ctx context.Context, opts Options) (*Cluster, error) {
	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential(opts.OSUser)
	if err != nil {
		return nil, err
	}
	reapStale(ctx, binDir, cred)
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating temp dir: %w", err)
	}
	// Record who owns the cluster, so that a later run can remove it if
	// this process dies without cleaning up (a test timeout, a kill).
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{
		binDir:  binDir,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logFile: filepath.Join(dir, "postgres.log"),
		cred:    cred,
	}
	if err := c.init(ctx, opts); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// A free port found by listening may be taken by someone else before
	// the server binds it; retry with another one.
	for attempt := 1; ; attempt++ {
		err = c.Start(ctx)
		if err == nil || attempt == 3 {
			break
		}
		if c.port, err = freePort(); err != nil {
			break
		}
		if err = c.writePort(); err != nil {
			break
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// New launches a cluster for one test and closes it in t.Cleanup. It fails
// the test (never skips it) when PostgreSQL is not installed.
func New(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Launch(ctx, Options{})
	if err != nil {
		t.Fatalf("starting a throwaway PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("stopping throwaway PostgreSQL: %v", err)
		}
	})
	return c
}

func (c *Cluster) init(ctx context.Context, opts Options) error {
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		for _, p := range []string{c.dir, c.sockDir} {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: handing %s to uid %d: %w", p, c.cred.Uid, err)
			}
		}
	}
	out, err := c.run(ctx, "initdb", "-D", c.dataDir, "-U", Superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		return err
	}
	maxConns := opts.MaxConnections
	if maxConns == 0 {
		maxConns = 300
	}
	conf := fmt.Sprintf(`
# pgtest: a throwaway cluster, durability off for speed.
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = %d
shared_buffers = 64MB
log_min_messages = warning
include_if_exists = 'pgtest_port.conf'
`, c.sockDir, maxConns)
	f, err := os.OpenFile(filepath.Join(c.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	_, werr := f.WriteString(conf)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("pgtest: writing postgresql.conf: %w", err)
	}
	return c.writePort()
}

func (c *Cluster) writePort() error {
	p := filepath.Join(c.dataDir, "pgtest_port.conf")
	if err := os.WriteFile(p, []byte(fmt.Sprintf("port = %d\n", c.port)), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	return nil
}

// Start starts the server again after Stop (Launch starts it the first
// time). It waits until the server accepts connections.
func (c *Cluster) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("pgtest: cluster is closed")
	}
	if c.running {
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "start", "-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl start on port %d: %w\n%s\n%s", c.port, err, out, c.logTail())
	}
	c.running = true
	return nil
}

// Stop shuts the server down ("fast" mode: open connections are cut, as in
// an outage or a restart) and waits until it is gone. Start brings it back
// with its data.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "fast")
}

// Crash stops the server the way a crash or a power cut would ("immediate"
// mode): every backend exits at once, without finishing or rolling back
// what it was doing; Start recovers from the WAL. Unlike Stop, a session
// waiting for a lock cannot be granted it by another session's exit and
// commit before the end.
func (c *Cluster) Crash(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "immediate")
}

func (c *Cluster) stop(ctx context.Context, mode string) error {
	if !c.running {
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", mode, "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	c.running = false
	return nil
}

// Close stops the server (immediate mode) and removes its directory.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.stop(ctx, "immediate")
	return errors.Join(err, os.RemoveAll(c.dir))
}

// Running reports whether the server is up (as far as Start/Stop know).
func (c *Cluster) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Host is the TCP address the server listens on.
func (c *Cluster) Host() string { return "127.0.0.1" }

// Port is the server's TCP port (the unix socket uses the same number).
func (c *Cluster) Port() int { return c.port }

// SocketDir holds the server's unix socket; use it as a host to connect
// through the socket.
func (c *Cluster) SocketDir() string { return c.sockDir }

// Dir is the cluster's temporary directory (data, socket and log).
func (c *Cluster) Dir() string { return c.dir }

// Log returns the server log, for failure messages.
func (c *Cluster) Log() string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return ""
	}
	return string(b)
}

func (c *Cluster) logTail() string {
	l := c.Log()
	if len(l) > 4000 {
		l = "…" + l[len(l)-4000:]
	}
	return "server log:\n" + l
}

// Admin returns the connection parameters of the "postgres" maintenance
// database, as the superuser.
func (c *Cluster) Admin() Database {
	return Database{Host: c.Host(), Port: c.port, SocketDir: c.sockDir, User: Superuser, Name: "postgres"}
}

// run runs a PostgreSQL binary as the server's OS user, with a clean
// environment (no PG* variables leaking in) and the temp dir as working
// directory.
func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=" + c.binDir + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the postmaster running with our pipes open; do
	// not wait for them to close once pg_ctl itself has exited.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	return out.Bytes(), err
}

// findBinDir returns a directory holding initdb and pg_ctl.
func findBinDir(explicit string) (string, error) {
	var candidates []string
	if explicit != "" {
		candidates = append(candidates, explicit)
	} else {
		if env := os.Getenv("ATOLL_PGTEST_BIN_DIR"); env != "" {
			candidates = append(candidates, env)
		}
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				p = real
			}
			candidates = append(candidates, filepath.Dir(p))
		}
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
		candidates = append(candidates, dirs...)
	}
	for _, d := range candidates {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in %v: %s", candidates, InstallHint)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// serverCredential returns the OS user to run the server as when we are
// root, or nil to run it as ourselves.
func serverCredential(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	names := []string{name}
	if name == "" {
		names = []string{"postgres", "nobody"}
	}
	var errs []error
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, err)
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, fmt.Errorf("pgtest: running as root and no unprivileged user to run PostgreSQL as (tried %s): %w",
		strings.Join(names, ", "), errors.Join(errs...))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// reapStale stops and removes clusters left behind by test processes that
// died without cleaning up.
func reapStale(ctx context.Context, binDir string, cred *syscall.Credential) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // owner alive (or unknown): not ours to touch
		}
		c := &Cluster{binDir: binDir, dir: dir, dataDir: filepath.Join(dir, "data"), cred: cred}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, _ = c.run(sctx, "pg_ctl", "stop", "-D", c.dataDir, "-m", "immediate", "-w")
		cancel()
		_ = os.RemoveAll(dir)
	}
}
