// Package server is the data-plane server (port 5678): one TLS listener
// serving xDS to proxies — SotW and delta ADS (pkg/xds/ads) from
// pkg/xds/cache — and the HTTP endpoints of api/bootstrap through which
// atoll-dp registers a dataplane, fetches its proxy's bootstrap and keeps a
// proxyless workload's certificate fresh.
//
// # One port, two protocols
//
// The listener terminates TLS itself and routes each connection by the
// protocols the client offers in its TLS handshake (see router): gRPC
// clients offer only "h2" and go to the native gRPC server; HTTP clients
// offer "http/1.1" and go to net/http. Nothing of an HTTP/2 stream is
// parsed, and xDS runs on gRPC's own transport rather than the
// grpc.Server.ServeHTTP bridge, which BenchmarkConnectedProxies measured at
// 1,000 proxies (2 cores) to cost ~22 KiB more heap and ~11 KiB more
// goroutine stack per proxy, connect 40% slower, and which ignores gRPC's
// keepalive settings.
//
// # Authentication
//
// Every request carries a dataplane token, checked by dptoken against the
// mesh and name the proxy claims and against the tags of its Dataplane. On
// HTTP it is the "Authorization: Bearer" header; on xDS it is the stream's
// "authorization: Bearer" metadata (Envoy, whose bootstrap sends it as
// initial metadata, and gRPC clients with gRFC A97 call credentials) or,
// failing that, the node metadata key bootstrap.MetadataToken (proxyless
// gRPC-Go, which needs no setting for it). The node id a stream claims
// ("<mesh>/<name>") must be the token's dataplane, is checked on the first
// request before any watch exists, and may not change afterwards, so a proxy
// never receives another mesh's or another dataplane's configuration.
//
// # Lifecycle
//
// When the first stream of a proxy is admitted the ProxyTracker (the
// reconciler) is told, and again when its last stream ends. Each stream is
// a subscription in the dataplane's DataplaneInsight, written through the
// manager at a bounded rate. A Dataplane that atoll-dp registered at
// bootstrap is deleted once its proxy has stayed disconnected for a grace
// period; one created beforehand stays and shows offline. The bootstrap
// puts the registered document in the node metadata
// (bootstrap.MetadataDataplane), so a proxy that comes back after its
// dataplane was deleted registers it again instead of being refused.
package server

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ads"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// ProxyTracker is told which proxies are connected: the reconciler keeps
// their configuration published while they are. Calls for one key arrive in
// order (connected, disconnected, connected, …) from one goroutine; they
// must not block for long.
type ProxyTracker interface {
	// ProxyConnected: the first stream of the proxy was admitted.
	ProxyConnected(key resource.Key, flavour ir.Flavour)
	// ProxyDisconnected: the last stream of the proxy ended.
	ProxyDisconnected(key resource.Key)
}

// TokenVerifier checks dataplane tokens; *dptoken.Manager implements it.
type TokenVerifier interface {
	// Verify checks that token lets dataplane mesh/name with tags connect.
	Verify(ctx context.Context, token, mesh, name string, tags map[string][]string) (*dptoken.Claims, error)
}

// CertificateIssuer issues the workload certificate of a proxyless
// dataplane for POST /certificate.
type CertificateIssuer interface {
	// WorkloadCertificate returns a fresh certificate for the dataplane
	// key, whose token was verified. An error matching ErrNoIdentity means
	// the mesh issues none (mTLS is off).
	WorkloadCertificate(ctx context.Context, key resource.Key) (bootstrap.CertificateResponse, error)
}

// CertificateStatus is optionally implemented by a CertificateIssuer that
// also delivers certificates over xDS (SDS, for Envoy): the insight of a
// connected proxy then reports the certificate it currently holds.
type CertificateStatus interface {
	// CurrentCertificate returns the expiry and issue time of the
	// certificate delivered to key, and the CA backend that issued it.
	CurrentCertificate(key resource.Key) (notAfter, issued time.Time, backend string, ok bool)
}

// ErrNoIdentity is returned by a CertificateIssuer when the dataplane's
// mesh has no mTLS identity to issue; POST /certificate answers 409.
var ErrNoIdentity = errors.New("the mesh has no mTLS backend to issue workload certificates")

// DefaultDeregistrationGrace is how long a dataplane atoll-dp registered
// stays after its proxy's last stream ended, unless configured.
const DefaultDeregistrationGrace = 30 * time.Second

