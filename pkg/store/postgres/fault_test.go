package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
)

// TestServerOutage stops PostgreSQL under a running store: every operation
// fails fast with ErrUnavailable, nothing is half-written, and once the
// server is back the store recovers by itself and its subscribers get a
// Resync followed by live events again.
func TestServerOutage(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.New(t)
	cfg := configFor(cluster.NewDatabase(t))
	migrate(t, cfg)
	s := openStore(t, cfg, testRegistry(t))

	_, err := s.Create(ctx, mesh("m", nil))
	require.NoError(t, err)
	var svcs []*resource.Resource
	for i := range 3 {
		r, err := s.Create(ctx, service("m", fmt.Sprintf("svc-%d", i), nil))
		require.NoError(t, err)
		svcs = append(svcs, r)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)

	require.NoError(t, cluster.Stop(ctx))

	ops := map[string]func() error{
		"create": func() error { _, err := s.Create(ctx, service("m", "new", nil)); return err },
		"update": func() error { _, err := s.Update(ctx, svcs[0]); return err },
		"get":    func() error { _, err := s.Get(ctx, resource.MeshServiceType, svcs[0].Key()); return err },
		"list":   func() error { _, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{}); return err },
		"delete": func() error {
			return s.Delete(ctx, resource.MeshType, resource.Key{Name: "m"}, store.DeleteOptions{})
		},
		"ready": func() error { return s.Ready(ctx) },
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		took := time.Since(start)
		require.ErrorIs(t, err, store.ErrUnavailable, "%s while the server is down", name)
		require.Less(t, took, time.Second, "%s must fail fast, took %s", name, took)
		t.Logf("%s: %s after %s", name, err, took.Round(time.Millisecond))
	}

	require.NoError(t, cluster.Start(ctx))
	require.Eventually(t, func() bool { return s.Ready(ctx) == nil }, 10*time.Second, 50*time.Millisecond,
		"the store reconnects by itself")
	require.Equal(t, store.Resync, nextEvent(t, events).Kind, "subscribers are told to re-read")

	// Nothing was half-written during the outage: the mesh and its contents
	// are all there, the refused create is not.
	list, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Mesh: "m"})
	require.NoError(t, err)
	require.Equal(t, 3, list.Total)
	_, err = s.Get(ctx, resource.MeshType, resource.Key{Name: "m"})
	require.NoError(t, err)

	// Writes and events work again.
	created, err := s.Create(ctx, service("m", "after", nil))
	require.NoError(t, err)
	e := nextEvent(t, events)
	require.Equal(t, store.Event{Kind: store.Created, Type: resource.MeshServiceType, Key: created.Key(), Version: created.Meta.Version}, e)
	_, err = s.Update(ctx, svcs[1])
	require.NoError(t, err, "pooled connections cut by the restart are replaced transparently")
}

// TestOutageDuringMeshDeletion crashes the server while a mesh deletion is
// half-way through its transaction: after the restart the mesh and all of
// its contents are still there.
func TestOutageDuringMeshDeletion(t *testing.T) {
	ctx := context.Background()
	cluster := pgtest.New(t)
	db := cluster.NewDatabase(t)
	cfg := configFor(db)
	migrate(t, cfg)
	s := openStore(t, cfg, testRegistry(t))
	_, err := s.Create(ctx, mesh("m", nil))
	require.NoError(t, err)
	for i := range 5 {
		_, err := s.Create(ctx, service("m", fmt.Sprintf("svc-%d", i), nil))
		require.NoError(t, err)
	}

	// Another session holds a lock on the last service, so the deletion
	// stops after it has locked the mesh and deleted some of the contents.
	blocker, err := db.Connect(ctx)
	require.NoError(t, err)
	// pgtest runs with synchronous_commit off: make the setup durable
	// before the crash.
	_, err = blocker.Exec(ctx, "CHECKPOINT")
	require.NoError(t, err)
	tx, err := blocker.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1 FROM atoll_resources WHERE name = 'svc-4' FOR UPDATE")
	require.NoError(t, err)

	deleted := make(chan error, 1)
	go func() { deleted <- s.Delete(ctx, resource.MeshType, resource.Key{Name: "m"}, store.DeleteOptions{}) }()
	require.Eventually(t, func() bool {
		var waiting int
		err := tx.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").Scan(&waiting)
		return err == nil && waiting == 1
	}, 5*time.Second, 10*time.Millisecond, "the deletion waits on the lock, half-way through")
	// A fast shutdown ends the blocker's session first at times, and the
	// deletion then gets its lock and commits before its own end: crash.
	require.NoError(t, cluster.Crash(ctx))
	err = <-deleted
	require.Error(t, err)
	require.True(t, errors.Is(err, store.ErrUnavailable), "got %v", err)

	require.NoError(t, cluster.Start(ctx))
	require.Eventually(t, func() bool { return s.Ready(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
	_, err = s.Get(ctx, resource.MeshType, resource.Key{Name: "m"})
	require.NoError(t, err)
	list, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Mesh: "m"})
	require.NoError(t, err)
	require.Equal(t, 5, list.Total, "the interrupted deletion rolled back completely")
}

// TestUnresponsiveServerTimesOut points the store at a socket that accepts
// connections and never answers: Open gives up with ErrUnavailable after the
// connect timeout instead of hanging.
func TestUnresponsiveServerTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cfg := postgres.Config{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, User: "u", DBName: "d",
		TLSMode: postgres.TLSDisable, ConnectTimeout: 500 * time.Millisecond, OperationTimeout: time.Second,
	}
	start := time.Now()
	_, err = postgres.Open(context.Background(), cfg, postgres.Options{Registry: testRegistry(t)})
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.Less(t, time.Since(start), 3*time.Second)
}
