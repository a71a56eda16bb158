// Package events fans store change events out to subscribers. A Broker never
// blocks the writer that publishes: each subscriber has a bounded queue, and a
// subscriber that falls behind loses its queued events and receives a single
// store.Resync in their place, so it re-reads what it needs instead of
// silently missing a change.
package events

import (
	"context"
	"sync"

	"github.com/atoll-mesh/atoll/pkg/store"
)

// DefaultQueueSize is the per-subscriber queue length NewBroker uses when
// given a size below 1.
const DefaultQueueSize = 1024

// Broker delivers every published event to every current subscriber, in
// publish order. It is safe for concurrent use. The zero value is not usable;
// call NewBroker.
type Broker struct {
	queueSize int

	// mu orders publishers against each other, so every subscriber sees the
	// same publish order, and guards subs.
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// subscriber is one Subscribe call: a bounded queue filled by publishers and
// a goroutine (forward) moving events from it to the subscriber's channel.
type subscriber struct {
	out  chan store.Event // unbuffered; only forward sends on and closes it
	wake chan struct{}    // capacity 1: "the queue may be non-empty"

	mu    sync.Mutex
	queue ring
}

// NewBroker returns a broker whose subscribers each queue up to queueSize
// events; a queueSize below 1 selects DefaultQueueSize.
func NewBroker(queueSize int) *Broker {
	if queueSize < 1 {
		queueSize = DefaultQueueSize
	}
	return &Broker{queueSize: queueSize, subs: map[*subscriber]struct{}{}}
}

// Subscribe returns a channel that receives every event published from now
// on, in publish order, until ctx ends; then the channel is closed and events
// still queued are discarded. A subscriber that lets its queue fill up has
// the queued events replaced by one store.Resync event, after which it
// receives later events as usual.
func (b *Broker) Subscribe(ctx context.Context) <-chan store.Event {
	s := &subscriber{
		out:   make(chan store.Event),
		wake:  make(chan struct{}, 1),
		queue: newRing(b.queueSize),
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go b.forward(ctx, s)
	return s.out
}

// forward delivers s's queue to s.out until ctx ends, then detaches s.
func (b *Broker) forward(ctx context.Context, s *subscriber) {
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		close(s.out)
	}()
	for {
		s.mu.Lock()
		e, ok := s.queue.pop()
		s.mu.Unlock()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		// e is older than everything still queued, so holding it outside
		// the queue keeps the order even if the queue overflows meanwhile.
		select {
		case s.out <- e:
		case <-ctx.Done():
			return
		}
	}
}

// Publish delivers e to every subscriber without blocking. A subscriber whose
// queue is full loses everything queued and receives store.Resync instead
// (e itself is covered by that Resync).
func (b *Broker) Publish(e store.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		if !s.queue.push(e) {
			s.queue.reset(store.Event{Kind: store.Resync})
		}
		s.mu.Unlock()
		s.notify()
	}
}

// Resync tells every subscriber that events may have been lost, for example
// after a backend reconnects to its change feed: queued events are dropped
// and each subscriber receives one store.Resync.
func (b *Broker) Resync() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		s.queue.reset(store.Event{Kind: store.Resync})
		s.mu.Unlock()
		s.notify()
	}
}

// Subscribers returns how many subscribers are attached, for metrics and
// tests. A subscriber whose context ended is detached shortly after.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// notify wakes the forwarding goroutine without blocking.
func (s *subscriber) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ring is a fixed-capacity FIFO of events.
type ring struct {
	buf   []store.Event
	head  int
	count int
}

func newRing(size int) ring { return ring{buf: make([]store.Event, size)} }

// push appends e, reporting false (and changing nothing) when full.
func (r *ring) push(e store.Event) bool {
	if r.count == len(r.buf) {
		return false
	}
	r.buf[(r.head+r.count)%len(r.buf)] = e
	r.count++
	return true
}

// pop removes and returns the oldest event.
func (r *ring) pop() (store.Event, bool) {
	if r.count == 0 {
		return store.Event{}, false
	}
	e := r.buf[r.head]
	r.buf[r.head] = store.Event{}
	r.head = (r.head + 1) % len(r.buf)
	r.count--
	return e, true
}

// reset drops every queued event and leaves only e.
func (r *ring) reset(e store.Event) {
	clear(r.buf)
	r.head, r.count = 0, 0
	r.push(e)
}
