package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/atoll-mesh/atoll/api/mesh"
)

// ErrCANotFound: a Manager in load-only mode found no builtin CA for a mesh
// backend (in a multi-zone deployment the global control plane creates it
// and it has not been synced to this zone yet).
var ErrCANotFound = errors.New("mesh CA not found")

// BuiltinCertSecretName is the secret holding the certificate of a builtin
// CA: "<mesh>.ca-builtin-cert-<backend>", as Kuma names it.
func BuiltinCertSecretName(meshName, backend string) string {
	return meshName + ".ca-builtin-cert-" + backend
}

// BuiltinKeySecretName is the secret holding the private key of a builtin
// CA: "<mesh>.ca-builtin-key-<backend>", as Kuma names it.
func BuiltinKeySecretName(meshName, backend string) string {
	return meshName + ".ca-builtin-key-" + backend
}

// WorkloadLifetime returns the workload certificate lifetime a backend asks
// for (dpCert.rotation.expiration), or DefaultWorkloadLifetime.
func WorkloadLifetime(b *mesh.Backend) time.Duration {
	if b != nil && b.DPCert != nil && b.DPCert.Rotation != nil {
		if d := b.DPCert.Rotation.Expiration.Std(); d > 0 {
			return d
		}
	}
	return DefaultWorkloadLifetime
}

// ManagerOptions configures a Manager.
type ManagerOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReadFile reads "file" data sources of provided CAs; nil means
	// os.ReadFile.
	ReadFile func(path string) ([]byte, error)
	// LoadOnly forbids creating builtin CAs: a missing one is ErrCANotFound.
	// Zone control planes of a multi-zone deployment set it, because the
	// global control plane creates CAs and syncs them down.
	LoadOnly bool
}

// Manager gives each mesh backend its CA: it creates builtin CAs on first
// use, loads provided CAs from their data sources, and caches parsed CAs per
// mesh and backend. It is safe for concurrent use, and several Managers (in
// several control-plane instances) may share one SecretStore: they converge
// on one CA per mesh backend.
//
// Each call reads the backing secrets again and reuses the parsed CA only
// when their bytes are unchanged, so a deleted and re-created mesh or a
// replaced provided CA is picked up without any invalidation call.
type Manager struct {
	secrets  SecretStore
	now      func() time.Time
	readFile func(string) ([]byte, error)
	loadOnly bool

	mu    sync.Mutex
	locks map[caKey]*sync.Mutex
	cache map[caKey]*cachedCA
}

type caKey struct{ mesh, backend string }

type cachedCA struct {
	typ     string
	certPEM []byte
	keyPEM  []byte
	ca      *CA
}

