// Package apiserver serves Atoll's REST API in Kuma's dialect: resource CRUD
// under /meshes/{mesh}/{plural} and /{plural}, paginated lists, the index,
// type metadata and an OpenAPI document generated from the registered types.
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 4 << 20

// Index is the body of GET /.
type Index struct {
	// Product is "Atoll".
	Product string `json:"product"`
	// Version of the control plane.
	Version string `json:"version"`
	// BasedOnKuma is the Kuma API level followed.
	BasedOnKuma string `json:"basedOnKuma"`
	// InstanceID identifies this control-plane instance.
	InstanceID string `json:"instanceId"`
	// ClusterID identifies the control-plane cluster (all instances on one store).
	ClusterID string `json:"clusterId,omitempty"`
	// Hostname of the machine.
	Hostname string `json:"hostname"`
	// Mode is standalone, zone or global.
	Mode string `json:"mode"`
	// Environment is universal or kubernetes.
	Environment string `json:"environment"`
	// GUI is the path of the web UI.
	GUI string `json:"gui,omitempty"`
}

// Options configure a Server.
type Options struct {
	// Manager is the write path and reader of resources.
	Manager *manager.Manager
	// Index is served at GET /.
	Index Index
	// Address to listen on, such as ":5681"; used by Start.
	Address string
	// TLSAddress, when set, is a second listener serving the API over TLS
	// (":5682") with TLSConfig.
	TLSAddress string
	// TLSConfig holds the certificate of the TLS listener.
	TLSConfig *tls.Config
	// ReadOnly refuses every write with 405.
	ReadOnly bool
	// Global is set on a global control plane, which refuses writes of
	// types that only zones originate (Dataplane).
	Global bool
	// Log receives request failures.
	Log *slog.Logger
	// Inspector serves /meshes/{mesh}/dataplanes/{name}/_config; nil on
	// control planes that drive no data planes.
	Inspector Inspector
	// Tokens serves POST /tokens/dataplane; nil when not available.
	Tokens TokenIssuer
	// Mount adds routes owned by other packages (GUI).
	Mount func(r chi.Router)
}

// Server is the REST API.
type Server struct {
	opts    Options
	reg     *resource.Registry
	mgr     *manager.Manager
	log     *slog.Logger
	routes  []route
	handler http.Handler

	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
}

// New builds the API for the types of opts.Manager's registry.
func New(opts Options) (*Server, error) {
	if opts.Manager == nil {
		return nil, errors.New("apiserver: a manager is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, reg: opts.Manager.Registry(), mgr: opts.Manager, log: opts.Log}
	s.routes = s.buildRoutes()
	r := chi.NewRouter()
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)
	for _, rt := range s.routes {
		r.Method(rt.Method, rt.Pattern, rt.handler)
	}
	if opts.Mount != nil {
		opts.Mount(r)
	}
	s.handler = r
	return s, nil
}

// Handler returns the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Start serves the API on opts.Address (plain HTTP) and, when set, on
// opts.TLSAddress with opts.TLSConfig, until ctx ends; then it shuts down
// gracefully.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("api server: listening on %s: %w", s.opts.Address, err)
	}
	if s.opts.TLSAddress == "" {
		return s.Serve(ctx, ln)
	}
	tln, err := net.Listen("tcp", s.opts.TLSAddress)
	if err != nil {
		ln.Close()
		return fmt.Errorf("api server: listening on %s: %w", s.opts.TLSAddress, err)
	}
	tln = tls.NewListener(tln, s.opts.TLSConfig)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(ctx, ln) }()
	go func() { errc <- s.Serve(ctx, tln) }()
	first := <-errc
	cancel()
	second := <-errc
	return errors.Join(first, second)
}

// Serve serves the API on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("api server listening", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("api server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("api server: shutting down: %w", err)
	}
	return nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, newError(http.StatusNotFound, "Not found",
		fmt.Sprintf("no API endpoint at %s; GET /_resources lists the resource types and their paths", r.URL.Path), nil))
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeError(w, newError(http.StatusMethodNotAllowed, "Method not allowed",
		fmt.Sprintf("%s is not supported on %s", r.Method, r.URL.Path), nil))
}
