// Package agenttest runs a stand-in for the control plane's data-plane
// server, for tests of atoll-dp until pkg/xds/server serves api/bootstrap.
// It follows api/bootstrap to the letter: HTTPS with its own self-signed
// certificate, JSON bodies, "Authorization: Bearer <token>", refusals as
// bootstrap.Error. Tokens are opaque strings mapped to the dataplane they
// are for; workload certificates come from a per-mesh CA of pkg/pki, with a
// configurable (short) lifetime.
package agenttest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Identity is what a token authorises.
type Identity struct {
	// Mesh the token is for.
	Mesh string
	// Name of the dataplane the token is for; empty allows any dataplane of
	// the mesh.
	Name string
	// ExpiresAt, when set, is when the token stops being accepted.
	ExpiresAt time.Time
}

// Options configure a Server.
type Options struct {
	// Tokens maps every accepted token to what it authorises.
	Tokens map[string]Identity
	// Dataplanes lists dataplanes created beforehand, as "mesh/name"; a
	// bootstrap without a Dataplane document must name one of them. Their
	// certificates carry the service named like the dataplane.
	Dataplanes []string
	// CertLifetime is the lifetime of workload certificates; 0 means 24h.
	CertLifetime time.Duration
}

// Recorded is one request the server received.
type Recorded struct {
	// Path is the request path.
	Path string
	// Authorization is the Authorization header.
	Authorization string
	// Body is the request body.
	Body []byte
}

// Server is a running fake data-plane server.
type Server struct {
	// URL is the server's base URL, "https://127.0.0.1:<port>".
	URL string
	// CAFile holds the server's certificate (PEM), which is its own CA: pass
	// it as --ca-cert-file.
	CAFile string

	opts Options
	reg  *resource.Registry
	srv  *httptest.Server

	mu         sync.Mutex
	requests   []Recorded
	faults     map[string][]fault
	cas        map[string]*pki.CA
	dataplanes map[string]*dataplane.Spec
	issued     int
}

type fault struct {
	status  int
	message string
}

// Start starts a Server that stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: opts, reg: reg, faults: map[string][]fault{}, cas: map[string]*pki.CA{}, dataplanes: map[string]*dataplane.Spec{}}
	for _, key := range opts.Dataplanes {
		s.dataplanes[key] = nil
	}
	cert, err := pki.SelfSignedServerCert([]string{"127.0.0.1", "localhost"}, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.CAFile = filepath.Join(t.TempDir(), "cp-ca.pem")
	if err := os.WriteFile(s.CAFile, pki.EncodeCertPEM(cert.Certificate[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+bootstrap.BootstrapPath, s.handleBootstrap)
	mux.HandleFunc("POST "+bootstrap.CertificatePath, s.handleCertificate)
	s.srv = httptest.NewUnstartedServer(s.record(mux))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Close stops the server (a control plane going away).
func (s *Server) Close() { s.srv.Close() }

// FailNext makes the next n requests to path fail with status and an
// api/bootstrap.Error carrying message.
func (s *Server) FailNext(path string, n, status int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[path] = append(s.faults[path], fault{status: status, message: message})
	}
}

// ClearFaults drops the failures FailNext queued and not yet served.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.requests...)
}

// CertificatesIssued counts the workload certificates issued so far.
func (s *Server) CertificatesIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// record keeps every request and serves injected faults first.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = readAll(r)
		}
		s.mu.Lock()
		s.requests = append(s.requests, Recorded{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body})
		var f *fault
		if q := s.faults[r.URL.Path]; len(q) > 0 {
			f, s.faults[r.URL.Path] = &q[0], q[1:]
		}
		s.mu.Unlock()
		if f != nil {
			refuse(w, f.status, "%s", f.message)
			return
		}
		r.Body = nopBody(body)
		next.ServeHTTP(w, r)
	})
}

// authorize checks the bearer token against the dataplane a request names,
// answering as a real control plane would when it refuses.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, mesh, name string) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		refuse(w, http.StatusUnauthorized, "a dataplane token is required (Authorization: Bearer <token>)")
		return false
	}
	id, ok := s.opts.Tokens[token]
	switch {
	case !ok:
		refuse(w, http.StatusUnauthorized, "invalid dataplane token: signature is invalid")
	case !id.ExpiresAt.IsZero() && time.Now().After(id.ExpiresAt):
		refuse(w, http.StatusUnauthorized, "invalid dataplane token: token has expired (at %s)", id.ExpiresAt.UTC().Format(time.RFC3339))
	case id.Mesh != mesh:
		refuse(w, http.StatusForbidden, "token is for mesh %q, not %q", id.Mesh, mesh)
	case id.Name != "" && id.Name != name:
		refuse(w, http.StatusForbidden, "token is for dataplane %q, not %q", id.Name, name)
	default:
		return true
	}
	return false
}