// NewManager returns a Manager keeping builtin CAs in secrets.
func NewManager(secrets SecretStore, opts ManagerOptions) *Manager {
	m := &Manager{
		secrets:  secrets,
		now:      opts.Now,
		readFile: opts.ReadFile,
		loadOnly: opts.LoadOnly,
		locks:    map[caKey]*sync.Mutex{},
		cache:    map[caKey]*cachedCA{},
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.readFile == nil {
		m.readFile = os.ReadFile
	}
	return m
}

// EnsureCA returns the CA of one backend of a mesh. For a builtin backend it
// loads the CA from the mesh's secrets, creating it first when absent (with
// conf.caCert.RSAbits and conf.caCert.expiration); concurrent callers, in
// this process or others sharing the store, all get the same CA. For a
// provided backend it resolves conf.cert and conf.key (secret, file, inline
// or inlineString) and validates them with LoadCA. A CA is only ever read
// from and written to the secrets of meshName, and cached under meshName
// and the backend name, so the CA of one mesh never serves another.
func (m *Manager) EnsureCA(ctx context.Context, meshName string, backend *mesh.Backend) (*CA, error) {
	if meshName == "" || backend == nil || backend.Name == "" {
		return nil, errors.New("ensuring CA: mesh and backend name are required")
	}
	ca, err := m.ensure(ctx, meshName, backend)
	if err != nil {
		return nil, fmt.Errorf("CA %q of mesh %q: %w", backend.Name, meshName, err)
	}
	return ca, nil
}

func (m *Manager) ensure(ctx context.Context, meshName string, b *mesh.Backend) (*CA, error) {
	key := caKey{meshName, b.Name}
	lock := m.lockFor(key)
	lock.Lock()
	defer lock.Unlock()

	var certPEM, keyPEM []byte
	var err error
	switch b.Type {
	case mesh.BackendBuiltin:
		certPEM, keyPEM, err = m.builtinPEM(ctx, meshName, b)
	case mesh.BackendProvided:
		certPEM, keyPEM, err = m.providedPEM(ctx, meshName, b)
	default:
		err = fmt.Errorf("unknown backend type %q (want %q or %q)", b.Type, mesh.BackendBuiltin, mesh.BackendProvided)
	}
	if err != nil {
		return nil, err
	}
	now := m.now()
	if c := m.cached(key); c != nil && c.typ == b.Type && bytes.Equal(c.certPEM, certPEM) && bytes.Equal(c.keyPEM, keyPEM) &&
		now.Before(c.ca.cert.NotAfter) {
		return c.ca, nil
	}
	ca, err := LoadCA(meshName, certPEM, keyPEM, now)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.cache[key] = &cachedCA{typ: b.Type, certPEM: certPEM, keyPEM: keyPEM, ca: ca}
	m.mu.Unlock()
	return ca, nil
}

// builtinPEM loads the builtin CA's secrets, creating what is missing. The
// key is settled first and the certificate is always made from the stored
// key: whichever writer wins each Create, the pair matches, and a crash
// between the two writes is repaired by the next call.
func (m *Manager) builtinPEM(ctx context.Context, meshName string, b *mesh.Backend) (certPEM, keyPEM []byte, err error) {
	bits, lifetime := 0, time.Duration(0)
	if b.Conf != nil && b.Conf.CACert != nil {
		bits = int(b.Conf.CACert.RSAbits)
		if lifetime, err = b.Conf.CACert.Expiration.Parse(); err != nil {
			return nil, nil, fmt.Errorf("conf.caCert.expiration: %w", err)
		}
	}
	if bits == 0 {
		bits = DefaultCARSABits
	}
	keyPEM, err = m.getOrCreate(ctx, meshName, BuiltinKeySecretName(meshName, b.Name), func() ([]byte, error) {
		k, err := generateRSA(bits)
		if err != nil {
			return nil, err
		}
		return EncodeKeyPEM(k)
	})
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = m.getOrCreate(ctx, meshName, BuiltinCertSecretName(meshName, b.Name), func() ([]byte, error) {
		k, err := ParseKeyPEM(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("reading stored CA key: %w", err)
		}
		return SelfSignCA(meshName, k, lifetime, m.now())
	})
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// getOrCreate returns a secret, creating it with gen when absent. When
// another writer creates it first, its value wins and is returned.
func (m *Manager) getOrCreate(ctx context.Context, meshName, name string, gen func() ([]byte, error)) ([]byte, error) {
	data, err := m.secrets.Get(ctx, meshName, name)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, ErrSecretNotFound) {
		return nil, fmt.Errorf("reading secret %q: %w", name, err)
	}
	if m.loadOnly {
		return nil, fmt.Errorf("%w: secret %q does not exist (builtin CAs are created by the global control plane)", ErrCANotFound, name)
	}
	data, err = gen()
	if err != nil {
		return nil, fmt.Errorf("generating secret %q: %w", name, err)
	}
	err = m.secrets.Create(ctx, meshName, name, data)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, ErrSecretExists) {
		return nil, fmt.Errorf("creating secret %q: %w", name, err)
	}
	data, err = m.secrets.Get(ctx, meshName, name)
	if err != nil {
		return nil, fmt.Errorf("reading secret %q created concurrently: %w", name, err)
	}
	return data, nil
}

