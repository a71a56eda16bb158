package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/version"
)

// EnvoyBootstrapFile is the name of Envoy's bootstrap in --config-dir.
const EnvoyBootstrapFile = "bootstrap.json"

// Deps are what the agent takes from its process.
type Deps struct {
	// Logger receives the agent's own logs.
	Logger *slog.Logger
	// Stdout receives Envoy's standard output and, in proxyless mode, the
	// "export GRPC_XDS_BOOTSTRAP=<file>" line.
	Stdout io.Writer
	// Stderr receives Envoy's standard error.
	Stderr io.Writer
	// Registry knows the Dataplane type used to read --dataplane-file.
	Registry *resource.Registry
	// Timing holds internal delays; the zero value means DefaultTiming().
	Timing Timing
}

// Agent is a configured atoll-dp: New checks everything that can be
// checked locally, Run talks to the control plane and runs the data plane.
type Agent struct {
	cfg    Config
	deps   Deps
	timing Timing
	logger *slog.Logger
	addr   cpAddress
	dp     dataplaneRef
	cp     *cpClient

	// envoyPath is the resolved Envoy executable (Envoy mode).
	envoyPath string
	// bootstrapOut is the absolute --grpc-bootstrap-out (proxyless mode).
	bootstrapOut string
	// paths are the absolute proxyless file paths (proxyless mode).
	paths bootstrap.ProxylessPaths

	mu    sync.Mutex
	check readinessCheck
}

// New checks cfg and everything it names that is local — the token, the
// dataplane file, the CA file, the Envoy executable, the output
// directories — and returns an agent ready to Run, or the first problem as
// one sentence.
func New(cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	timing := deps.Timing
	if timing == (Timing{}) {
		timing = DefaultTiming()
	}
	a := &Agent{cfg: cfg, deps: deps, timing: timing, logger: deps.Logger}
	a.addr, _ = parseCPAddress(cfg.CPAddress) // checked above
	tokens := tokenSource{file: cfg.TokenFile, token: cfg.Token}
	if _, err := tokens.get(); err != nil {
		return nil, err
	}
	dp, err := loadDataplane(deps.Registry, cfg.DataplaneFile, cfg.Name, cfg.Mesh)
	if err != nil {
		return nil, err
	}
	a.dp = dp
	a.cp, err = newCPClient(a.addr, cfg.CACertFile, cfg.InsecureSkipVerify, tokens, timing, a.logger.With("component", "cp-client"))
	if err != nil {
		return nil, err
	}
	switch cfg.Mode {
	case ModeEnvoy:
		if a.envoyPath, err = findEnvoy(cfg.BinaryPath); err != nil {
			return nil, err
		}
		if cfg.ConfigDir != "" {
			if err := ensureDir(cfg.ConfigDir, "--config-dir"); err != nil {
				return nil, err
			}
		}
	case ModeProxyless:
		if err := ensureDir(cfg.CertsDir, "--certs-dir"); err != nil {
			return nil, err
		}
		if a.paths, err = proxylessPaths(cfg.CertsDir, cfg.CACertFile); err != nil {
			return nil, err
		}
		if a.bootstrapOut, err = filepath.Abs(cfg.GRPCBootstrapOut); err != nil {
			return nil, fmt.Errorf("--grpc-bootstrap-out: %w", err)
		}
		if fi, err := os.Stat(filepath.Dir(a.bootstrapOut)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--grpc-bootstrap-out %s: directory %s does not exist", cfg.GRPCBootstrapOut, filepath.Dir(a.bootstrapOut))
		}
	}
	a.check = func(context.Context) error { return errors.New("fetching the bootstrap from the control plane") }
	return a, nil
}

