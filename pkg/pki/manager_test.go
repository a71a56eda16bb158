package pki_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

func builtinBackend(name string) *mesh.Backend {
	return &mesh.Backend{Name: name, Type: mesh.BackendBuiltin}
}

func newManager(s pki.SecretStore) *pki.Manager {
	now := t0
	return pki.NewManager(s, pki.ManagerOptions{Now: clockAt(&now)})
}

func TestEnsureBuiltinCA(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	m := newManager(store)

	ca, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.Equal(t, "demo", ca.Mesh())
	require.Equal(t, "spiffe://demo", ca.Certificate().URIs[0].String())

	// Stored under Kuma's names, in the mesh's own scope.
	require.ElementsMatch(t, []string{"demo.ca-builtin-cert-ca-1", "demo.ca-builtin-key-ca-1"}, store.Names("demo"))
	certPEM, err := store.Get(ctx, "demo", "demo.ca-builtin-cert-ca-1")
	require.NoError(t, err)
	require.Equal(t, ca.CertPEM(), certPEM)

	// Idempotent: the same CA, from the cache, and from a second manager.
	again, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.Same(t, ca, again)
	other, err := newManager(store).EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.Equal(t, ca.Certificate().Raw, other.Certificate().Raw)
}

func TestEnsureBuiltinCAConf(t *testing.T) {
	b := builtinBackend("ca-1")
	b.Conf = &mesh.BackendConf{CACert: &mesh.CACert{RSAbits: 3072, Expiration: duration.Duration("1y")}}
	ca, err := newManager(pki.NewMemorySecretStore()).EnsureCA(context.Background(), "demo", b)
	require.NoError(t, err)
	require.Equal(t, t0.Add(365*24*time.Hour), ca.Certificate().NotAfter)
	require.Equal(t, 3072, ca.Certificate().PublicKey.(interface{ Size() int }).Size()*8)
}

// racyStore makes the creation race certain: Create waits until `gets`
// reads have happened (or a timeout), so every manager sees the secret
// missing before anyone writes it.
type racyStore struct {
	pki.SecretStore
	gets     atomic.Int32
	creates  atomic.Int32
	want     int32
	released chan struct{}
	once     sync.Once
}

func newRacyStore(want int32) *racyStore {
	return &racyStore{SecretStore: pki.NewMemorySecretStore(), want: want, released: make(chan struct{})}
}

func (s *racyStore) Get(ctx context.Context, mesh, name string) ([]byte, error) {
	if s.gets.Add(1) >= s.want {
		s.once.Do(func() { close(s.released) })
	}
	runtime.Gosched()
	return s.SecretStore.Get(ctx, mesh, name)
}

func (s *racyStore) Create(ctx context.Context, mesh, name string, data []byte) error {
	s.creates.Add(1)
	select {
	case <-s.released:
	case <-time.After(5 * time.Second):
	}
	return s.SecretStore.Create(ctx, mesh, name, data)
}

