package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/policies/all"
)

// clock is a settable clock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func (c *clock) set(t time.Time)         { c.offset.Store(int64(time.Until(t))) }
func (s *snaps) Snapshot(mesh string) *snapshot.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[mesh]
}

// snaps is a fixed set of snapshots.
type snaps struct {
	mu stdsync.Mutex
	m  map[string]*snapshot.Snapshot
}

func (s *snaps) set(snap *snapshot.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[snap.Mesh()] = snap
}

func snapshotOf(t *testing.T, docs string) *snapshot.Snapshot {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	var mesh *resource.Resource
	var rest []*resource.Resource
	for _, d := range resource.SplitYAML([]byte(docs)) {
		res, err := reg.DecodeYAML(d.Data)
		require.NoError(t, err)
		if res.Type == resource.MeshType {
			mesh = res
		} else {
			rest = append(rest, res)
		}
	}
	snap, err := snapshot.FromResources(mesh, rest...)
	require.NoError(t, err)
	return snap
}

const meshDocs = `type: Mesh
name: demo
mtls:
  enabledBackend: %BACKEND%
  backends:
    - name: ca-1
      type: builtin
    - name: ca-2
      type: builtin
---
type: Dataplane
mesh: demo
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags: {kuma.io/service: web, version: v1}
---
type: Dataplane
mesh: demo
name: api-1
networking:
  address: 10.0.0.2
  inbound:
    - port: 8080
      tags: {kuma.io/service: api}
    - port: 9090
      tags: {kuma.io/service: api-admin}
`

type fixture struct {
	t     *testing.T
	clk   *clock
	snaps *snaps
	c     *Cache
}

