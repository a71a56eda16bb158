package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki/secretstore"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	xdsboot "github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
)

// env is a data-plane server on loopback over real parts: the manager on
// the memory store, dptoken with keys kept as Secrets in that store, the
// xDS cache. Meshes "default" and "other" exist.
type env struct {
	t       testing.TB
	ctx     context.Context
	mgr     *manager.Manager
	secrets *secretstore.Store
	tokens  *dptoken.Manager
	cache   *cache.Cache
	tracker *fakeTracker
	obs     *fakeObserver
	metrics *prometheus.Registry
	srv     *server.Server
	addr    string
	caFile  string
	caPool  *x509.CertPool
	stop    func()
}

type envOptions struct {
	mutate    func(*server.Options)
	onConnect func(key resource.Key, f ir.Flavour)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(t, err)
	st := memory.New(reg)
	mgr := manager.New(reg, st, slog.New(slog.DiscardHandler))
	for _, m := range []string{"default", "other"} {
		_, err := mgr.Apply(ctx, &resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: m}, Spec: &mesh.Spec{}}, manager.ApplyOptions{})
		require.NoError(t, err)
	}
	e := &env{
		t: t, ctx: ctx, mgr: mgr,
		secrets: secretstore.New(st),
		tracker: &fakeTracker{onConnect: o.onConnect},
		obs:     &fakeObserver{},
		metrics: prometheus.NewRegistry(),
	}
	e.tokens = dptoken.New(e.secrets, dptoken.Options{})
	e.cache, err = cache.New(cache.Options{Metrics: e.metrics})
	require.NoError(t, err)
	opts := server.Options{
		Cache: e.cache, Resources: mgr, Tokens: e.tokens, Tracker: e.tracker, Observer: e.obs,
		InstanceID: "cp-1", Metrics: e.metrics,
		InsightFlushInterval: 100 * time.Millisecond,
		DeregistrationGrace:  300 * time.Millisecond,
		Log:                  slog.New(slog.DiscardHandler),
	}
	if o.mutate != nil {
		o.mutate(&opts)
	}
	e.srv, err = server.New(opts)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(e.stop)

	e.caFile = filepath.Join(t.TempDir(), "cp-ca.pem")
	require.NoError(t, os.WriteFile(e.caFile, e.srv.CACertPEM(), 0o600))
	e.caPool = x509.NewCertPool()
	require.True(t, e.caPool.AppendCertsFromPEM(e.srv.CACertPEM()))
	return e
}

// dataplane returns a Dataplane spec serving service on port.
func dataplaneSpec(service string, port uint32) *dataplane.Spec {
	return &dataplane.Spec{Networking: dataplane.Networking{
		Address: "127.0.0.1",
		Inbound: []dataplane.Inbound{{Port: port, Tags: map[string]string{dataplane.ServiceTag: service, dataplane.ProtocolTag: "grpc"}}},
	}}
}

// createDataplane stores a dataplane as a user would (not registered by the agent).
func (e *env) createDataplane(key resource.Key, spec *dataplane.Spec) {
	e.t.Helper()
	_, err := e.mgr.Apply(e.ctx, &resource.Resource{Type: resource.DataplaneType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name}, Spec: spec}, manager.ApplyOptions{})
	require.NoError(e.t, err)
}

// dataplaneJSON is spec as the universal JSON atoll-dp sends.
func dataplaneJSON(t testing.TB, key resource.Key, spec *dataplane.Spec) string {
	t.Helper()
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["type"], m["mesh"], m["name"] = "Dataplane", key.Mesh, key.Name
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return string(out)
}

func (e *env) token(key resource.Key) string {
	e.t.Helper()
	tok, err := e.tokens.Issue(e.ctx, dptoken.IssueRequest{Mesh: key.Mesh, Name: key.Name})
	require.NoError(e.t, err)
	return tok
}

// httpClient is a plain Go HTTPS client trusting the server: it offers h2
// and http/1.1, as atoll-dp's client would.
func (e *env) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.caPool},
		ForceAttemptHTTP2: true,
	}}
}

// post sends a JSON request and decodes the answer into out (on 200) or
// returns the error message.
func (e *env) post(path, token string, body, out any) (int, string) {
	e.t.Helper()
	b, err := json.Marshal(body)
	require.NoError(e.t, err)
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPost, "https://"+e.addr+path, bytes.NewReader(b))
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.httpClient().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	if resp.StatusCode != http.StatusOK {
		var apiErr dpapi.Error
		require.NoError(e.t, json.Unmarshal(data, &apiErr), "error bodies are JSON: %s", data)
		return resp.StatusCode, apiErr.Message
	}
	if out != nil {
		require.NoError(e.t, json.Unmarshal(data, out))
	}
	return resp.StatusCode, ""
}

// grpcConn is a TLS gRPC connection to the server for raw ADS clients.
func (e *env) grpcConn() *grpc.ClientConn {
	e.t.Helper()
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: e.caPool})))
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// withToken adds the authorization metadata to a stream context.
func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// envoyNode is the node an Envoy started from our bootstrap presents.
func envoyNode(key resource.Key) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{
		xdsboot.MetadataProxyType:    xdsboot.ProxyEnvoy,
		xdsboot.MetadataAgentVersion: "0.1.0",
		xdsboot.MetadataEnvoyVersion: "1.36.2",
	})
	return &corev3.Node{Id: key.String(), Metadata: md}
}

// insight reads the stored insight of key (nil when absent).
func (e *env) insight(key resource.Key) *insight.DataplaneInsight {
	e.t.Helper()
	r, err := e.mgr.Get(context.Background(), resource.DataplaneInsightType, key)
	if err != nil {
		return nil
	}
	return r.Spec.(*insight.DataplaneInsight)
}

func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.metrics.Gather()
	require.NoError(e.t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// fakeTracker records connection changes in order.
type fakeTracker struct {
	mu        sync.Mutex
	events    []string
	onConnect func(resource.Key, ir.Flavour)
}

func (f *fakeTracker) ProxyConnected(key resource.Key, fl ir.Flavour) {
	f.mu.Lock()
	f.events = append(f.events, "connected "+key.String()+" "+string(fl))
	f.mu.Unlock()
	if f.onConnect != nil {
		f.onConnect(key, fl)
	}
}

func (f *fakeTracker) ProxyDisconnected(key resource.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "disconnected "+key.String())
}

func (f *fakeTracker) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// fakeObserver records ACKs and NACKs.
type fakeObserver struct {
	mu     sync.Mutex
	acks   []string
	nacks  []string
	onNACK chan string
}

func (f *fakeObserver) Acknowledged(key resource.Key, typeURL, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, key.String()+" "+typeURL+" "+version)
}

func (f *fakeObserver) Rejected(key resource.Key, typeURL, version, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nacks = append(f.nacks, key.String()+" "+typeURL+" "+version+": "+message)
}

func (f *fakeObserver) NACKs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.nacks...)
}

func (f *fakeObserver) ACKs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.acks...)
}