// Many goroutines across several managers (several control-plane instances
// sharing a store) race to create the same CA: all end up with one CA whose
// key matches its certificate.
func TestEnsureCAConcurrent(t *testing.T) {
	ctx := context.Background()
	managers := make([]*pki.Manager, 3)
	store := newRacyStore(int32(len(managers)))
	for i := range managers {
		managers[i] = newManager(store)
	}

	const perManager = 8
	results := make(chan *pki.CA, len(managers)*perManager)
	errs := make(chan error, len(managers)*perManager)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range managers {
		for range perManager {
			wg.Go(func() {
				<-start
				ca, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
				if err != nil {
					errs <- err
					return
				}
				results <- ca
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var first []byte
	n := 0
	for ca := range results {
		n++
		if first == nil {
			first = ca.Certificate().Raw
		}
		require.Equal(t, first, ca.Certificate().Raw, "every caller gets the same CA")
	}
	require.Equal(t, len(managers)*perManager, n)
	require.GreaterOrEqual(t, store.creates.Load(), int32(len(managers)), "the race was real: every manager tried to create the key")

	certPEM, err := store.Get(ctx, "demo", pki.BuiltinCertSecretName("demo", "ca-1"))
	require.NoError(t, err)
	keyPEM, err := store.Get(ctx, "demo", pki.BuiltinKeySecretName("demo", "ca-1"))
	require.NoError(t, err)
	_, err = pki.LoadCA("demo", certPEM, keyPEM, t0)
	require.NoError(t, err, "the stored key matches the stored certificate")
}

// A crash between writing the key and the certificate is repaired: the
// certificate is made from the stored key.
func TestEnsureCARepairsHalfWrittenCA(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	key, err := pki.GenerateKey(pki.KeyECDSAP256)
	require.NoError(t, err)
	require.NoError(t, store.Create(ctx, "demo", pki.BuiltinKeySecretName("demo", "ca-1"), keyPEM(t, key)))

	ca, err := newManager(store).EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.True(t, pki.KeyMatchesCert(key, ca.Certificate()))
}

func TestEnsureCAIsolatesMeshes(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	m := newManager(store)

	caA, err := m.EnsureCA(ctx, "mesh-a", builtinBackend("ca-1"))
	require.NoError(t, err)
	caB, err := m.EnsureCA(ctx, "mesh-b", builtinBackend("ca-1")) // same backend name
	require.NoError(t, err)
	require.NotEqual(t, caA.Certificate().Raw, caB.Certificate().Raw)
	require.Equal(t, "mesh-b", caB.Mesh())
	require.ElementsMatch(t, []string{"mesh-a.ca-builtin-cert-ca-1", "mesh-a.ca-builtin-key-ca-1"}, store.Names("mesh-a"))
	require.ElementsMatch(t, []string{"mesh-b.ca-builtin-cert-ca-1", "mesh-b.ca-builtin-key-ca-1"}, store.Names("mesh-b"))

	// Asking again in any order never crosses the meshes.
	for range 3 {
		got, err := m.EnsureCA(ctx, "mesh-b", builtinBackend("ca-1"))
		require.NoError(t, err)
		require.Same(t, caB, got)
		got, err = m.EnsureCA(ctx, "mesh-a", builtinBackend("ca-1"))
		require.NoError(t, err)
		require.Same(t, caA, got)
	}

	// A certificate of mesh B does not verify against mesh A's bundle.
	wcB, err := m.IssueWorkloadCert(ctx, "mesh-b", builtinBackend("ca-1"), pki.WorkloadRequest{Services: []string{"web"}})
	require.NoError(t, err)
	require.Equal(t, "spiffe://mesh-b/web", wcB.Leaf.URIs[0].String())
	_, err = pki.VerifyWorkloadCertPEM(wcB.CertPEM, caA.CertPEM(), "mesh-a", t0)
	require.ErrorIs(t, err, pki.ErrUntrustedPeer)
	_, err = pki.VerifyWorkloadCertPEM(wcB.CertPEM, caB.CertPEM(), "mesh-b", t0)
	require.NoError(t, err)
}

// A mesh deleted and re-created gets a new CA; the manager notices without
// being told.
func TestEnsureCAFollowsStore(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	m := newManager(store)
	first, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	for _, n := range store.Names("demo") {
		store.Delete("demo", n)
	}
	second, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.NotEqual(t, first.Certificate().Raw, second.Certificate().Raw)
	m.Forget("demo")
	third, err := m.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.Equal(t, second.Certificate().Raw, third.Certificate().Raw)
}

func TestEnsureCALoadOnly(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	now := t0
	zone := pki.NewManager(store, pki.ManagerOptions{Now: clockAt(&now), LoadOnly: true})

	_, err := zone.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.ErrorIs(t, err, pki.ErrCANotFound)
	require.Empty(t, store.Names("demo"), "a load-only manager writes nothing")

	global, err := newManager(store).EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	got, err := zone.EnsureCA(ctx, "demo", builtinBackend("ca-1"))
	require.NoError(t, err)
	require.Equal(t, global.Certificate().Raw, got.Certificate().Raw)
}

func TestEnsureProvidedCA(t *testing.T) {
	ctx := context.Background()
	key := ecKey(t)
	certPEM, _ := sign(t, caTemplate("provided"), key, nil, nil)
	kPEM := keyPEM(t, key)

	store := pki.NewMemorySecretStore()
	require.NoError(t, store.Create(ctx, "demo", "my-ca-cert", certPEM))
	require.NoError(t, store.Create(ctx, "demo", "my-ca-key", kPEM))
	require.NoError(t, store.Create(ctx, "other", "other-ca-key", kPEM))
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), kPEM, 0o600))

	provided := func(cert, key *mesh.DataSource) *mesh.Backend {
		return &mesh.Backend{Name: "ca-p", Type: mesh.BackendProvided, Conf: &mesh.BackendConf{Cert: cert, Key: key}}
	}
	ok := map[string]*mesh.Backend{
		"secret":       provided(&mesh.DataSource{Secret: "my-ca-cert"}, &mesh.DataSource{Secret: "my-ca-key"}),
		"file":         provided(&mesh.DataSource{File: filepath.Join(dir, "ca.pem")}, &mesh.DataSource{File: filepath.Join(dir, "key.pem")}),
		"inline":       provided(&mesh.DataSource{Inline: certPEM}, &mesh.DataSource{Inline: kPEM}),
		"inlineString": provided(&mesh.DataSource{InlineString: string(certPEM)}, &mesh.DataSource{InlineString: string(kPEM)}),
	}
	for name, b := range ok {
		t.Run(name, func(t *testing.T) {
			ca, err := newManager(store).EnsureCA(ctx, "demo", b)
			require.NoError(t, err)
			require.Equal(t, certPEM, ca.CertPEM())
		})
	}

	bad := map[string]struct {
		backend  *mesh.Backend
		contains string
	}{
		"no conf":                {&mesh.Backend{Name: "ca-p", Type: mesh.BackendProvided}, "conf with cert and key is required"},
		"no key":                 {provided(&mesh.DataSource{Inline: certPEM}, nil), "conf.key is not set"},
		"missing secret":         {provided(&mesh.DataSource{Secret: "nope"}, &mesh.DataSource{Inline: kPEM}), `conf.cert: secret "nope" not found in mesh "demo"`},
		"secret of another mesh": {provided(&mesh.DataSource{Inline: certPEM}, &mesh.DataSource{Secret: "other-ca-key"}), `conf.key: secret "other-ca-key" not found in mesh "demo"`},
		"missing file":           {provided(&mesh.DataSource{File: filepath.Join(dir, "nope.pem")}, &mesh.DataSource{Inline: kPEM}), "conf.cert: reading file"},
		"empty source":           {provided(&mesh.DataSource{}, &mesh.DataSource{Inline: kPEM}), "one of secret, file, inline or inlineString"},
		"key mismatch":           {provided(&mesh.DataSource{Inline: certPEM}, &mesh.DataSource{Inline: keyPEM(t, ecKey(t))}), "private key does not match"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := newManager(store).EnsureCA(ctx, "demo", tc.backend)
			require.ErrorIs(t, err, pki.ErrInvalidCA)
			require.ErrorContains(t, err, tc.contains)
			require.ErrorContains(t, err, `CA "ca-p" of mesh "demo"`)
		})
	}
}

