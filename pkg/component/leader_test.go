package component

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// scriptedElector hands out leadership when the test says so, the way a
// lease in a shared store would as instances come and go.
type scriptedElector struct {
	gain      chan struct{} // the test grants leadership
	lose      chan struct{} // the test revokes it
	termEnded chan struct{} // the elector reports that lead returned
}

func newScriptedElector() *scriptedElector {
	return &scriptedElector{
		gain:      make(chan struct{}),
		lose:      make(chan struct{}),
		termEnded: make(chan struct{}, 16),
	}
}

func (e *scriptedElector) Campaign(ctx context.Context, lead func(term context.Context)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.gain:
		}
		term, endTerm := context.WithCancel(ctx)
		led := make(chan struct{})
		go func() {
			defer close(led)
			lead(term)
		}()
		select {
		case <-e.lose:
		case <-ctx.Done():
		case <-led:
		}
		endTerm()
		<-led // never campaign again while the last term's work runs
		e.termEnded <- struct{}{}
	}
}

func TestLeaderGroupFollowsLeadershipAcrossTerms(t *testing.T) {
	elector := newScriptedElector()
	gc := newProbe("gc")
	everywhere := newProbe("everywhere")
	group := NewLeaderGroup(discard(), elector, Options{Name: "leader"}, gc)
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, NewManager(discard(), Options{}, everywhere, group))

	recv(t, everywhere.started, "the non-leader component to start")
	require.False(t, group.IsLeader())
	require.Empty(t, gc.started, "leader-only components wait for leadership")

	for term := range 3 {
		elector.gain <- struct{}{}
		recv(t, gc.started, "gc to start on gaining leadership")
		require.True(t, group.IsLeader(), "term %d", term)

		elector.lose <- struct{}{}
		require.ErrorIs(t, recv(t, gc.stopped, "gc to stop on losing leadership"), context.Canceled)
		recv(t, elector.termEnded, "the term to end")
		require.False(t, group.IsLeader(), "term %d", term)
	}
	require.Empty(t, everywhere.stopped, "losing leadership leaves other components alone")

	elector.gain <- struct{}{}
	recv(t, gc.started, "gc to start for the last term")
	cancel()
	recv(t, gc.stopped, "gc to stop on shutdown")
	recv(t, everywhere.stopped, "the non-leader component to stop on shutdown")
	require.NoError(t, recv(t, done, "the manager to return"))
}

func TestLeaderGroupFailsWhenALeaderOnlyComponentFails(t *testing.T) {
	elector := newScriptedElector()
	boom := errors.New("boom")
	sibling := newProbe("sibling")
	failing := New("default-mesh", func(context.Context) error { <-sibling.started; return boom })
	group := NewLeaderGroup(discard(), elector, Options{}, sibling, failing)
	done := startAsync(t.Context(), group)

	elector.gain <- struct{}{}
	require.ErrorIs(t, recv(t, sibling.stopped, "the sibling to be cancelled"), context.Canceled)
	err := recv(t, done, "the group to return")
	require.ErrorIs(t, err, boom)
	require.EqualError(t, err, `component "default-mesh": boom`)
	require.False(t, group.IsLeader())
}

func TestLeaderGroupWithAlwaysLeader(t *testing.T) {
	gc := newProbe("gc")
	group := NewLeaderGroup(discard(), nil, Options{}, gc)
	require.Equal(t, "leader-group", group.Name())
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, group)

	recv(t, gc.started, "gc to start at once")
	require.True(t, group.IsLeader())
	cancel()
	recv(t, gc.stopped, "gc to stop")
	require.NoError(t, recv(t, done, "the group to return"))
}

func TestLeaderGroupHoldsTermWhenComponentsFinish(t *testing.T) {
	elector := newScriptedElector()
	ran := make(chan struct{}, 4)
	oneShot := New("create-default-mesh", func(context.Context) error { ran <- struct{}{}; return nil })
	group := NewLeaderGroup(discard(), elector, Options{}, oneShot)
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, group)

	elector.gain <- struct{}{}
	recv(t, ran, "the one-shot to run")
	require.Empty(t, elector.termEnded, "the term lasts until leadership is lost")
	elector.lose <- struct{}{}
	recv(t, elector.termEnded, "the term to end")

	elector.gain <- struct{}{}
	recv(t, ran, "the one-shot to run again in the next term")
	cancel()
	require.NoError(t, recv(t, done, "the group to return"))
}

type failingElector struct{ err error }

func (e failingElector) Campaign(context.Context, func(context.Context)) error { return e.err }

func TestLeaderGroupReportsElectorErrors(t *testing.T) {
	lost := errors.New("lease table missing")
	err := NewLeaderGroup(discard(), failingElector{lost}, Options{}).Start(t.Context())
	require.ErrorIs(t, err, lost)
	require.EqualError(t, err, "leader election: lease table missing")
}
