package cache

import (
	"sync"
	"sync/atomic"
)

// node is one proxy: its snapshot and the streams watching it. Publish
// holds mu while it builds the proxy's next snapshot, so publishing one
// proxy never waits for another; streams read the snapshot without a lock.
type node struct {
	mu       sync.Mutex
	snap     atomic.Pointer[Snapshot]
	watchers []*Watch
	dead     bool // removed from the cache; look it up again
}

// lockNode returns the node id, created if needed, locked.
func (c *Cache) lockNode(id string) *node {
	for {
		c.mu.RLock()
		n := c.nodes[id]
		c.mu.RUnlock()
		if n == nil {
			c.mu.Lock()
			if n = c.nodes[id]; n == nil {
				n = &node{}
				c.nodes[id] = n
			}
			c.mu.Unlock()
		}
		n.mu.Lock()
		if !n.dead {
			return n
		}
		n.mu.Unlock()
	}
}

// dropIfUnused removes n when it has neither a snapshot nor watchers.
func (c *Cache) dropIfUnused(id string, n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.dead && n.snap.Load() == nil && len(n.watchers) == 0 && c.nodes[id] == n {
		n.dead = true
		delete(c.nodes, id)
	}
}

// Watch is one stream's registration on a proxy's snapshots.
type Watch struct {
	c      *Cache
	id     string
	n      *node
	notify func()
}

// Watch registers interest in the snapshots of node id: notify is called
// after every Publish that changes a type of the proxy (it must not block;
// streams only take note and answer from their own goroutine). The
// snapshot of a watched proxy survives Forget. Close the watch when the
// stream ends.
func (c *Cache) Watch(id string, notify func()) *Watch {
	n := c.lockNode(id)
	defer n.mu.Unlock()
	w := &Watch{c: c, id: id, n: n, notify: notify}
	n.watchers = append(n.watchers, w)
	return w
}

// Snapshot returns the proxy's current snapshot, or nil before its first
// Publish.
func (w *Watch) Snapshot() *Snapshot { return w.n.snap.Load() }

// Close ends the watch.
func (w *Watch) Close() {
	n := w.n
	n.mu.Lock()
	for i, o := range n.watchers {
		if o == w {
			n.watchers = append(n.watchers[:i], n.watchers[i+1:]...)
			break
		}
	}
	n.mu.Unlock()
	w.c.dropIfUnused(w.id, n)
}
