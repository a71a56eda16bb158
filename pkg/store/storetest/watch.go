package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

func watchCases() []testCase {
	return []testCase{
		{"WatchCreateUpdateDelete", testWatchCreateUpdateDelete},
		{"WatchEveryWatcherGetsEveryEvent", testWatchEveryWatcher},
		{"WatchFailedWritesPublishNothing", testWatchFailedWritesPublishNothing},
		{"WatchMeshCascade", testWatchMeshCascade},
		{"WatchEventsFollowVisibleChanges", testWatchEventsFollowVisibleChanges},
		{"WatchClosesWhenContextEnds", testWatchClosesWhenContextEnds},
	}
}

// nextEvents reads n events from ch, failing readably when they do not come.
func nextEvents(t require.TestingT, ch <-chan store.Event, n int, what string) []store.Event {
	out := make([]store.Event, 0, n)
	timeout := time.After(EventTimeout)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				require.FailNow(t, fmt.Sprintf("%s: Watch channel closed after %d of %d expected events: %v", what, len(out), n, out))
			}
			out = append(out, e)
		case <-timeout:
			require.FailNow(t, fmt.Sprintf("%s: received %d of %d expected events within %s: %v", what, len(out), n, EventTimeout, out))
		}
	}
	return out
}

// expectEvents checks that the next events on ch are exactly want, in order.
func expectEvents(t require.TestingT, ch <-chan store.Event, want []store.Event, what string) {
	got := nextEvents(t, ch, len(want), what)
	if d := gocmp.Diff(want, got); d != "" {
		require.FailNow(t, what+": events differ (-want +got)", d)
	}
}

// expectNothingElse proves that no event is pending on ch without sleeping:
// it makes one more write and requires its event to be the next one.
func (h *harness) expectNothingElse(ch <-chan store.Event, what string) {
	h.t.Helper()
	marker := h.create(newZone(fmt.Sprintf("marker-%d", time.Now().UnixNano())))
	expectEvents(h.t, ch, []store.Event{created(marker)}, what+": unexpected extra events before the marker write's event")
}

func created(r *resource.Resource) store.Event {
	return store.Event{Kind: store.Created, Type: r.Type, Key: r.Key(), Version: r.Meta.Version}
}

func updated(r *resource.Resource) store.Event {
	return store.Event{Kind: store.Updated, Type: r.Type, Key: r.Key(), Version: r.Meta.Version}
}

func deleted(r *resource.Resource) store.Event {
	return store.Event{Kind: store.Deleted, Type: r.Type, Key: r.Key()}
}

func testWatchCreateUpdateDelete(h *harness) {
	ch := h.s.Watch(h.ctx)
	m := h.create(newMesh("default"))
	c := h.create(newPolicy("default", "p-1", nil))
	next := h.clone(c)
	next.Meta.Labels = map[string]string{"v": "2"}
	u := h.update(next)
	require.NoError(h.t, h.s.Delete(h.ctx, PolicyType, c.Key(), store.DeleteOptions{Version: u.Meta.Version}))
	z := h.create(newZone("zone-1"))
	h.delete(resource.ZoneType, z.Key())

	expectEvents(h.t, ch, []store.Event{
		created(m), created(c), updated(u), deleted(c), created(z), deleted(z),
	}, "events of Create, Update and Delete in write order (Deleted carries no version)")
	h.expectNothingElse(ch, "after the writes")
}

func testWatchEveryWatcher(h *harness) {
	a := h.s.Watch(h.ctx)
	b := h.s.Watch(h.ctx)
	var want []store.Event
	for i := range 5 {
		want = append(want, created(h.create(newDataplane("default", fmt.Sprintf("dp-%d", i), nil))))
	}
	expectEvents(h.t, a, want, "first watcher")
	expectEvents(h.t, b, want, "second watcher")
}

func testWatchFailedWritesPublishNothing(h *harness) {
	c := h.create(newDataplane("default", "dp-1", nil))
	next := h.clone(c)
	next.Meta.Labels = map[string]string{"v": "2"}
	u := h.update(next)

	ch := h.s.Watch(h.ctx)
	_, err := h.s.Create(h.ctx, newDataplane("default", "dp-1", nil))
	requireErr(h.t, err, store.ErrAlreadyExists, "duplicate Create")
	_, err = h.s.Update(h.ctx, h.clone(c))
	requireErr(h.t, err, store.ErrConflict, "stale Update")
	_, err = h.s.Update(h.ctx, newDataplane("default", "missing", nil))
	requireErr(h.t, err, store.ErrNotFound, "Update of a missing resource")
	err = h.s.Delete(h.ctx, resource.DataplaneType, c.Key(), store.DeleteOptions{Version: c.Meta.Version})
	requireErr(h.t, err, store.ErrConflict, "stale Delete")
	err = h.s.Delete(h.ctx, resource.DataplaneType, resource.Key{Mesh: "default", Name: "missing"}, store.DeleteOptions{})
	requireErr(h.t, err, store.ErrNotFound, "Delete of a missing resource")
	requireSame(h.t, u, h.get(resource.DataplaneType, c.Key()), "Dataplane after the failed writes")

	h.expectNothingElse(ch, "failed writes must not publish events")
}

