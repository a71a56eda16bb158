package component

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startAsync runs c.Start in a goroutine and returns its result channel.
func startAsync(ctx context.Context, c Component) <-chan error {
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	return done
}

func TestManagerStopsEverythingWhenContextEnds(t *testing.T) {
	a, b := newProbe("a"), newProbe("b")
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, NewManager(discard(), Options{}, a, b))

	recv(t, a.started, "a to start")
	recv(t, b.started, "b to start")
	cancel()
	require.ErrorIs(t, recv(t, a.stopped, "a to stop"), context.Canceled)
	require.ErrorIs(t, recv(t, b.stopped, "b to stop"), context.Canceled)
	require.NoError(t, recv(t, done, "the manager to return"),
		"components returning their context's error stopped cleanly")
}

func TestManagerCancelsOthersWhenOneFails(t *testing.T) {
	a, b := newProbe("a"), newProbe("b")
	boom := errors.New("listen tcp :5681: address already in use")
	fail := make(chan struct{})
	failing := New("api-server", func(ctx context.Context) error {
		<-fail
		return boom
	})
	done := startAsync(t.Context(), NewManager(discard(), Options{}, a, failing, b))

	recv(t, a.started, "a to start")
	recv(t, b.started, "b to start")
	close(fail)
	require.ErrorIs(t, recv(t, a.stopped, "a to be cancelled"), context.Canceled)
	require.ErrorIs(t, recv(t, b.stopped, "b to be cancelled"), context.Canceled)
	err := recv(t, done, "the manager to return")
	require.ErrorIs(t, err, boom)
	require.EqualError(t, err, `component "api-server": listen tcp :5681: address already in use`)
}

func TestManagerReportsComponentsThatDoNotStop(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stubborn := New("stubborn", func(context.Context) error {
		<-release // ignores its context
		return nil
	})
	polite := newProbe("polite")
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, NewManager(discard(), Options{GracePeriod: 20 * time.Millisecond}, stubborn, polite))

	recv(t, polite.started, "polite to start")
	cancel()
	err := recv(t, done, "the manager to give up on stubborn")
	require.EqualError(t, err, "components did not stop within 20ms: stubborn")
}

func TestManagerKeepsRunningWhenOneFinishes(t *testing.T) {
	logs := newLogRecorder()
	long := newProbe("long")
	var longCtx context.Context
	ctxSeen := make(chan struct{})
	longRunning := New("long", func(ctx context.Context) error {
		longCtx = ctx
		close(ctxSeen)
		return long.Start(ctx)
	})
	oneShot := New("create-default-mesh", func(context.Context) error { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, NewManager(logs.logger(), Options{}, longRunning, oneShot))

	recv(t, ctxSeen, "long to start")
	logs.waitFor(t, "component finished component=create-default-mesh")
	require.NoError(t, longCtx.Err(), "a component finishing does not stop the others")

	cancel()
	recv(t, long.stopped, "long to stop")
	require.NoError(t, recv(t, done, "the manager to return"))
}

func TestManagerReturnsWhenAllFinish(t *testing.T) {
	mgr := NewManager(discard(), Options{},
		New("one", func(context.Context) error { return nil }),
		New("two", func(context.Context) error { return nil }))
	require.NoError(t, recv(t, startAsync(t.Context(), mgr), "the manager to return"))
	require.NoError(t, recv(t, startAsync(t.Context(), NewManager(discard(), Options{})), "an empty manager to return"))
}

func TestManagerTurnsPanicsIntoFailures(t *testing.T) {
	other := newProbe("other")
	panicking := New("reconciler", func(context.Context) error {
		<-other.started // make sure the other one runs first
		panic("nil map write")
	})
	done := startAsync(t.Context(), NewManager(discard(), Options{}, other, panicking))

	require.ErrorIs(t, recv(t, other.stopped, "other to be cancelled"), context.Canceled)
	require.EqualError(t, recv(t, done, "the manager to return"), `component "reconciler": panic: nil map write`)
}

func TestManagerReportsErrorsWhileStopping(t *testing.T) {
	drainErr := errors.New("flushing access log: disk full")
	started := make(chan struct{})
	messy := New("messy", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return drainErr
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := startAsync(ctx, NewManager(discard(), Options{}, messy))

	recv(t, started, "messy to start")
	cancel()
	err := recv(t, done, "the manager to return")
	require.ErrorIs(t, err, drainErr)
	require.ErrorContains(t, err, `component "messy"`)
}

func TestManagersNest(t *testing.T) {
	inner := newProbe("inner")
	boom := errors.New("boom")
	fail := make(chan struct{})
	failing := New("failing", func(context.Context) error { <-fail; return boom })
	nested := NewManager(discard(), Options{Name: "xds"}, inner)
	done := startAsync(t.Context(), NewManager(discard(), Options{}, nested, failing))

	recv(t, inner.started, "inner to start")
	close(fail)
	require.ErrorIs(t, recv(t, inner.stopped, "inner to be cancelled"), context.Canceled)
	require.ErrorIs(t, recv(t, done, "the manager to return"), boom)
}

func TestNameOf(t *testing.T) {
	require.Equal(t, "diagnostics", NameOf(New("diagnostics", nil)))
	require.Equal(t, "probe", NameOf(newProbe("probe")))
	require.Equal(t, "other", NameOf(WithName("other", newProbe("probe"))))
	require.Equal(t, "manager", NameOf(NewManager(discard(), Options{})))
	require.Equal(t, "*component.unnamed", NameOf(&unnamed{}))
	require.Equal(t, "<nil>", NameOf(nil))
}

type unnamed struct{}

func (*unnamed) Start(context.Context) error { return nil }
