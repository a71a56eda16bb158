package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
)

func TestCreateGetUpdateDelete(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)

	in := service("default", "web", map[string]string{"team": "a"})
	created, err := s.Create(ctx, in)
	require.NoError(t, err)
	require.NotEmpty(t, created.Meta.Version)
	require.False(t, created.Meta.CreationTime.IsZero())
	require.Equal(t, created.Meta.CreationTime, created.Meta.ModificationTime)
	require.Empty(t, cmp.Diff(in.Spec, created.Spec))
	require.NotSame(t, in.Spec, created.Spec, "the store keeps its own copy")

	_, err = s.Create(ctx, in)
	require.ErrorIs(t, err, store.ErrAlreadyExists)

	got, err := s.Get(ctx, resource.MeshServiceType, in.Key())
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(created, got))

	upd := service("default", "web", nil)
	upd.Meta.Version = created.Meta.Version
	upd.Status = &meshservice.Status{VIPs: []meshservice.VIP{{IP: "240.0.0.1"}}}
	updated, err := s.Update(ctx, upd)
	require.NoError(t, err)
	require.NotEqual(t, created.Meta.Version, updated.Meta.Version)
	require.Equal(t, created.Meta.CreationTime, updated.Meta.CreationTime)
	require.Nil(t, updated.Meta.Labels)
	require.Empty(t, cmp.Diff(upd.Status, updated.Status))

	// A stale version is a conflict, never a lost update.
	_, err = s.Update(ctx, upd)
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorIs(t, s.Delete(ctx, resource.MeshServiceType, in.Key(), store.DeleteOptions{Version: created.Meta.Version}), store.ErrConflict)

	require.NoError(t, s.Delete(ctx, resource.MeshServiceType, in.Key(), store.DeleteOptions{Version: updated.Meta.Version}))
	_, err = s.Get(ctx, resource.MeshServiceType, in.Key())
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, resource.MeshServiceType, in.Key(), store.DeleteOptions{}), store.ErrNotFound)
	_, err = s.Update(ctx, upd)
	require.ErrorIs(t, err, store.ErrNotFound)

	// Created again, it never reuses an old version.
	again, err := s.Create(ctx, in)
	require.NoError(t, err)
	require.NotContains(t, []string{created.Meta.Version, updated.Meta.Version}, again.Meta.Version)
}

func TestRejectsBadKeysAndTypes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, err := s.Create(ctx, service("", "web", nil))
	require.ErrorContains(t, err, "mesh must be set")
	bad := mesh("m", nil)
	bad.Meta.Mesh = "x"
	_, err = s.Create(ctx, bad)
	require.ErrorContains(t, err, "mesh must be empty")
	_, err = s.Get(ctx, "NoSuchType", resource.Key{Name: "x"})
	require.ErrorContains(t, err, "unknown resource type")
}

func TestListFiltersAndPages(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, m := range []string{"b", "a"} {
		for i := range 5 {
			labels := map[string]string{"parity": []string{"even", "odd"}[i%2]}
			_, err := s.Create(ctx, service(m, fmt.Sprintf("svc-%d", 4-i), labels))
			require.NoError(t, err)
		}
	}
	keys := func(items []*resource.Resource) []string {
		var out []string
		for _, r := range items {
			out = append(out, r.Key().String())
		}
		return out
	}

	all, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, 10, all.Total)
	require.Equal(t, -1, all.NextOffset)
	require.Equal(t, []string{"a/svc-0", "a/svc-1", "a/svc-2", "a/svc-3", "a/svc-4",
		"b/svc-0", "b/svc-1", "b/svc-2", "b/svc-3", "b/svc-4"}, keys(all.Items))

	page, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Offset: 3, Size: 4})
	require.NoError(t, err)
	require.Equal(t, []string{"a/svc-3", "a/svc-4", "b/svc-0", "b/svc-1"}, keys(page.Items))
	require.Equal(t, 10, page.Total)
	require.Equal(t, 7, page.NextOffset)

	last, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Offset: 7, Size: 4})
	require.NoError(t, err)
	require.Len(t, last.Items, 3)
	require.Equal(t, -1, last.NextOffset)

	beyond, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{Offset: 50, Size: 4})
	require.NoError(t, err)
	require.Empty(t, beyond.Items)
	require.Equal(t, 10, beyond.Total)

	filtered, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{
		Mesh: "b", Labels: map[string]string{"parity": "even"}, NameContains: "svc-",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"b/svc-0", "b/svc-2", "b/svc-4"}, keys(filtered.Items))
	require.Equal(t, 3, filtered.Total)

	// Wildcards are literal text in NameContains.
	none, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{NameContains: "%"})
	require.NoError(t, err)
	require.Zero(t, none.Total)
}

