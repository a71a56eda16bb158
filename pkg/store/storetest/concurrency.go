package storetest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// writers is how many goroutines race in the concurrency tests.
const writers = 16

func concurrencyCases() []testCase {
	return []testCase{
		{"ConcurrentUpdatesOfOneVersion", testConcurrentUpdatesOfOneVersion},
		{"ConcurrentCreatesOfOneKey", testConcurrentCreatesOfOneKey},
		{"ConcurrentDeletesOfOneVersion", testConcurrentDeletesOfOneVersion},
		{"ConcurrentWritersOfDistinctKeys", testConcurrentWritersOfDistinctKeys},
	}
}

// race runs fn(i) for i in [0, writers) at once, released together, and
// returns their errors by i.
func race(fn func(i int) error) []error {
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// requireOneWinner checks that exactly one error is nil and the others match
// loser, returning the winner's index.
func requireOneWinner(t require.TestingT, errs []error, loser error, what string) int {
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			require.FailNow(t, fmt.Sprintf("%s: writers %d and %d both succeeded; exactly one may", what, winner, i))
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			require.FailNow(t, fmt.Sprintf("%s: writer %d failed with %q; losers must get an error matching %q", what, i, err, loser))
		}
	}
	require.GreaterOrEqual(t, winner, 0, "%s: no writer succeeded; exactly one must", what)
	return winner
}

func testConcurrentUpdatesOfOneVersion(h *harness) {
	base := h.create(newDataplane("default", "dp-1", map[string]string{"writer": "none"}))
	results := make([]*resource.Resource, writers)
	errs := race(func(i int) error {
		next, err := h.reg.Clone(base)
		if err != nil {
			return err
		}
		next.Meta.Labels["writer"] = fmt.Sprint(i)
		results[i], err = h.s.Update(h.ctx, next)
		return err
	})
	w := requireOneWinner(h.t, errs, store.ErrConflict, fmt.Sprintf("%d Updates from the same version", writers))
	got := h.get(resource.DataplaneType, base.Key())
	require.Equal(h.t, fmt.Sprint(w), got.Meta.Labels["writer"], "the stored resource must be the winner's")
	requireSame(h.t, results[w], got, "Get after the race")
}

func testConcurrentCreatesOfOneKey(h *harness) {
	errs := race(func(i int) error {
		_, err := h.s.Create(h.ctx, newDataplane("default", "dp-1", map[string]string{"writer": fmt.Sprint(i)}))
		return err
	})
	w := requireOneWinner(h.t, errs, store.ErrAlreadyExists, fmt.Sprintf("%d Creates of the same key", writers))
	got := h.get(resource.DataplaneType, resource.Key{Mesh: "default", Name: "dp-1"})
	require.Equal(h.t, fmt.Sprint(w), got.Meta.Labels["writer"], "the stored resource must be the winner's")
	require.Equal(h.t, 1, h.list(resource.DataplaneType, store.ListOptions{}).Total)
}

func testConcurrentDeletesOfOneVersion(h *harness) {
	base := h.create(newDataplane("default", "dp-1", nil))
	errs := race(func(int) error {
		return h.s.Delete(h.ctx, resource.DataplaneType, base.Key(), store.DeleteOptions{Version: base.Meta.Version})
	})
	// A loser sees either the resource gone (ErrNotFound) or, in a backend
	// that checks the version first, a conflict; both mean "not yours".
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			require.Less(h.t, winner, 0, "Deletes %d and %d both succeeded; exactly one may", winner, i)
			winner = i
		case !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict):
			h.t.Fatalf("Delete %d failed with %q; expected ErrNotFound or ErrConflict", i, err)
		}
	}
	require.GreaterOrEqual(h.t, winner, 0, "no Delete succeeded")
	h.requireNotFound(resource.DataplaneType, base.Key())
}

func testConcurrentWritersOfDistinctKeys(h *harness) {
	const each = 10
	errs := race(func(i int) error {
		for j := range each {
			r, err := h.s.Create(h.ctx, newDataplane(fmt.Sprintf("m%d", i%3), fmt.Sprintf("w%02d-%02d", i, j), nil))
			if err != nil {
				return err
			}
			next, err := h.reg.Clone(r)
			if err != nil {
				return err
			}
			next.Meta.Labels = map[string]string{"n": fmt.Sprint(j)}
			if _, err := h.s.Update(h.ctx, next); err != nil {
				return err
			}
			if j%2 == 1 {
				if err := h.s.Delete(h.ctx, r.Type, r.Key(), store.DeleteOptions{}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for i, err := range errs {
		require.NoError(h.t, err, "writer %d: writes to distinct keys must not interfere", i)
	}
	l := h.list(resource.DataplaneType, store.ListOptions{})
	require.Equal(h.t, writers*each/2, l.Total, "every writer keeps its even-numbered resources")
	require.Equal(h.t, sortedKeys(keysOf(l.Items)), keysOf(l.Items), "List stays ordered after concurrent writes")
}
