package server

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// trackerEvent is a connection change to tell the ProxyTracker.
type trackerEvent struct {
	key       resource.Key
	flavour   ir.Flavour
	connected bool
}

// notifier tells the ProxyTracker about connection changes in the order
// they happened, from one goroutine that runs while events are queued, so
// streams never wait for the tracker and no lock is held while it runs.
type notifier struct {
	tracker ProxyTracker
	log     *slog.Logger

	mu      sync.Mutex
	queue   []trackerEvent
	running bool
}

// enqueue adds e; callers serialize enqueue with the changes it reports.
func (n *notifier) enqueue(e trackerEvent) {
	if n.tracker == nil {
		return
	}
	n.mu.Lock()
	n.queue = append(n.queue, e)
	if !n.running {
		n.running = true
		go n.drain()
	}
	n.mu.Unlock()
}

func (n *notifier) drain() {
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			n.running = false
			n.queue = nil
			n.mu.Unlock()
			return
		}
		e := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.deliver(e)
	}
}

func (n *notifier) deliver(e trackerEvent) {
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("the proxy tracker panicked", "panic", fmt.Sprint(r), "dataplane", e.key.String(), "stack", string(debug.Stack()))
		}
	}()
	if e.connected {
		n.tracker.ProxyConnected(e.key, e.flavour)
	} else {
		n.tracker.ProxyDisconnected(e.key)
	}
}
