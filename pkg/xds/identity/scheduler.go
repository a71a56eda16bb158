package identity

import (
	"container/heap"
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Start runs the renewal scheduler until ctx ends: one timer, set to the
// earliest refresh time in the queue. When it fires, every proxy whose
// certificate is due is reported through Due and TakeDue.
func (c *Cache) Start(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		var wait time.Duration = -1
		if len(c.queue) > 0 {
			wait = max(c.queue[0].refreshAt.Sub(c.now()), 0)
		}
		c.mu.Unlock()
		var timerC <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.wake:
			timer.Stop()
		case <-timerC:
			c.fire()
		}
	}
}

// fire moves every due entry from the queue to the due set.
func (c *Cache) fire() {
	c.mu.Lock()
	now := c.now()
	n := 0
	for len(c.queue) > 0 && !c.queue[0].refreshAt.After(now) {
		e := heap.Pop(&c.queue).(*entry)
		c.due[e.key] = struct{}{}
		n++
	}
	c.mu.Unlock()
	if n > 0 {
		c.renewed.Add(float64(n))
		select {
		case c.dueC <- struct{}{}:
		default:
		}
	}
}

// Due receives a value when proxies are due for a new certificate.
func (c *Cache) Due() <-chan struct{} { return c.dueC }

// TakeDue returns the proxies due for a new certificate since the last call,
// sorted. Regenerating them (Get) issues their new certificates.
func (c *Cache) TakeDue() []resource.Key {
	c.mu.Lock()
	due := c.due
	c.due = map[resource.Key]struct{}{}
	c.mu.Unlock()
	return slices.SortedFunc(maps.Keys(due), func(a, b resource.Key) int {
		return strings.Compare(a.String(), b.String())
	})
}

// schedule queues e by its refresh time and wakes the scheduler when e
// became the earliest; the caller holds mu.
func (c *Cache) schedule(e *entry) {
	if e.index >= 0 {
		heap.Fix(&c.queue, e.index)
	} else {
		heap.Push(&c.queue, e)
	}
	if e.index == 0 {
		c.poke()
	}
}

// poke wakes the scheduler to look at the queue again.
func (c *Cache) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// queue is a min-heap of entries by refresh time.
type queue []*entry

// Len, Less, Swap, Push and Pop implement heap.Interface.
func (q queue) Len() int { return len(q) }

// Less orders entries by refresh time.
func (q queue) Less(i, j int) bool { return q[i].refreshAt.Before(q[j].refreshAt) }

// Swap swaps two entries and their indexes.
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

// Push appends an entry.
func (q *queue) Push(x any) {
	e := x.(*entry)
	e.index = len(*q)
	*q = append(*q, e)
}

// Pop removes the last entry.
func (q *queue) Pop() any {
	old := *q
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*q = old[:n-1]
	return e
}