func TestDeleteMeshTakesItsContents(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)
	for _, m := range []string{"doomed", "kept"} {
		_, err := s.Create(ctx, mesh(m, nil))
		require.NoError(t, err)
		for i := range 3 {
			_, err := s.Create(ctx, service(m, fmt.Sprintf("svc-%d", i), nil))
			require.NoError(t, err)
		}
	}
	for range 8 {
		require.Equal(t, store.Created, nextEvent(t, events).Kind)
	}

	require.NoError(t, s.Delete(ctx, resource.MeshType, resource.Key{Name: "doomed"}, store.DeleteOptions{}))

	left, err := s.List(ctx, resource.MeshServiceType, store.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, 3, left.Total)
	for _, r := range left.Items {
		require.Equal(t, "kept", r.Meta.Mesh)
	}
	var got []string
	for range 4 {
		e := nextEvent(t, events)
		require.Equal(t, store.Deleted, e.Kind)
		got = append(got, e.Type+" "+e.Key.String())
	}
	require.Equal(t, []string{
		"MeshService doomed/svc-0", "MeshService doomed/svc-1", "MeshService doomed/svc-2", "Mesh doomed",
	}, got, "contents first, then the mesh, like the memory store")
}

func TestDeleteMeshWithStaleVersionDeletesNothing(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	m, err := s.Create(ctx, mesh("m", nil))
	require.NoError(t, err)
	_, err = s.Create(ctx, service("m", "svc", nil))
	require.NoError(t, err)
	require.ErrorIs(t, s.Delete(ctx, resource.MeshType, m.Key(), store.DeleteOptions{Version: "999999"}), store.ErrConflict)
	_, err = s.Get(ctx, resource.MeshServiceType, resource.Key{Mesh: "m", Name: "svc"})
	require.NoError(t, err, "a refused mesh deletion leaves its contents")
}

func TestWatchSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := s.Watch(wctx)

	c, err := s.Create(ctx, service("m", "web", nil))
	require.NoError(t, err)
	c.Meta.Labels = map[string]string{"x": "y"}
	u, err := s.Update(ctx, c)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, resource.MeshServiceType, c.Key(), store.DeleteOptions{}))
	// A failed write sends nothing.
	_, err = s.Update(ctx, u)
	require.ErrorIs(t, err, store.ErrNotFound)

	key := resource.Key{Mesh: "m", Name: "web"}
	want := []store.Event{
		{Kind: store.Created, Type: resource.MeshServiceType, Key: key, Version: c.Meta.Version},
		{Kind: store.Updated, Type: resource.MeshServiceType, Key: key, Version: u.Meta.Version},
		{Kind: store.Deleted, Type: resource.MeshServiceType, Key: key},
	}
	for _, w := range want {
		require.Equal(t, w, nextEvent(t, events))
	}
	select {
	case e := <-events:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRacingWritersExactlyOneWins(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	orig, err := s.Create(ctx, service("m", "contended", nil))
	require.NoError(t, err)

	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := service("m", "contended", map[string]string{"writer": fmt.Sprint(i)})
			r.Meta.Version = orig.Meta.Version
			<-start
			_, errs[i] = s.Update(ctx, r)
		}()
	}
	close(start)
	wg.Wait()
	var wins, conflicts int
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, store.ErrConflict):
			conflicts++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Equal(t, 1, wins)
	require.Equal(t, writers-1, conflicts)
}

func TestTwoStoresSeeEachOthersWrites(t *testing.T) {
	ctx := context.Background()
	cfg := configFor(pg.NewDatabase(t))
	migrate(t, cfg)
	reg := testRegistry(t)
	a, b := openStore(t, cfg, reg), openStore(t, cfg, reg)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fromA, fromB := a.Watch(wctx), b.Watch(wctx)

	created, err := a.Create(ctx, mesh("shared", nil))
	require.NoError(t, err)
	for _, ch := range []<-chan store.Event{fromA, fromB} {
		e := nextEvent(t, ch) // within 1 s
		require.Equal(t, store.Event{Kind: store.Created, Type: resource.MeshType, Key: created.Key(), Version: created.Meta.Version}, e)
	}
	got, err := b.Get(ctx, resource.MeshType, created.Key())
	require.NoError(t, err)
	require.Equal(t, created.Meta.Version, got.Meta.Version)

	got.Meta.Labels = map[string]string{"by": "b"}
	_, err = b.Update(ctx, got)
	require.NoError(t, err)
	require.Equal(t, store.Updated, nextEvent(t, fromA).Kind)
}

func TestOpenRefusesUnmigratedDatabase(t *testing.T) {
	ctx := context.Background()
	cfg := configFor(pg.NewDatabase(t))
	_, err := postgres.Open(ctx, cfg, postgres.Options{Registry: testRegistry(t)})
	require.ErrorContains(t, err, "atoll-cp migrate up")

	migrate(t, cfg)
	s := openStore(t, cfg, testRegistry(t))
	require.NoError(t, s.Ready(ctx))
}

func TestOpenUnreachableIsUnavailable(t *testing.T) {
	ctx := context.Background()
	cfg := configFor(pg.NewDatabase(t))
	cfg.Port = 1 // nothing listens there
	start := time.Now()
	_, err := postgres.Open(ctx, cfg, postgres.Options{Registry: testRegistry(t)})
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestCloseEndsWatches(t *testing.T) {
	cfg := configFor(pg.NewDatabase(t))
	migrate(t, cfg)
	s := openStore(t, cfg, testRegistry(t))
	events := s.Watch(context.Background())
	s.Close()
	select {
	case _, ok := <-events:
		require.False(t, ok, "no events after Close")
	case <-time.After(time.Second):
		t.Fatal("Watch channel still open after Close")
	}
	_, ok := <-s.Watch(context.Background())
	require.False(t, ok, "Watch on a closed store returns a closed channel")
}