// Replacing a provided CA's secret is picked up on the next call.
func TestEnsureProvidedCAFollowsChanges(t *testing.T) {
	ctx := context.Background()
	store := pki.NewMemorySecretStore()
	k1, k2 := ecKey(t), ecKey(t)
	c1, _ := sign(t, caTemplate("one"), k1, nil, nil)
	c2, _ := sign(t, caTemplate("two"), k2, nil, nil)
	require.NoError(t, store.Create(ctx, "demo", "ca-cert", c1))
	require.NoError(t, store.Create(ctx, "demo", "ca-key", keyPEM(t, k1)))
	b := &mesh.Backend{Name: "ca-p", Type: mesh.BackendProvided, Conf: &mesh.BackendConf{
		Cert: &mesh.DataSource{Secret: "ca-cert"}, Key: &mesh.DataSource{Secret: "ca-key"},
	}}
	m := newManager(store)
	ca, err := m.EnsureCA(ctx, "demo", b)
	require.NoError(t, err)
	require.Equal(t, "one", ca.Certificate().Subject.CommonName)

	require.NoError(t, store.Update(ctx, "demo", "ca-cert", c1, c2))
	require.NoError(t, store.Update(ctx, "demo", "ca-key", keyPEM(t, k1), keyPEM(t, k2)))
	ca, err = m.EnsureCA(ctx, "demo", b)
	require.NoError(t, err)
	require.Equal(t, "two", ca.Certificate().Subject.CommonName)
}

