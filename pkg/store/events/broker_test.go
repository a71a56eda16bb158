package events_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/events"
)

const waitFor = 5 * time.Second

// ev returns a distinguishable Updated event numbered n from publisher p.
func ev(p, n int) store.Event {
	return store.Event{
		Kind:    store.Updated,
		Type:    "Dataplane",
		Key:     resource.Key{Mesh: "m" + strconv.Itoa(p), Name: strconv.Itoa(n)},
		Version: strconv.Itoa(n),
	}
}

var resync = store.Event{Kind: store.Resync}

// receive reads n events from ch, failing if they do not arrive in time.
func receive(t *testing.T, ch <-chan store.Event, n int) []store.Event {
	t.Helper()
	out := make([]store.Event, 0, n)
	timeout := time.After(waitFor)
	for len(out) < n {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d expected events: %v", len(out), n, out)
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("received %d of %d expected events within %s: %v", len(out), n, waitFor, out)
		}
	}
	return out
}

// requireEmpty fails when ch holds an event right now.
func requireEmpty(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	select {
	case e, ok := <-ch:
		t.Fatalf("expected no further event, got %v (open=%v)", e, ok)
	default:
	}
}

// requireClosed waits for ch to be closed, discarding events still queued.
func requireClosed(t *testing.T, ch <-chan store.Event) {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("channel not closed within %s after its context ended", waitFor)
		}
	}
}

func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	b := events.NewBroker(100)
	a := b.Subscribe(t.Context())
	c := b.Subscribe(t.Context())
	var want []store.Event
	for i := range 50 {
		want = append(want, ev(0, i))
		b.Publish(ev(0, i))
	}
	for name, ch := range map[string]<-chan store.Event{"first": a, "second": c} {
		got := receive(t, ch, len(want))
		require.Empty(t, cmp.Diff(want, got), "%s subscriber: events differ from publish order (-want +got)", name)
		requireEmpty(t, ch)
	}
}

func TestSubscriberSeesOnlyLaterEvents(t *testing.T) {
	b := events.NewBroker(10)
	b.Publish(ev(0, 1))
	ch := b.Subscribe(t.Context())
	b.Publish(ev(0, 2))
	require.Equal(t, []store.Event{ev(0, 2)}, receive(t, ch, 1))
	requireEmpty(t, ch)
}

// settle reads ch until it stays quiet for a while, returning what arrived.
func settle(t *testing.T, ch <-chan store.Event) []store.Event {
	t.Helper()
	var out []store.Event
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed unexpectedly after %v", out)
			}
			out = append(out, e)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

// requireFaithful checks that got is what a subscriber with the given queue
// size may receive for published: published events in order, a gap only
// right after a Resync, the last published event either received or
// followed by a Resync, and no more than the queue (plus the one event being
// handed over) holds.
func requireFaithful(t *testing.T, published, got []store.Event, queueSize int) {
	t.Helper()
	pos := map[store.Event]int{}
	for i, e := range published {
		pos[e] = i
	}
	last, resynced := -1, false
	for i, e := range got {
		if e.Kind == store.Resync {
			resynced = true
			continue
		}
		j, ok := pos[e]
		switch {
		case !ok:
			t.Fatalf("event %d %v was never published; got %v", i, e, got)
		case j <= last:
			t.Fatalf("event %d %v arrived out of publish order; got %v", i, e, got)
		case j != last+1 && !resynced:
			t.Fatalf("events %d–%d were dropped without a Resync before %v; got %v", last+1, j-1, e, got)
		}
		last, resynced = j, false
	}
	if last != len(published)-1 && !resynced {
		t.Fatalf("the last published events were dropped without a trailing Resync; got %v", got)
	}
	if len(got) > queueSize+2 {
		t.Fatalf("a subscriber with queue size %d received %d events after falling behind; got %v", queueSize, len(got), got)
	}
}

func TestSlowSubscriberGetsResyncInsteadOfBlockingOrLosingSilently(t *testing.T) {
	const queueSize, n = 4, 50
	b := events.NewBroker(queueSize)
	slow := b.Subscribe(t.Context())
	fast := b.Subscribe(t.Context())

	// The fast subscriber receives each event before the next is published,
	// proving the slow one (which reads nothing yet) blocks neither the
	// publisher nor other subscribers.
	var published []store.Event
	for i := range n {
		published = append(published, ev(0, i))
		b.Publish(ev(0, i))
		require.Equal(t, []store.Event{ev(0, i)}, receive(t, fast, 1), "fast subscriber, event %d", i)
	}

	got := settle(t, slow)
	require.Contains(t, got, resync, "a subscriber that overflowed must receive a Resync")
	requireFaithful(t, published, got, queueSize)
}

