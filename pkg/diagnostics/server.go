// Package diagnostics serves what operators and orchestrators probe on a
// running process: /healthy (liveness), /ready (readiness checks), /metrics
// (Prometheus) and, when enabled, Go's /debug/pprof/ profiles.
package diagnostics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/atoll-mesh/atoll/pkg/component"
)

// Check is one readiness condition, for example "the store answers".
type Check struct {
	// Name identifies the check in the /ready answer, for example "store".
	Name string
	// Ready returns nil when the condition holds and an error saying why
	// not otherwise. It must return promptly once ctx ends.
	Ready func(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	// Address to listen on, for example "0.0.0.0:5680".
	Address string
	// Gatherer provides the metrics served at /metrics. Nil serves none.
	Gatherer prometheus.Gatherer
	// Checks must all pass for /ready to answer 200.
	Checks []Check
	// DebugEndpoints serves Go's pprof handlers under /debug/pprof/.
	DebugEndpoints bool
	// CheckTimeout bounds one run of the readiness checks; zero means 5s.
	CheckTimeout time.Duration
	// ShutdownTimeout bounds draining in-flight requests when the server
	// stops; zero means 5s.
	ShutdownTimeout time.Duration
}

// Server is the diagnostics HTTP server. It is a component.Component.
type Server struct {
	logger *slog.Logger
	opts   Options
}

var _ component.Component = (*Server)(nil)

// NewServer returns a Server; it listens once started.
func NewServer(logger *slog.Logger, opts Options) *Server {
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 5 * time.Second
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 5 * time.Second
	}
	opts.Checks = slices.Clone(opts.Checks)
	return &Server{logger: logger, opts: opts}
}

// Name returns "diagnostics".
func (s *Server) Name() string { return "diagnostics" }

// Start listens on the configured address and serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("opening the diagnostics port: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then drains in-flight requests for up to
// the shutdown timeout. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.logger.Info("diagnostics server listening", "address", ln.Addr().String(), "debugEndpoints", s.opts.DebugEndpoints)

	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", ln.Addr(), err)
	}
	s.logger.Info("diagnostics server stopped")
	return nil
}

// Handler returns the server's routes, for embedding or tests.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /ready", s.serveReady)
	gatherer := s.opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.Gatherers{}
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if s.opts.DebugEndpoints {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serveReady runs every check concurrently and answers 200 when all pass, or
// 503 listing each failing check with its reason.
func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.CheckTimeout)
	defer cancel()
	failures := make([]string, len(s.opts.Checks))
	var wg sync.WaitGroup
	for i, check := range s.opts.Checks {
		wg.Go(func() {
			if err := runCheck(ctx, check); err != nil {
				failures[i] = check.Name + ": " + oneLine(err.Error())
			}
		})
	}
	wg.Wait()
	failures = slices.DeleteFunc(failures, func(f string) bool { return f == "" })

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failures) == 0 {
		_, _ = fmt.Fprintln(w, "ready")
		return
	}
	slices.Sort(failures)
	s.logger.Debug("not ready", "failing", failures)
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(failures, "\n"))
}

// runCheck runs one check, turning a panic into a failure: a broken check
// must not take the diagnostics server down with it.
func runCheck(ctx context.Context, check Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	if check.Ready == nil {
		return nil
	}
	return check.Ready(ctx)
}

// oneLine keeps a reason on one line of the /ready body.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