func TestManagerIssueUsesBackendLifetime(t *testing.T) {
	b := builtinBackend("ca-1")
	b.DPCert = &mesh.DPCert{Rotation: &mesh.Rotation{Expiration: duration.Duration("2h")}}
	require.Equal(t, 2*time.Hour, pki.WorkloadLifetime(b))
	require.Equal(t, 24*time.Hour, pki.WorkloadLifetime(builtinBackend("x")))

	wc, err := newManager(pki.NewMemorySecretStore()).IssueWorkloadCert(context.Background(), "demo", b, pki.WorkloadRequest{Services: []string{"web"}})
	require.NoError(t, err)
	require.Equal(t, t0.Add(2*time.Hour), wc.Leaf.NotAfter)
}

func TestTrustBundle(t *testing.T) {
	ctx := context.Background()
	m := newManager(pki.NewMemorySecretStore())
	backends := []mesh.Backend{*builtinBackend("ca-1"), *builtinBackend("ca-2")}
	bundle, err := m.TrustBundle(ctx, "demo", backends)
	require.NoError(t, err)
	certs, err := pki.ParseCertsPEM(bundle)
	require.NoError(t, err)
	require.Len(t, certs, 2)

	// A workload certified by the old backend still verifies during a switch.
	wc, err := m.IssueWorkloadCert(ctx, "demo", &backends[0], pki.WorkloadRequest{Services: []string{"web"}})
	require.NoError(t, err)
	_, err = pki.VerifyWorkloadCertPEM(wc.CertPEM, bundle, "demo", t0)
	require.NoError(t, err)

	_, err = m.TrustBundle(ctx, "demo", nil)
	require.ErrorContains(t, err, "no mTLS backend")
}

// failingStore fails every call, as an unreachable database would.
type failingStore struct{}

var errDown = errors.New("database is down")

func (failingStore) Get(context.Context, string, string) ([]byte, error) { return nil, errDown }
func (failingStore) Create(context.Context, string, string, []byte) error {
	return errDown
}

func TestEnsureCAStoreFailure(t *testing.T) {
	_, err := newManager(failingStore{}).EnsureCA(context.Background(), "demo", builtinBackend("ca-1"))
	require.ErrorIs(t, err, errDown)
	require.NotErrorIs(t, err, pki.ErrInvalidCA)
	require.NotErrorIs(t, err, pki.ErrCANotFound)
}

func TestEnsureCARejectsBadInput(t *testing.T) {
	m := newManager(pki.NewMemorySecretStore())
	_, err := m.EnsureCA(context.Background(), "", builtinBackend("ca-1"))
	require.Error(t, err)
	_, err = m.EnsureCA(context.Background(), "demo", &mesh.Backend{Name: "x", Type: "vault"})
	require.ErrorContains(t, err, `unknown backend type "vault"`)
}

func TestMemorySecretStore(t *testing.T) {
	ctx := context.Background()
	s := pki.NewMemorySecretStore()
	_, err := s.Get(ctx, "m", "n")
	require.ErrorIs(t, err, pki.ErrSecretNotFound)
	require.NoError(t, s.Create(ctx, "m", "n", []byte("a")))
	require.ErrorIs(t, s.Create(ctx, "m", "n", []byte("b")), pki.ErrSecretExists)
	require.ErrorIs(t, s.Update(ctx, "m", "n", []byte("x"), []byte("b")), pki.ErrSecretConflict)
	require.NoError(t, s.Update(ctx, "m", "n", []byte("a"), []byte("b")))
	got, err := s.Get(ctx, "m", "n")
	require.NoError(t, err)
	require.True(t, bytes.Equal([]byte("b"), got))
	require.ErrorIs(t, s.Update(ctx, "m", "zz", nil, []byte("b")), pki.ErrSecretNotFound)
	_, err = s.Get(ctx, "other", "n")
	require.ErrorIs(t, err, pki.ErrSecretNotFound)
}