func (m *Manager) providedPEM(ctx context.Context, meshName string, b *mesh.Backend) (certPEM, keyPEM []byte, err error) {
	if b.Conf == nil {
		return nil, nil, fmt.Errorf("%w: conf with cert and key is required for a provided backend", ErrInvalidCA)
	}
	if certPEM, err = m.resolve(ctx, meshName, b.Conf.Cert, "conf.cert"); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = m.resolve(ctx, meshName, b.Conf.Key, "conf.key"); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// resolve reads a data source. Missing or empty data is ErrInvalidCA: the
// mesh points at something that is not there.
func (m *Manager) resolve(ctx context.Context, meshName string, ds *mesh.DataSource, field string) ([]byte, error) {
	var (
		data []byte
		err  error
	)
	switch {
	case ds == nil:
		return nil, fmt.Errorf("%w: %s is not set", ErrInvalidCA, field)
	case ds.Secret != "":
		data, err = m.secrets.Get(ctx, meshName, ds.Secret)
		if errors.Is(err, ErrSecretNotFound) {
			return nil, fmt.Errorf("%w: %s: secret %q not found in mesh %q", ErrInvalidCA, field, ds.Secret, meshName)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: reading secret %q: %w", field, ds.Secret, err)
		}
	case ds.File != "":
		data, err = m.readFile(ds.File)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: reading file: %w", ErrInvalidCA, field, err)
		}
	case len(ds.Inline) > 0:
		data = ds.Inline
	case ds.InlineString != "":
		data = []byte(ds.InlineString)
	default:
		return nil, fmt.Errorf("%w: %s: one of secret, file, inline or inlineString must be set", ErrInvalidCA, field)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrInvalidCA, field)
	}
	return data, nil
}

func (m *Manager) lockFor(k caKey) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.locks[k]
	if !ok {
		l = &sync.Mutex{}
		m.locks[k] = l
	}
	return l
}

func (m *Manager) cached(k caKey) *cachedCA {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cache[k]
}

// IssueWorkloadCert issues a workload certificate from the CA of a mesh
// backend (see EnsureCA). When req.Lifetime is 0 the backend's
// dpCert.rotation.expiration applies.
func (m *Manager) IssueWorkloadCert(ctx context.Context, meshName string, backend *mesh.Backend, req WorkloadRequest) (*WorkloadCert, error) {
	ca, err := m.EnsureCA(ctx, meshName, backend)
	if err != nil {
		return nil, err
	}
	if req.Lifetime == 0 {
		req.Lifetime = WorkloadLifetime(backend)
	}
	return ca.IssueWorkloadCert(req, m.now())
}

// TrustBundle returns the concatenated CA certificates of every backend of
// a mesh (ensuring each as EnsureCA does), duplicates removed. Workloads
// trust the whole bundle, so switching enabledBackend does not break
// connections between proxies that still hold certificates of the old CA.
func (m *Manager) TrustBundle(ctx context.Context, meshName string, backends []mesh.Backend) ([]byte, error) {
	var out bytes.Buffer
	for i := range backends {
		ca, err := m.EnsureCA(ctx, meshName, &backends[i])
		if err != nil {
			return nil, err
		}
		if p := ca.CertPEM(); !bytes.Contains(out.Bytes(), bytes.TrimSpace(p)) {
			out.Write(bytes.TrimSpace(p))
			out.WriteByte('\n')
		}
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("mesh %q has no mTLS backend", meshName)
	}
	return out.Bytes(), nil
}

// Forget drops the cached CAs of a mesh, for example when it is deleted.
// It is an optimisation only: a changed secret is noticed anyway.
func (m *Manager) Forget(meshName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.cache {
		if k.mesh == meshName {
			delete(m.cache, k)
		}
	}
}
