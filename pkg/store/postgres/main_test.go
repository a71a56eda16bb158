package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	meshapi "github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
)

// pg is the PostgreSQL cluster this test binary shares; each test takes a
// fresh database from it.
var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }

func testRegistry(t testing.TB) *resource.Registry {
	t.Helper()
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(t, err)
	return reg
}

// configFor points a store Config at a test database.
func configFor(db pgtest.Database) postgres.Config {
	return postgres.Config{
		Host:             db.Host,
		Port:             db.Port,
		User:             db.User,
		DBName:           db.Name,
		TLSMode:          postgres.TLSDisable,
		ConnectTimeout:   2 * time.Second,
		OperationTimeout: 3 * time.Second,
	}
}

// migrate brings a fresh database's schema up to date.
func migrate(t testing.TB, cfg postgres.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := postgres.Connect(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	_, err = postgres.Migrate(ctx, pool)
	require.NoError(t, err)
}

// openStore opens a store on cfg and closes it in t.Cleanup.
func openStore(t testing.TB, cfg postgres.Config, reg *resource.Registry) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, cfg, postgres.Options{Registry: reg, HealthInterval: time.Second})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// newStore returns a store on a fresh, migrated database of the shared
// cluster.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	cfg := configFor(pg.NewDatabase(t))
	migrate(t, cfg)
	return openStore(t, cfg, testRegistry(t))
}

func mesh(name string, labels map[string]string) *resource.Resource {
	return &resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: name, Labels: labels}, Spec: newMeshSpec()}
}

func service(mesh, name string, labels map[string]string) *resource.Resource {
	return &resource.Resource{
		Type: resource.MeshServiceType,
		Meta: resource.Meta{Mesh: mesh, Name: name, Labels: labels},
		Spec: &meshservice.Spec{
			Selector: meshservice.Selector{DataplaneTags: map[string]string{"app": name}},
			Ports:    []meshservice.Port{{Name: "http", Port: 80, AppProtocol: "http"}},
		},
	}
}

// nextEvent waits up to a second for an event.
func nextEvent(t testing.TB, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		require.True(t, ok, "event channel closed")
		return e
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
	}
	return store.Event{}
}

func newMeshSpec() *meshapi.Spec {
	return &meshapi.Spec{MTLS: &meshapi.MTLS{
		EnabledBackend: "ca-1",
		Backends:       []meshapi.Backend{{Name: "ca-1", Type: meshapi.BackendBuiltin}},
	}}
}