func TestPublishNeverBlocksOnAnUnreadSubscriber(t *testing.T) {
	b := events.NewBroker(1)
	ch := b.Subscribe(t.Context())
	done := make(chan struct{})
	var published []store.Event
	go func() {
		defer close(done)
		for i := range 100_000 {
			published = append(published, ev(0, i))
			b.Publish(ev(0, i))
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Publish blocked on a subscriber that never reads")
	}
	got := settle(t, ch)
	require.Contains(t, got, resync)
	requireFaithful(t, published, got, 1)
}

func TestResyncReachesEverySubscriberAndReplacesQueuedEvents(t *testing.T) {
	b := events.NewBroker(10)
	a := b.Subscribe(t.Context())
	c := b.Subscribe(t.Context())
	b.Publish(ev(0, 1))
	b.Publish(ev(0, 2))
	b.Resync()
	b.Publish(ev(0, 3))
	for _, ch := range []<-chan store.Event{a, c} {
		got := settle(t, ch)
		// Event 1 may already be on its way to the subscriber; event 2 is
		// still queued and is replaced by the Resync.
		if len(got) == 3 {
			require.Equal(t, ev(0, 1), got[0], "only the event being handed over may precede the Resync")
			got = got[1:]
		}
		require.Empty(t, cmp.Diff([]store.Event{resync, ev(0, 3)}, got),
			"after Resync a subscriber gets Resync then only later events (-want +got)")
	}
}

func TestChannelClosesWhenContextEnds(t *testing.T) {
	b := events.NewBroker(10)
	ctx, cancel := context.WithCancel(t.Context())
	ch := b.Subscribe(ctx)
	other := b.Subscribe(t.Context())
	require.Equal(t, 2, b.Subscribers())

	b.Publish(ev(0, 1))
	cancel()
	requireClosed(t, ch)
	require.Eventually(t, func() bool { return b.Subscribers() == 1 }, waitFor, time.Millisecond,
		"a cancelled subscriber must be removed from the broker")

	// Publishing after a subscriber left must neither panic nor affect others.
	b.Publish(ev(0, 2))
	require.Equal(t, []store.Event{ev(0, 1), ev(0, 2)}, receive(t, other, 2))
}

func TestSubscribeWithEndedContextReturnsClosedChannel(t *testing.T) {
	b := events.NewBroker(10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ch := b.Subscribe(ctx)
	requireClosed(t, ch)
	require.Eventually(t, func() bool { return b.Subscribers() == 0 }, waitFor, time.Millisecond)
}

func TestZeroQueueSizeUsesDefault(t *testing.T) {
	b := events.NewBroker(0)
	ch := b.Subscribe(t.Context())
	for i := range events.DefaultQueueSize {
		b.Publish(ev(0, i))
	}
	got := receive(t, ch, events.DefaultQueueSize)
	require.Equal(t, ev(0, 0), got[0], "no overflow expected within the default queue size")
	require.Equal(t, ev(0, events.DefaultQueueSize-1), got[len(got)-1])
}

// TestConcurrentPublishersAndSubscribers is meant for -race: publishers,
// readers and cancelling subscribers all run at once. Each reader must see
// every publisher's events in that publisher's order, with gaps only right
// after a Resync.
func TestConcurrentPublishersAndSubscribers(t *testing.T) {
	const publishers, perPublisher, readers = 8, 2000, 6
	b := events.NewBroker(64)

	var readersWG sync.WaitGroup
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	for r := range readers {
		rctx := ctx
		if r%2 == 1 {
			// Half of the readers leave early, while publishing goes on.
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(ctx, time.Duration(r)*time.Millisecond)
			defer cancel()
		}
		ch := b.Subscribe(rctx)
		readersWG.Go(func() {
			last := make([]int, publishers)
			for i := range last {
				last[i] = -1
			}
			// gapAllowed[p]: a Resync arrived since publisher p's last event.
			gapAllowed := make([]bool, publishers)
			for e := range ch {
				if e.Kind == store.Resync {
					for i := range gapAllowed {
						gapAllowed[i] = true
					}
					continue
				}
				p, _ := strconv.Atoi(e.Key.Mesh[1:])
				n, _ := strconv.Atoi(e.Key.Name)
				if n <= last[p] || (n != last[p]+1 && !gapAllowed[p]) {
					t.Errorf("reader %d: publisher %d event %d after %d without a Resync in between", r, p, n, last[p])
					return
				}
				last[p] = n
				gapAllowed[p] = false
				if r%3 == 0 {
					time.Sleep(time.Microsecond) // a slow reader
				}
			}
		})
	}

	var pubWG sync.WaitGroup
	for p := range publishers {
		pubWG.Go(func() {
			for n := range perPublisher {
				b.Publish(ev(p, n))
				if n%500 == 0 {
					b.Resync()
				}
			}
		})
	}
	pubWG.Wait()
	stop()
	readersWG.Wait()
	require.Eventually(t, func() bool { return b.Subscribers() == 0 }, waitFor, time.Millisecond)
}
