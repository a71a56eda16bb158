// Package identity keeps the workload certificates of the proxies: it issues
// one per dataplane from its mesh's active CA backend (with a SPIFFE id per
// service of the dataplane), reuses it until shortly before its RenewAt,
// and tells the reconciler exactly which proxies need a new one and when,
// with a single scheduler (a heap ordered by renewal time), never a timer per
// proxy. A certificate is issued again when the mesh's CA or enabled backend
// changes or the dataplane's services or tags do, and forgotten with its
// dataplane or mesh.
//
// Envoy proxies receive their certificate over SDS (pkg/xds/sync asks Get);
// proxyless workloads fetch it through the data-plane server's certificate
// endpoint (WorkloadCertificate). Both see the same certificate.
package identity

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// DefaultLead is how long before a certificate's RenewAt its proxy is
// regenerated with a new one (at most a tenth of the lifetime).
const DefaultLead = time.Minute

// ErrMTLSOff: the mesh has no enabled mTLS backend, so there is no
// workload certificate to issue.
var ErrMTLSOff = errors.New("mTLS is not enabled in the mesh")

// Issuer is the part of pki.Manager the cache uses.
type Issuer interface {
	// EnsureCA returns the CA of a mesh backend.
	EnsureCA(ctx context.Context, meshName string, backend *mesh.Backend) (*pki.CA, error)
	// IssueWorkloadCert issues a certificate from a mesh backend's CA.
	IssueWorkloadCert(ctx context.Context, meshName string, backend *mesh.Backend, req pki.WorkloadRequest) (*pki.WorkloadCert, error)
	// TrustBundle returns the CA certificates of every backend of a mesh.
	TrustBundle(ctx context.Context, meshName string, backends []mesh.Backend) ([]byte, error)
}

var _ Issuer = (*pki.Manager)(nil)

// Snapshots returns the current snapshot of a mesh (snapshot.Tracker).
type Snapshots interface {
	// Snapshot returns the mesh's snapshot, or nil when it is unknown.
	Snapshot(mesh string) *snapshot.Snapshot
}

// Material is one proxy's workload identity.
type Material struct {
	// CertPEM is the workload certificate chain, leaf first.
	CertPEM []byte
	// KeyPEM is its private key.
	KeyPEM []byte
	// TrustBundle holds the CA certificates of every backend of the mesh.
	TrustBundle []byte
	// NotBefore is when the certificate became valid (its issuance, less
	// the backdating that absorbs clock skew).
	NotBefore time.Time
	// NotAfter is when the certificate expires.
	NotAfter time.Time
	// RenewAt is when it should be replaced (four fifths of its lifetime).
	RenewAt time.Time
	// Backend names the CA backend that issued it.
	Backend string
}

// Options tune a Cache.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Lead is how long before RenewAt a proxy is regenerated; zero means
	// DefaultLead (never more than a tenth of the lifetime).
	Lead time.Duration
	// Registerer receives the cache's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Cache issues and keeps workload certificates. It is safe for concurrent
// use; Start runs its renewal scheduler.
type Cache struct {
	issuer Issuer
	snaps  Snapshots
	log    *slog.Logger
	now    func() time.Time
	lead   time.Duration

	mu      sync.Mutex
	cas     map[string]*caEntry
	entries map[resource.Key]*entry
	locks   map[resource.Key]*sync.Mutex
	queue   queue
	due     map[resource.Key]struct{}

	wake    chan struct{}
	dueC    chan struct{}
	issued  prometheus.Counter
	renewed prometheus.Counter
	failed  prometheus.Counter
}

// caRefresh bounds how long a mesh's CA and trust bundle are reused without
// asking the issuer again while the snapshot's CA hash is unchanged (a
// provided CA read from a file can change without the store noticing).
const caRefresh = time.Minute

// caEntry is a mesh's active CA and trust bundle, valid while the
// snapshot's CA hash is caHash.
type caEntry struct {
	caHash  snapshot.Hash
	backend string
	ca      *pki.CA
	bundle  []byte
	fetched time.Time
}

// entry is one dataplane's certificate.
type entry struct {
	key      resource.Key
	backend  string
	caRaw    []byte
	request  string
	material Material
	// refreshAt is RenewAt minus the lead: from then on Get issues anew.
	refreshAt time.Time
	// notify is set when the proxy receives the certificate over xDS, so
	// the reconciler must be told to regenerate it.
	notify bool
	index  int // in queue; -1 when not queued
}