// Resources is the part of the manager the server uses: reading
// dataplanes, registering them, and writing insights.
type Resources interface {
	// Registry returns the resource types.
	Registry() *resource.Registry
	// Get returns one resource or an error matching store.ErrNotFound.
	Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error)
	// Apply validates and creates or replaces a resource.
	Apply(ctx context.Context, res *resource.Resource, opts manager.ApplyOptions) (manager.ApplyResult, error)
	// Delete removes a resource.
	Delete(ctx context.Context, typ string, key resource.Key, opts manager.DeleteOptions) error
}

var _ Resources = (*manager.Manager)(nil)

// DeliveryObserver learns how proxies answered responses: each ACK and
// NACK, with the version it concerns. Optional; it must not block.
type DeliveryObserver interface {
	// Acknowledged: the proxy accepted version of typeURL.
	Acknowledged(key resource.Key, typeURL, version string)
	// Rejected: the proxy refused version of typeURL with message.
	Rejected(key resource.Key, typeURL, version, message string)
}

// Options configure a Server.
type Options struct {
	// Address to listen on; used by Start. Empty means ":5678".
	Address string
	// TLSCertFile and TLSKeyFile are the server certificate (chain) and
	// key; when both are empty a self-signed certificate is generated for
	// TLSHosts.
	TLSCertFile string
	// TLSKeyFile is the key of TLSCertFile.
	TLSKeyFile string
	// TLSHosts are the names and addresses a generated certificate is
	// valid for, besides localhost, the host name and every address of
	// the machine's interfaces.
	TLSHosts []string
	// CACert is the PEM CA bundle bootstraps tell Envoy to verify the
	// server with; empty means the last certificate of the served chain
	// (the certificate itself when it is generated), so a provided chain
	// should end with its root.
	CACert []byte
	// Cache is the xDS cache streams are served from.
	Cache *cache.Cache
	// Resources reads and writes dataplanes and insights (the manager).
	Resources Resources
	// Tokens verifies dataplane tokens.
	Tokens TokenVerifier
	// Certificates issues proxyless workload certificates; nil answers
	// POST /certificate with 501.
	Certificates CertificateIssuer
	// Tracker is told which proxies are connected; nil tells no one.
	Tracker ProxyTracker
	// Observer learns ACKs and NACKs; optional.
	Observer DeliveryObserver
	// InstanceID names this control-plane instance in insights.
	InstanceID string
	// InsightFlushInterval bounds how often a dataplane's insight is
	// written for counter changes (connects and disconnects are written at
	// once); zero means 10s.
	InsightFlushInterval time.Duration
	// MaxSubscriptions is how many subscriptions an insight keeps (the
	// latest); zero means 5.
	MaxSubscriptions int
	// DeregistrationGrace is how long a dataplane registered by atoll-dp
	// stays after its last stream ended before it is deleted; zero means
	// 30s.
	DeregistrationGrace time.Duration
	// RegistrationTimeout is how long a dataplane registered at bootstrap
	// waits for its first stream before it is deleted; zero means 5m.
	RegistrationTimeout time.Duration
	// StoreTimeout bounds each store call; zero means 10s.
	StoreTimeout time.Duration
	// Log receives the server's messages; nil discards them.
	Log *slog.Logger
	// Metrics registers the server's metrics; nil registers nowhere.
	Metrics prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the data-plane server.
type Server struct {
	opts      Options
	log       *slog.Logger
	tlsConfig *tls.Config
	caPEM     []byte
	metrics   *metrics
	dpType    *resource.Descriptor

	notifier  *notifier
	insights  *insights
	lifecycle *lifecycle

	mu     sync.Mutex
	conns  map[resource.Key]int
	open   map[*stream]struct{} // admitted streams
	router *router              // while serving
}

// New checks opts and prepares the server's TLS certificate.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Cache == nil:
		return nil, errors.New("data-plane server: a cache is required")
	case opts.Resources == nil:
		return nil, errors.New("data-plane server: a resource manager is required")
	case opts.Tokens == nil:
		return nil, errors.New("data-plane server: a token verifier is required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Address == "" {
		opts.Address = ":" + strconv.Itoa(config.DefaultDPServerPort)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.InsightFlushInterval <= 0 {
		opts.InsightFlushInterval = 10 * time.Second
	}
	if opts.MaxSubscriptions <= 0 {
		opts.MaxSubscriptions = 5
	}
	if opts.DeregistrationGrace <= 0 {
		opts.DeregistrationGrace = DefaultDeregistrationGrace
	}
	if opts.RegistrationTimeout <= 0 {
		opts.RegistrationTimeout = 5 * time.Minute
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 10 * time.Second
	}
	if opts.InstanceID == "" {
		host, _ := os.Hostname()
		opts.InstanceID = host
	}
	dpType, ok := opts.Resources.Registry().Get(resource.DataplaneType)
	if !ok {
		return nil, errors.New("data-plane server: the registry has no Dataplane type")
	}
	if _, ok := opts.Resources.Registry().Get(resource.DataplaneInsightType); !ok {
		return nil, errors.New("data-plane server: the registry has no DataplaneInsight type")
	}
	tlsConfig, generated, err := pki.ServerTLSConfig(opts.TLSCertFile, opts.TLSKeyFile, tlsHosts(opts.TLSHosts), opts.Now())
	if err != nil {
		return nil, fmt.Errorf("data-plane server: %w", err)
	}
	if generated {
		opts.Log.Info("serving data planes with a generated self-signed certificate; set dpServer.tlsCertFile and tlsKeyFile to use your own")
	}
	caPEM := opts.CACert
	if len(caPEM) == 0 {
		chain := tlsConfig.Certificates[0].Certificate
		caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[len(chain)-1]})
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("data-plane server: %w", err)
	}
	s := &Server{
		opts:      opts,
		log:       opts.Log,
		tlsConfig: tlsConfig,
		caPEM:     caPEM,
		metrics:   m,
		dpType:    dpType,
		notifier:  &notifier{tracker: opts.Tracker, log: opts.Log},
		conns:     map[resource.Key]int{},
		open:      map[*stream]struct{}{},
	}
	s.insights = newInsights(s)
	s.lifecycle = newLifecycle(s)
	return s, nil
}