func newFixture(t *testing.T) *fixture {
	clk := &clock{}
	f := &fixture{t: t, clk: clk, snaps: &snaps{m: map[string]*snapshot.Snapshot{}}}
	f.snaps.set(snapshotOf(t, strings.ReplaceAll(meshDocs, "%BACKEND%", "ca-1")))
	issuer := pki.NewManager(pki.NewMemorySecretStore(), pki.ManagerOptions{Now: clk.now})
	f.c = New(issuer, f.snaps, slog.New(slog.DiscardHandler), Options{Now: clk.now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.c.Start(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	return f
}

func (f *fixture) get(name string) *Material {
	f.t.Helper()
	snap := f.snaps.Snapshot("demo")
	m, err := f.c.Get(context.Background(), snap, snap.Dataplane(name))
	require.NoError(f.t, err)
	return m
}

func leaf(t *testing.T, m *Material) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(m.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return cert
}

func TestCertificateCarriesOneSPIFFEIDPerService(t *testing.T) {
	f := newFixture(t)
	m := f.get("api-1")
	cert := leaf(t, m)
	require.Equal(t, "spiffe://demo/api", cert.URIs[0].String())
	require.Equal(t, "spiffe://demo/api-admin", cert.URIs[1].String())
	require.Equal(t, "ca-1", m.Backend)
	require.Contains(t, string(m.TrustBundle), "BEGIN CERTIFICATE")
	require.Equal(t, pki.RenewAt(cert), m.RenewAt)
	require.Equal(t, cert.NotBefore, m.NotBefore, "insights show when the certificate was issued without parsing it")
	require.Equal(t, cert.NotAfter, m.NotAfter)
	require.Equal(t, 2, strings.Count(string(m.TrustBundle), "BEGIN CERTIFICATE"), "every backend's CA is trusted, so switching backends does not break peers")
}

func TestCertificatesAreReusedUntilShortlyBeforeRenewAt(t *testing.T) {
	f := newFixture(t)
	first := f.get("web-1")
	require.Equal(t, first.CertPEM, f.get("web-1").CertPEM, "reused")
	f.clk.set(first.RenewAt.Add(-2 * DefaultLead))
	require.Equal(t, first.CertPEM, f.get("web-1").CertPEM, "still reused before the lead")
	f.clk.set(first.RenewAt.Add(-DefaultLead / 2))
	require.NotEqual(t, first.CertPEM, f.get("web-1").CertPEM, "issued anew shortly before RenewAt")
}

func TestSchedulerReportsExactlyTheDueProxies(t *testing.T) {
	f := newFixture(t)
	web := f.get("web-1")
	f.clk.advance(time.Hour)
	f.get("api-1")
	// Cross web's refresh time only.
	f.clk.set(web.RenewAt.Add(-DefaultLead / 2))
	f.c.poke()
	select {
	case <-f.c.Due():
	case <-time.After(5 * time.Second):
		t.Fatal("no proxy reported due")
	}
	require.Equal(t, []resource.Key{{Mesh: "demo", Name: "web-1"}}, f.c.TakeDue())
	require.Empty(t, f.c.TakeDue())
	require.NotEqual(t, web.CertPEM, f.get("web-1").CertPEM, "regenerating the proxy renews its certificate")
}

func TestSchedulerUsesOneTimerNotOnePerProxy(t *testing.T) {
	f := newFixture(t)
	f.get("web-1")
	f.get("api-1")
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	require.Len(t, f.c.queue, 2, "both wait in one queue")
	require.True(t, !f.c.queue[0].refreshAt.After(f.c.queue[1].refreshAt), "ordered by refresh time")
}

func TestBackendSwitchRotatesCertificates(t *testing.T) {
	f := newFixture(t)
	before := f.get("web-1")
	f.snaps.set(snapshotOf(t, strings.ReplaceAll(meshDocs, "%BACKEND%", "ca-2")))
	after := f.get("web-1")
	require.Equal(t, "ca-2", after.Backend)
	require.NotEqual(t, before.CertPEM, after.CertPEM)
	require.NotEqual(t, leaf(t, before).Issuer.String()+string(leaf(t, before).AuthorityKeyId), leaf(t, after).Issuer.String()+string(leaf(t, after).AuthorityKeyId))
}

func TestChangedServicesReissue(t *testing.T) {
	f := newFixture(t)
	before := f.get("web-1")
	f.snaps.set(snapshotOf(t, strings.ReplaceAll(strings.ReplaceAll(meshDocs, "%BACKEND%", "ca-1"), "version: v1", "version: v2")))
	require.NotEqual(t, before.CertPEM, f.get("web-1").CertPEM, "the tag URIs changed")
}

func TestForgetMeshDropsItsCertificates(t *testing.T) {
	f := newFixture(t)
	f.get("web-1")
	f.get("api-1")
	require.Equal(t, 2, f.c.Len())
	f.c.Forget(resource.Key{Mesh: "demo", Name: "api-1"})
	require.Equal(t, 1, f.c.Len())
	f.c.ForgetMesh("demo")
	require.Zero(t, f.c.Len())
	f.c.mu.Lock()
	require.Empty(t, f.c.queue)
	f.c.mu.Unlock()
}

func TestWorkloadCertificateForProxylessAgents(t *testing.T) {
	f := newFixture(t)
	resp, err := f.c.WorkloadCertificate(t.Context(), resource.Key{Mesh: "demo", Name: "web-1"})
	require.NoError(t, err)
	require.Contains(t, resp.CertificateChain, "BEGIN CERTIFICATE")
	require.Contains(t, resp.PrivateKey, "PRIVATE KEY")
	require.Contains(t, resp.CABundle, "BEGIN CERTIFICATE")
	require.True(t, resp.RenewAt.Before(resp.NotAfter))
	require.Equal(t, resp.CertificateChain, string(f.get("web-1").CertPEM), "xDS and the endpoint agree")

	_, err = f.c.WorkloadCertificate(t.Context(), resource.Key{Mesh: "demo", Name: "nope"})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = f.c.WorkloadCertificate(t.Context(), resource.Key{Mesh: "nope", Name: "web-1"})
	require.ErrorIs(t, err, store.ErrNotFound)

	f.snaps.set(snapshotOf(t, "type: Mesh\nname: plain\n---\ntype: Dataplane\nmesh: plain\nname: a\nnetworking:\n  address: 10.0.0.1\n  inbound:\n    - port: 80\n      tags: {kuma.io/service: a}\n"))
	_, err = f.c.WorkloadCertificate(t.Context(), resource.Key{Mesh: "plain", Name: "a"})
	require.ErrorIs(t, err, ErrMTLSOff)
}