// New returns a Cache issuing through issuer, reading meshes and
// dataplanes from snaps.
func New(issuer Issuer, snaps Snapshots, log *slog.Logger, opts Options) *Cache {
	c := &Cache{
		issuer: issuer, snaps: snaps, log: log, now: opts.Now, lead: opts.Lead,
		cas:     map[string]*caEntry{},
		entries: map[resource.Key]*entry{},
		locks:   map[resource.Key]*sync.Mutex{},
		due:     map[resource.Key]struct{}{},
		wake:    make(chan struct{}, 1),
		dueC:    make(chan struct{}, 1),
		issued:  prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_identity_certificates_issued_total", Help: "Workload certificates issued."}),
		renewed: prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_identity_renewals_total", Help: "Proxies scheduled for regeneration because their certificate is due for renewal."}),
		failed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_identity_errors_total", Help: "Workload certificates that could not be issued."}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.lead <= 0 {
		c.lead = DefaultLead
	}
	if opts.Registerer != nil {
		for _, m := range []prometheus.Collector{c.issued, c.renewed, c.failed} {
			if err := opts.Registerer.Register(m); err != nil {
				log.Warn("registering identity metric", "error", err)
			}
		}
	}
	return c
}

// Get returns the workload certificate of dp, a dataplane of snap,
// issuing one when there is none, when it is due for renewal, or when the
// mesh's CA, enabled backend or the dataplane's services or tags changed.
// The proxy is then scheduled: shortly before RenewAt its key is reported by
// TakeDue. ErrMTLSOff when the mesh has mTLS off.
func (c *Cache) Get(ctx context.Context, snap *snapshot.Snapshot, dp *snapshot.Dataplane) (*Material, error) {
	return c.get(ctx, snap, dp, true)
}

func (c *Cache) get(ctx context.Context, snap *snapshot.Snapshot, dp *snapshot.Dataplane, notify bool) (*Material, error) {
	backend := snap.MTLSBackend()
	if backend == nil {
		return nil, fmt.Errorf("%w: mesh %q", ErrMTLSOff, snap.Mesh())
	}
	key := dp.Key()
	ca, bundle, err := c.meshCA(ctx, snap, backend)
	if err != nil {
		c.failed.Inc()
		return nil, fmt.Errorf("workload certificate of %s: %w", key.String(), err)
	}
	req := pki.WorkloadRequestFor(dp.Spec)
	reqKey := requestKey(req, pki.WorkloadLifetime(backend))

	lock := c.lockFor(key)
	lock.Lock()
	defer lock.Unlock()

	c.mu.Lock()
	e := c.entries[key]
	if e != nil && e.backend == backend.Name && bytes.Equal(e.caRaw, ca.Certificate().Raw) && e.request == reqKey && c.now().Before(e.refreshAt) {
		e.material.TrustBundle = bundle
		if notify && !e.notify {
			e.notify = true
			c.schedule(e)
		}
		m := e.material
		c.mu.Unlock()
		return &m, nil
	}
	c.mu.Unlock()

	cert, err := c.issuer.IssueWorkloadCert(ctx, snap.Mesh(), backend, req)
	if err != nil {
		c.failed.Inc()
		return nil, fmt.Errorf("workload certificate of %s: %w", key.String(), err)
	}
	c.issued.Inc()
	renewAt := cert.RenewAt()
	lead := min(c.lead, cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore)/10)
	ne := &entry{
		key: key, backend: backend.Name, caRaw: ca.Certificate().Raw, request: reqKey,
		material: Material{CertPEM: cert.CertPEM, KeyPEM: cert.KeyPEM, TrustBundle: bundle,
			NotBefore: cert.Leaf.NotBefore, NotAfter: cert.Leaf.NotAfter, RenewAt: renewAt, Backend: backend.Name},
		refreshAt: renewAt.Add(-lead),
		notify:    notify || (e != nil && e.notify),
		index:     -1,
	}
	c.mu.Lock()
	if e != nil && e.index >= 0 {
		heap.Remove(&c.queue, e.index)
	}
	c.entries[key] = ne
	delete(c.due, key)
	if ne.notify {
		c.schedule(ne)
	}
	m := ne.material
	c.mu.Unlock()
	return &m, nil
}