// tlsHosts returns the hosts a generated certificate is valid for.
func tlsHosts(extra []string) []string {
	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, extra...)
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	return hosts
}

// Name names the component.
func (s *Server) Name() string { return "dp-server" }

// CACertPEM returns the CA bundle proxies verify the server with: give it to
// atoll-dp as --ca-cert-file.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Start serves on opts.Address until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Address)
	if err != nil {
		return fmt.Errorf("data-plane server: listening on %s: %w", s.opts.Address, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then stops: xDS streams end (their
// insights record the disconnection), HTTP requests in flight finish. A
// Server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	insightsCtx, stopInsights := context.WithCancel(context.WithoutCancel(ctx))
	insightsDone := make(chan struct{})
	go func() {
		defer close(insightsDone)
		s.insights.run(insightsCtx)
	}()

	// ADS connections are many, long-lived and mostly idle, and requests
	// are small. No read buffer (TLS already buffers a record) and a write
	// buffer released between writes keep ~40 KiB per proxy off the heap
	// (see BenchmarkConnectedProxies). Fixed flow-control windows turn off
	// gRPC's bandwidth estimator, which would send a PING for every request
	// received: proxies send only small requests. Keepalives find proxies
	// that vanished without closing their stream. ads.ServerOption lets
	// responses go out as the encodings the cache shares between streams.
	gs := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ReadBufferSize(0),
		grpc.SharedWriteBuffer(true),
		grpc.InitialWindowSize(1<<16),
		grpc.InitialConnWindowSize(1<<16),
		grpc.WaitForHandlers(true),
		ads.ServerOption(),
	)
	adsServer, err := ads.New(ads.Options{Cache: s.opts.Cache, Hooks: hooks{s: s}, Log: s.log})
	if err != nil {
		stopInsights()
		<-insightsDone
		return fmt.Errorf("data-plane server: %w", err)
	}
	adsServer.Register(gs)
	hs := &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	r := newRouter(s.log, s.tlsConfig, ln.Addr())
	s.mu.Lock()
	s.router = r
	s.mu.Unlock()
	routeCtx, stopRouting := context.WithCancel(ctx)
	defer stopRouting()
	errc := make(chan error, 3)
	go func() { errc <- r.serve(routeCtx, ln) }()
	go func() { errc <- gs.Serve(r.grpc) }()
	go func() { errc <- hs.Serve(r.http) }()
	s.log.Info("data-plane server listening", "address", ln.Addr().String())

	var failure error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if ctx.Err() == nil { // not the end of the routing loop at ctx's end
			if err == nil || errors.Is(err, http.ErrServerClosed) {
				err = errors.New("a listener closed unexpectedly")
			}
			failure = fmt.Errorf("data-plane server: %w", err)
		}
	}
	// Stop accepting, end the xDS streams, let HTTP requests finish. ADS
	// streams never end by themselves: closing their connections ends them,
	// and Stop returns once their handlers did (their insights record the
	// disconnection).
	s.lifecycle.stop()
	stopRouting()
	_ = ln.Close()
	gs.Stop()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && failure == nil {
		failure = fmt.Errorf("data-plane server: shutting down HTTP: %w", err)
	}
	stopInsights()
	<-insightsDone
	s.log.Info("data-plane server stopped")
	return failure
}