// Run serves the readiness endpoint and runs the data plane until ctx
// ends; then it stops the data plane gracefully (Envoy is drained) and
// returns nil. It returns an error when the data plane cannot be started:
// the control plane refuses or cannot be reached, a file cannot be written.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.InsecureSkipVerify {
		a.logger.Warn("not verifying the control plane's certificate (--insecure-skip-verify): use --ca-cert-file outside development")
	}
	a.logger.Info("starting atoll-dp", "version", version.Get().Version, "mode", a.cfg.Mode,
		"controlPlane", a.addr.base.String(), "mesh", a.dp.mesh, "dataplane", a.dp.name)
	ln, err := listenReadiness(a.cfg.ReadinessAddress, a.cfg.ReadyPort)
	if err != nil {
		return err
	}
	// The readiness endpoint outlives ctx: it must answer "not ready" while
	// Envoy drains.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() {
		served <- serveReadiness(serveCtx, ln, a.ready, a.timing.AdminTimeout, a.logger.With("component", "readiness"))
	}()
	defer func() {
		stopServing()
		<-served
	}()

	switch a.cfg.Mode {
	case ModeEnvoy:
		err = a.runEnvoy(ctx)
	default:
		err = a.runProxyless(ctx)
	}
	if err != nil && ctx.Err() != nil {
		// Stopped while still starting up: that is a clean stop.
		a.logger.Info("stopped before the data plane started", "reason", err)
		return nil
	}
	if err == nil {
		a.logger.Info("atoll-dp stopped")
	}
	return err
}

// ready is the readiness endpoint's check.
func (a *Agent) ready(ctx context.Context) error {
	a.mu.Lock()
	check := a.check
	a.mu.Unlock()
	return check(ctx)
}

func (a *Agent) setCheck(c readinessCheck) {
	a.mu.Lock()
	a.check = c
	a.mu.Unlock()
}

// request returns the bootstrap request common to both modes.
func (a *Agent) request(proxyType string) *bootstrap.Request {
	return &bootstrap.Request{
		Mesh:      a.dp.mesh,
		Name:      a.dp.name,
		ProxyType: proxyType,
		Dataplane: a.dp.json,
		Version:   bootstrap.Version{AtollDP: version.Get().Version},
		XDSServer: a.addr.hostPort,
	}
}

// runEnvoy fetches Envoy's bootstrap, writes it and runs Envoy.
func (a *Agent) runEnvoy(ctx context.Context) error {
	log := a.logger.With("component", "envoy")
	req := a.request(bootstrap.ProxyEnvoy)
	req.AdminPort = uint32(a.cfg.AdminPort)
	if v, err := envoyVersion(ctx, a.envoyPath); err != nil {
		log.Warn("could not read Envoy's version", "error", err)
	} else {
		req.Version.Envoy = v
		log.Info("found envoy", "binary", a.envoyPath, "version", v)
	}
	resp, err := a.cp.bootstrap(ctx, req, a.cfg.CPRetryTimeout)
	if err != nil {
		return err
	}
	dir := a.cfg.ConfigDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "atoll-dp-"); err != nil {
			return fmt.Errorf("creating a directory for Envoy's bootstrap: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	file := filepath.Join(dir, EnvoyBootstrapFile)
	if err := writeFileAtomic(file, resp.Bootstrap, 0o600); err != nil {
		return err
	}
	admin := envoyAdminAddress(resp.Bootstrap, a.cfg.AdminPort)
	log.Info("envoy bootstrap written", "file", file, "nodeId", resp.NodeID, "admin", admin)
	runner := newEnvoyRunner(a.envoyPath, file, admin, a.cfg.DrainTime, a.cfg.EnvoyLogLevel, a.timing,
		a.deps.Stdout, a.deps.Stderr, log)
	a.setCheck(runner.check)
	return runner.run(ctx)
}

// runProxyless writes the gRPC bootstrap and keeps the certificate fresh.
func (a *Agent) runProxyless(ctx context.Context) error {
	req := a.request(bootstrap.ProxyProxyless)
	paths := a.paths
	req.Proxyless = &paths
	runner := &proxylessRunner{
		cp:           a.cp,
		request:      req,
		paths:        a.paths,
		bootstrapOut: a.bootstrapOut,
		retryFor:     a.cfg.CPRetryTimeout,
		renewBackoff: a.timing.RenewBackoff,
		stdout:       a.deps.Stdout,
		logger:       a.logger.With("component", "proxyless"),
	}
	a.setCheck(runner.check)
	err := runner.run(ctx)
	a.setCheck(func(context.Context) error { return errors.New("atoll-dp is stopping") })
	return err
}