func (s *Server) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	var req bootstrap.Request
	if !decode(w, r, &req) {
		return
	}
	if req.Mesh == "" || req.Name == "" {
		refuse(w, http.StatusBadRequest, "mesh and name are required")
		return
	}
	if !s.authorize(w, r, req.Mesh, req.Name) {
		return
	}
	key := req.Mesh + "/" + req.Name
	if req.Dataplane != "" {
		res, err := s.reg.DecodeJSON([]byte(req.Dataplane))
		if err == nil {
			d, _ := s.reg.Get(resource.DataplaneType)
			err = resource.Validate(d, res).OrNil()
		}
		if err != nil {
			refuse(w, http.StatusBadRequest, "invalid dataplane: %v", err)
			return
		}
		if res.Type != resource.DataplaneType || res.Meta.Mesh != req.Mesh || res.Meta.Name != req.Name {
			refuse(w, http.StatusBadRequest, "the dataplane document names %s %s/%s, the request %s", res.Type, res.Meta.Mesh, res.Meta.Name, key)
			return
		}
		s.mu.Lock()
		s.dataplanes[key] = res.Spec.(*dataplane.Spec)
		s.mu.Unlock()
	} else if !s.known(key) {
		refuse(w, http.StatusNotFound, "dataplane %q of mesh %q not found: create it first or pass --dataplane-file", req.Name, req.Mesh)
		return
	}
	nodeID := req.Mesh + "." + req.Name
	var doc any
	switch req.ProxyType {
	case bootstrap.ProxyEnvoy:
		if req.AdminPort == 0 {
			refuse(w, http.StatusBadRequest, "adminPort is required for an Envoy proxy")
			return
		}
		doc = envoyBootstrap(nodeID, req)
	case bootstrap.ProxyProxyless:
		p := req.Proxyless
		if p == nil || !filepath.IsAbs(p.CertificateFile) || !filepath.IsAbs(p.PrivateKeyFile) || !filepath.IsAbs(p.CABundleFile) || !filepath.IsAbs(p.ServerCAFile) {
			refuse(w, http.StatusBadRequest, "proxyless bootstraps need absolute certificate, key, CA bundle and server CA paths")
			return
		}
		doc = grpcBootstrap(nodeID, req)
	default:
		refuse(w, http.StatusBadRequest, "proxyType must be %q or %q, got %q", bootstrap.ProxyEnvoy, bootstrap.ProxyProxyless, req.ProxyType)
		return
	}
	b, err := json.Marshal(doc)
	if err != nil {
		refuse(w, http.StatusInternalServerError, "%v", err)
		return
	}
	reply(w, bootstrap.Response{Bootstrap: b, NodeID: nodeID})
}

func (s *Server) known(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.dataplanes[key]
	return ok
}

func (s *Server) handleCertificate(w http.ResponseWriter, r *http.Request) {
	var req bootstrap.CertificateRequest
	if !decode(w, r, &req) || !s.authorize(w, r, req.Mesh, req.Name) {
		return
	}
	key := req.Mesh + "/" + req.Name
	s.mu.Lock()
	spec, registered := s.dataplanes[key]
	s.mu.Unlock()
	if !registered {
		refuse(w, http.StatusNotFound, "dataplane %q of mesh %q is not registered: bootstrap it first", req.Name, req.Mesh)
		return
	}
	wreq := pki.WorkloadRequest{Services: []string{req.Name}}
	if spec != nil {
		wreq = pki.WorkloadRequestFor(spec)
	}
	wreq.Lifetime = s.opts.CertLifetime
	ca, err := s.meshCA(req.Mesh)
	if err == nil {
		var wc *pki.WorkloadCert
		if wc, err = ca.IssueWorkloadCert(wreq, time.Now()); err == nil {
			s.mu.Lock()
			s.issued++
			s.mu.Unlock()
			reply(w, bootstrap.CertificateResponse{
				CertificateChain: string(wc.CertPEM),
				PrivateKey:       string(wc.KeyPEM),
				CABundle:         string(ca.CertPEM()),
				NotAfter:         wc.Leaf.NotAfter,
				RenewAt:          wc.RenewAt(),
			})
			return
		}
	}
	refuse(w, http.StatusInternalServerError, "issuing a workload certificate: %v", err)
}

// meshCA returns the mesh's CA, creating it (ECDSA, for speed) on first use.
func (s *Server) meshCA(mesh string) (*pki.CA, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ca, ok := s.cas[mesh]; ok {
		return ca, nil
	}
	key, err := pki.GenerateKey(pki.KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	certPEM, err := pki.SelfSignCA(mesh, key, 24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(mesh, certPEM, keyPEM, now)
	if err != nil {
		return nil, err
	}
	s.cas[mesh] = ca
	return ca, nil
}

// envoyBootstrap is a minimal valid Envoy bootstrap: node and admin. It has
// no xDS configuration so that a real Envoy reports LIVE at once.
func envoyBootstrap(nodeID string, req bootstrap.Request) map[string]any {
	return map[string]any{
		"node": map[string]any{"id": nodeID, "cluster": req.Name},
		"admin": map[string]any{"address": map[string]any{"socket_address": map[string]any{
			"address": "127.0.0.1", "port_value": req.AdminPort,
		}}},
	}
}

// grpcBootstrap is the gRPC xDS bootstrap a proxyless workload reads.
func grpcBootstrap(nodeID string, req bootstrap.Request) map[string]any {
	p := req.Proxyless
	return map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      req.XDSServer,
			"channel_creds":   []any{map[string]any{"type": "tls", "config": map[string]any{"ca_certificate_file": p.ServerCAFile}}},
			"server_features": []any{"xds_v3"},
		}},
		"node": map[string]any{"id": nodeID, "metadata": map[string]any{"mesh": req.Mesh}},
		"certificate_providers": map[string]any{"atoll": map[string]any{
			"plugin_name": "file_watcher",
			"config": map[string]any{
				"certificate_file":    p.CertificateFile,
				"private_key_file":    p.PrivateKeyFile,
				"ca_certificate_file": p.CABundleFile,
				"refresh_interval":    "10s",
			},
		}},
		"server_listener_resource_name_template": "grpc/server?xds.resource.listening_address=%s",
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		refuse(w, http.StatusBadRequest, "malformed request: %v", err)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(bootstrap.Error{Message: fmt.Sprintf(format, args...)})
}

// readAll reads a request body of at most 1 MiB.
func readAll(r *http.Request) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r.Body, 1<<20))
}

// nopBody serves b again as a request body.
func nopBody(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
