package secretstore_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/secret"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/pki/secretstore"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
)

// fakeResources follows the store.ResourceStore contract for Get, Create
// and Update (versions, sentinel errors) on a map.
type fakeResources struct {
	mu   sync.Mutex
	n    int
	data map[string]*resource.Resource
}

func newFake() *fakeResources { return &fakeResources{data: map[string]*resource.Resource{}} }

func id(typ string, k resource.Key) string { return typ + "|" + k.String() }

func (f *fakeResources) Get(_ context.Context, typ string, key resource.Key) (*resource.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.data[id(typ, key)]
	if !ok {
		return nil, store.NotFound(typ, key)
	}
	return r, nil
}

func (f *fakeResources) Create(_ context.Context, res *resource.Resource) (*resource.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := id(res.Type, res.Key())
	if _, ok := f.data[k]; ok {
		return nil, store.AlreadyExists(res.Type, res.Key())
	}
	f.n++
	c := *res
	c.Meta.Version = strconv.Itoa(f.n)
	f.data[k] = &c
	return &c, nil
}

func (f *fakeResources) Update(_ context.Context, res *resource.Resource) (*resource.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := id(res.Type, res.Key())
	cur, ok := f.data[k]
	if !ok {
		return nil, store.NotFound(res.Type, res.Key())
	}
	if cur.Meta.Version != res.Meta.Version {
		return nil, store.Conflict(res.Type, res.Key())
	}
	f.n++
	c := *res
	c.Meta.Version = strconv.Itoa(f.n)
	f.data[k] = &c
	return &c, nil
}

// backends are the resource stores the adapter is checked against: the
// real memory store, and a minimal fake of the contract.
func backends(t *testing.T) map[string]secretstore.Resources {
	t.Helper()
	return map[string]secretstore.Resources{
		"memory": memory.New(resource.MustRegistry(resource.CoreDescriptors()...)),
		"fake":   newFake(),
	}
}

func TestAdapter(t *testing.T) {
	for name, res := range backends(t) {
		t.Run(name, func(t *testing.T) { testAdapter(t, res) })
	}
}

func testAdapter(t *testing.T, res secretstore.Resources) {
	ctx := context.Background()
	s := secretstore.New(res)

	_, err := s.Get(ctx, "demo", "x")
	require.ErrorIs(t, err, pki.ErrSecretNotFound)
	require.ErrorIs(t, err, store.ErrNotFound, "the store's error stays in the chain")

	require.NoError(t, s.Create(ctx, "demo", "x", []byte("one")))
	require.ErrorIs(t, s.Create(ctx, "demo", "x", []byte("two")), pki.ErrSecretExists)
	got, err := s.Get(ctx, "demo", "x")
	require.NoError(t, err)
	require.Equal(t, []byte("one"), got)

	// Stored as a Secret resource of the mesh.
	r, err := res.Get(ctx, resource.SecretType, resource.Key{Mesh: "demo", Name: "x"})
	require.NoError(t, err)
	require.Equal(t, []byte("one"), r.Spec.(*secret.Spec).Data)
	require.Empty(t, r.Spec.Validate())

	require.ErrorIs(t, s.Update(ctx, "demo", "x", []byte("stale"), []byte("two")), pki.ErrSecretConflict)
	require.NoError(t, s.Update(ctx, "demo", "x", []byte("one"), []byte("two")))
	got, err = s.Get(ctx, "demo", "x")
	require.NoError(t, err)
	require.Equal(t, []byte("two"), got)
	require.ErrorIs(t, s.Update(ctx, "demo", "nope", nil, []byte("x")), pki.ErrSecretNotFound)
}

// The CA manager works end to end through the adapter.
func TestAdapterWithManager(t *testing.T) {
	ctx := context.Background()
	s := secretstore.New(memory.New(resource.MustRegistry(resource.CoreDescriptors()...)))
	m := pki.NewManager(s, pki.ManagerOptions{})
	b := &mesh.Backend{Name: "ca-1", Type: mesh.BackendBuiltin}
	ca, err := m.EnsureCA(ctx, "demo", b)
	require.NoError(t, err)
	again, err := pki.NewManager(s, pki.ManagerOptions{}).EnsureCA(ctx, "demo", b)
	require.NoError(t, err)
	require.Equal(t, ca.Certificate().Raw, again.Certificate().Raw)
}
