package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// record is what one proxy observed. Figures "since the mark" are reset
// (lazily, by epoch) each time the harness sends "mark"; the connection
// state and the hashes of watched resources are not.
type record struct {
	mu       sync.Mutex
	epoch    uint64
	attached bool // the current stream has received a response
	ready    bool // the current stream has delivered every required type
	hashes   map[string]uint64
	since    sinceMark
}

// sinceMark is what happened to a proxy since the last mark.
type sinceMark struct {
	readyAt     int64 // became ready (Unix ns), 0 if it did not
	attachedAt  int64 // first response on a stream, 0 if none
	disconnects int   // attached streams that ended
	failures    int   // attempts that never got a response
	nacks       int
	types       [numTypes]typeStats
	watched     map[string]int64 // first change of a watched resource (Unix ns)
}

// typeStats counts the accepted responses of one type.
type typeStats struct {
	n, changed  int
	first, last int64 // Unix ns, after the ACK was sent
	bytes       int64
	resources   int64
}

// syncEpoch resets the figures since the mark when a mark happened.
func (r *record) syncEpoch(epoch uint64) {
	if r.epoch != epoch {
		r.epoch = epoch
		r.since = sinceMark{}
	}
}

// response records an accepted response, timed after its ACK was sent.
func (r *record) response(g *generator, t xdsType, changed bool, count, size int, watched []resourceInfo, becameReady bool) {
	now := time.Now().UnixNano()
	g.markMu.RLock()
	defer g.markMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncEpoch(g.epoch)
	if !r.attached {
		r.attached = true
		g.attached.Add(1)
		if r.since.attachedAt == 0 {
			r.since.attachedAt = now
		}
	}
	ts := &r.since.types[t]
	ts.n++
	if changed {
		if ts.changed == 0 {
			g.changedCount[t].Add(1)
		}
		ts.changed++
	}
	if ts.first == 0 {
		ts.first = now
	}
	ts.last = now
	ts.bytes += int64(size)
	ts.resources += int64(count)
	for _, w := range watched {
		key := t.String() + ":" + w.name
		if r.hashes == nil {
			r.hashes = map[string]uint64{}
		}
		old, known := r.hashes[key]
		r.hashes[key] = w.hash
		if !known || old == w.hash {
			continue
		}
		if r.since.watched == nil {
			r.since.watched = map[string]int64{}
		}
		if r.since.watched[key] == 0 {
			r.since.watched[key] = now
			g.watchCount[key].Add(1)
		}
	}
	if becameReady {
		r.ready = true
		g.ready.Add(1)
		if r.since.readyAt == 0 {
			r.since.readyAt = now
			g.readySince.Add(1)
		}
	}
}

// nacked records a rejected response.
func (r *record) nacked(g *generator) {
	g.markMu.RLock()
	defer g.markMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncEpoch(g.epoch)
	r.since.nacks++
}

// disconnected records the end of a stream (or of a failed attempt).
func (r *record) disconnected(g *generator) {
	g.markMu.RLock()
	defer g.markMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncEpoch(g.epoch)
	if !r.attached {
		r.since.failures++
		return
	}
	r.since.disconnects++
	g.attached.Add(-1)
	if r.ready {
		g.ready.Add(-1)
	}
	r.attached, r.ready = false, false
}

// ProxyReport is one proxy's line of a report: what happened since the
// mark. Times are Unix nanoseconds, taken after the ACK was sent.
type ProxyReport struct {
	// Name of the dataplane.
	Name string `json:"name"`
	// Ready: the current stream delivered every required type.
	Ready bool `json:"ready"`
	// ReadyAt is when the proxy became ready since the mark.
	ReadyAt int64 `json:"readyAt,omitempty"`
	// AttachedAt is the first response since the mark on a new stream.
	AttachedAt int64 `json:"attachedAt,omitempty"`
	// Disconnects counts streams that ended since the mark.
	Disconnects int `json:"disconnects,omitempty"`
	// Failures counts connection attempts without a response.
	Failures int `json:"failures,omitempty"`
	// NACKs counts rejected responses.
	NACKs int `json:"nacks,omitempty"`
	// Types holds the accepted responses per type ("cds").
	Types map[string]TypeReport `json:"types,omitempty"`
	// Watched holds the first change of each watched resource, by
	// "TYPE:NAME".
	Watched map[string]int64 `json:"watched,omitempty"`
}

// TypeReport counts the accepted responses of one type.
type TypeReport struct {
	// Responses accepted.
	Responses int `json:"n"`
	// Changed counts responses with a new version (SotW) or with
	// resources (delta).
	Changed int `json:"changed"`
	// First and Last are the first and last arrival.
	First int64 `json:"first"`
	// Last is the last arrival.
	Last int64 `json:"last"`
	// Bytes received in those responses.
	Bytes int64 `json:"bytes"`
	// Resources carried by those responses.
	Resources int64 `json:"resources"`
}

// report returns what happened to the proxy since the mark.
func (r *record) report(name string, epoch uint64) ProxyReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncEpoch(epoch)
	out := ProxyReport{
		Name: name, Ready: r.ready, ReadyAt: r.since.readyAt, AttachedAt: r.since.attachedAt,
		Disconnects: r.since.disconnects, Failures: r.since.failures, NACKs: r.since.nacks,
	}
	for t := range numTypes {
		ts := r.since.types[t]
		if ts.n == 0 {
			continue
		}
		if out.Types == nil {
			out.Types = map[string]TypeReport{}
		}
		out.Types[t.String()] = TypeReport{Responses: ts.n, Changed: ts.changed, First: ts.first, Last: ts.last, Bytes: ts.bytes, Resources: ts.resources}
	}
	if len(r.since.watched) > 0 {
		out.Watched = make(map[string]int64, len(r.since.watched))
		for k, v := range r.since.watched {
			out.Watched[k] = v
		}
	}
	return out
}

// counters are the generator-wide figures "wait" polls.
type counters struct {
	attached   atomic.Int64             // proxies with an attached stream now
	ready      atomic.Int64             // proxies ready now
	readySince atomic.Int64             // proxies that became ready since the mark
	watchCount map[string]*atomic.Int64 // by "TYPE:NAME"
	// changedCount counts, per type, the proxies that accepted a new
	// version since the mark.
	changedCount [numTypes]atomic.Int64
}