func testWatchMeshCascade(h *harness) {
	populate(h)
	ch := h.s.Watch(h.ctx)
	h.delete(resource.MeshType, resource.Key{Name: "m1"})

	want := []store.Event{{Kind: store.Deleted, Type: resource.MeshType, Key: resource.Key{Name: "m1"}}}
	for _, r := range meshScoped("m1") {
		want = append(want, deleted(r))
	}
	got := nextEvents(h.t, ch, len(want), "Deleted events of the mesh and everything in it")
	byTypeAndKey := func(a, b store.Event) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Key.Mesh, b.Key.Mesh), cmp.Compare(a.Key.Name, b.Key.Name))
	}
	slices.SortFunc(want, byTypeAndKey)
	slices.SortFunc(got, byTypeAndKey)
	if d := gocmp.Diff(want, got); d != "" {
		h.t.Fatalf("deleting Mesh m1 must publish a Deleted event for it and for each resource in it, in any order (-want +got):\n%s", d)
	}
	h.expectNothingElse(ch, "deleting Mesh m1 must not publish events for other meshes")
}

// testWatchEventsFollowVisibleChanges reads with Get as soon as each event
// arrives, possibly before the write call has returned to its caller: an
// event must never arrive before its change can be read. The writer waits
// for each check before its next write, so every Get has one right answer.
func testWatchEventsFollowVisibleChanges(h *harness) {
	const n = 10
	ch := h.s.Watch(h.ctx)
	ctx, cancel := context.WithCancel(h.ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	ack := make(chan struct{})
	done := make(chan struct{})
	var writeErr error
	wg.Go(func() {
		defer close(done)
		step := func(err error) bool {
			if err != nil {
				writeErr = err
				return false
			}
			select {
			case <-ack:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for i := range n {
			r, err := h.s.Create(ctx, newDataplane("default", fmt.Sprintf("dp-%02d", i), nil))
			if !step(err) {
				return
			}
			next, err := h.reg.Clone(r)
			if err == nil {
				next.Meta.Labels = map[string]string{"updated": "yes"}
				_, err = h.s.Update(ctx, next)
			}
			if !step(err) {
				return
			}
			if !step(h.s.Delete(ctx, r.Type, r.Key(), store.DeleteOptions{})) {
				return
			}
		}
	})
	writerFailed := func() {
		<-done
		h.t.Fatalf("the writer stopped early: %v", writeErr)
	}

	for i := range 3 * n {
		var e store.Event
		select {
		case e = <-ch:
		case <-done:
			writerFailed()
		case <-time.After(EventTimeout):
			h.t.Fatalf("event %d of %d did not arrive within %s", i+1, 3*n, EventTimeout)
		}
		got, err := h.s.Get(h.ctx, e.Type, e.Key)
		switch e.Kind {
		case store.Created, store.Updated:
			require.NoError(h.t, err, "Get right after the %s event of %s", e.Kind, e.Key)
			require.Equal(h.t, e.Version, got.Meta.Version, "Get right after the %s event of %s returns an older version", e.Kind, e.Key)
		case store.Deleted:
			requireErr(h.t, err, store.ErrNotFound, "Get right after the Deleted event of "+e.Key.String())
		default:
			h.t.Fatalf("unexpected event %v", e)
		}
		select {
		case ack <- struct{}{}:
		case <-done:
			writerFailed()
		}
	}
	<-done
	require.NoError(h.t, writeErr, "the writer failed")
}

func testWatchClosesWhenContextEnds(h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	ch := h.s.Watch(ctx)
	h.create(newMesh("default"))
	cancel()
	timeout := time.After(EventTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				// The store keeps working for other watchers.
				other := h.s.Watch(h.ctx)
				h.expectNothingElse(other, "a new watcher after another one's context ended")
				return
			}
		case <-timeout:
			h.t.Fatalf("the Watch channel was not closed within %s after its context ended", EventTimeout)
		}
	}
}
