package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/atoll-mesh/atoll/pkg/store"
)

// barrierKind marks a Watch barrier travelling through the broker; it never
// reaches a subscriber.
const barrierKind store.EventKind = 255

// barrierTimeout bounds the round trip Watch makes to place its barrier.
const barrierTimeout = 2 * time.Second

func newInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Watch streams change events until ctx ends or the store is closed, then
// closes the channel.
// Events of writes made through any store on the same database arrive
// alike; after a lost listening connection a store.Resync arrives once
// listening again.
//
// Notifications travel asynchronously, so a write that finished just before
// Watch was called could still be on its way. Watch therefore sends a
// barrier notification (one round trip) and drops what arrives before it:
// the stream holds exactly the writes committed after the barrier, in
// commit order. When the barrier cannot be sent (database down) nothing is
// dropped, and the Resync that follows recovery covers the gap.
func (s *Store) Watch(ctx context.Context) <-chan store.Event {
	// The subscription ends with ctx or with the store.
	ctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(s.life, cancel)
	in := s.broker.Subscribe(ctx)
	out := make(chan store.Event)
	id := strconv.FormatInt(s.barriers.Add(1), 10)
	payload, _ := json.Marshal(notification{Kind: "B", Instance: s.instance, Barrier: id})
	err := ctx.Err()
	if err == nil {
		bctx, cancelBarrier := context.WithTimeout(ctx, min(s.timeout, barrierTimeout))
		_, err = s.pool.Exec(bctx, "SELECT pg_notify($1, $2)", Channel, string(payload))
		cancelBarrier()
	}
	waiting := err == nil
	if err != nil && ctx.Err() == nil {
		s.log.Warn("watch: could not place the start barrier; early events may repeat", "error", err)
	}
	go func() {
		forward(ctx, in, out, id, waiting)
		stopOnClose()
		cancel()
	}()
	return out
}

// forward copies events from in to out, dropping barriers and, while
// waiting, everything before this subscription's own barrier (a Resync
// also ends the wait: the barrier may have been lost with the connection).
// It closes out after in is closed.
func forward(ctx context.Context, in <-chan store.Event, out chan<- store.Event, id string, waiting bool) {
	defer close(out)
	for e := range in {
		if e.Kind == barrierKind {
			if e.Version == id {
				waiting = false
			}
			continue
		}
		if waiting {
			if e.Kind != store.Resync {
				continue
			}
			waiting = false
		}
		select {
		case out <- e:
		case <-ctx.Done():
			// The subscriber is gone; drain until the broker closes in.
		}
	}
}