// meshCA returns the mesh's active CA and trust bundle, asking the issuer
// only when the snapshot's CA hash changed or caRefresh passed.
func (c *Cache) meshCA(ctx context.Context, snap *snapshot.Snapshot, backend *mesh.Backend) (*pki.CA, []byte, error) {
	c.mu.Lock()
	e := c.cas[snap.Mesh()]
	c.mu.Unlock()
	if e != nil && e.caHash == snap.CAHash() && e.backend == backend.Name && c.now().Sub(e.fetched) < caRefresh {
		return e.ca, e.bundle, nil
	}
	ca, err := c.issuer.EnsureCA(ctx, snap.Mesh(), backend)
	if err != nil {
		return nil, nil, err
	}
	bundle, err := c.issuer.TrustBundle(ctx, snap.Mesh(), snap.MeshSpec().MTLS.Backends)
	if err != nil {
		return nil, nil, fmt.Errorf("trust bundle of mesh %q: %w", snap.Mesh(), err)
	}
	c.mu.Lock()
	c.cas[snap.Mesh()] = &caEntry{caHash: snap.CAHash(), backend: backend.Name, ca: ca, bundle: bundle, fetched: c.now()}
	c.mu.Unlock()
	return ca, bundle, nil
}

// Peek returns the certificate held for key without issuing one.
func (c *Cache) Peek(key resource.Key) (*Material, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	m := e.material
	return &m, true
}

// WorkloadCertificate returns the workload certificate of a dataplane for
// the data-plane server's certificate endpoint (proxyless workloads): the
// same certificate Get returns. Errors match store.ErrNotFound when the
// mesh or dataplane does not exist, and ErrMTLSOff when mTLS is off.
func (c *Cache) WorkloadCertificate(ctx context.Context, key resource.Key) (bootstrap.CertificateResponse, error) {
	snap := c.snaps.Snapshot(key.Mesh)
	if snap == nil {
		return bootstrap.CertificateResponse{}, fmt.Errorf("workload certificate: %w", store.NotFound(resource.MeshType, resource.Key{Name: key.Mesh}))
	}
	dp := snap.Dataplane(key.Name)
	if dp == nil {
		return bootstrap.CertificateResponse{}, fmt.Errorf("workload certificate: %w", store.NotFound(resource.DataplaneType, key))
	}
	m, err := c.get(ctx, snap, dp, false)
	if err != nil {
		return bootstrap.CertificateResponse{}, err
	}
	return bootstrap.CertificateResponse{
		CertificateChain: string(m.CertPEM),
		PrivateKey:       string(m.KeyPEM),
		CABundle:         string(m.TrustBundle),
		NotAfter:         m.NotAfter,
		RenewAt:          m.RenewAt,
	}, nil
}

// Forget drops the certificate of one dataplane (deleted).
func (c *Cache) Forget(key resource.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(key)
}

// ForgetMesh drops the certificates of every dataplane of a mesh (deleted).
func (c *Cache) ForgetMesh(meshName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cas, meshName)
	for key := range c.entries {
		if key.Mesh == meshName {
			c.drop(key)
		}
	}
}

// drop removes one entry; the caller holds mu.
func (c *Cache) drop(key resource.Key) {
	if e, ok := c.entries[key]; ok {
		if e.index >= 0 {
			heap.Remove(&c.queue, e.index)
		}
		delete(c.entries, key)
	}
	delete(c.locks, key)
	delete(c.due, key)
}

// Len returns how many certificates the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Cache) lockFor(key resource.Key) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.locks[key]
	if !ok {
		l = &sync.Mutex{}
		c.locks[key] = l
	}
	return l
}

// requestKey identifies what a certificate certifies.
func requestKey(req pki.WorkloadRequest, lifetime time.Duration) string {
	x := snapshot.NewHasher()
	x.Uint64(uint64(len(req.Services)))
	for _, s := range req.Services {
		x.String(s)
	}
	for _, k := range slices.Sorted(maps.Keys(req.Tags)) {
		x.String(k)
		for _, v := range req.Tags[k] {
			x.String(v)
		}
	}
	x.Uint64(uint64(lifetime))
	return x.Sum().String()
}
