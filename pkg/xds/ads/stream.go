package ads

import (
	"errors"
	"io"
	"strconv"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// maxOtherTypes bounds the types a stream may ask for that a snapshot does
// not hold (they are never answered, as go-control-plane never answered
// them either); more end the stream.
const maxOtherTypes = 8

// stream is what SotW and delta streams share: admission, the watch on the
// proxy's snapshots, nonces, and answering Publishes from a goroutine that
// lives only while there is something to send.
type stream struct {
	srv   *Server
	ss    grpc.ServerStream
	hooks StreamHooks

	// mu guards everything below and serialises sends. The stream's
	// goroutine holds it while it handles a request; the notification
	// goroutine while it answers a Publish.
	mu       sync.Mutex
	admitted bool
	watch    *cache.Watch
	closed   bool
	nonce    uint64
	failed   error // a send of the notification goroutine failed

	// respond answers every waiting request from the current snapshot;
	// called with mu held.
	respond func() error

	nmu     sync.Mutex
	dirty   bool
	running bool
}

func (st *stream) init(srv *Server, ss grpc.ServerStream, delta bool) {
	ids := &srv.sotwIDs
	if delta {
		ids = &srv.deltaIDs
	}
	st.srv, st.ss = srv, ss
	st.hooks = srv.hooks.Open(ss.Context(), StreamInfo{ID: ids.Add(1), Delta: delta})
}

// serve reads requests until the stream ends; handle runs with mu held.
func serve[R any](st *stream, handle func(*R) error) error {
	defer st.close()
	for {
		req := new(R)
		if err := st.ss.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		st.mu.Lock()
		err := st.failed
		if err == nil {
			err = handle(req)
		}
		st.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// checkNode admits the stream on its first request and checks the node of
// later ones; it returns the error that ends the stream.
func (st *stream) checkNode(node *corev3.Node, typeURL string) error {
	if !st.admitted {
		id, err := st.hooks.Admit(node)
		if err != nil {
			return err
		}
		st.admitted = true
		st.watch = st.srv.cache.Watch(id, st.notify)
	} else if node != nil {
		if err := st.hooks.Check(node); err != nil {
			return err
		}
	}
	if typeURL == "" {
		return status.Error(codes.InvalidArgument, "type URL is required for ADS")
	}
	return nil
}

// snapshot returns the proxy's current snapshot, or nil.
func (st *stream) snapshot() *cache.Snapshot {
	if st.watch == nil {
		return nil
	}
	return st.watch.Snapshot()
}

// current returns the proxy's resources of type t from its current
// snapshot (nil when the type is not held); false before the proxy has a
// snapshot.
func (st *stream) current(held bool, t cache.Type) (*cache.List, bool) {
	snap := st.snapshot()
	if snap == nil {
		return nil, false
	}
	if !held {
		return nil, true
	}
	return snap.List(t), true
}

// typeState returns a stream's state for the type url, made by create on
// the type's first request. A stream may ask for at most maxOtherTypes
// types that snapshots do not hold.
func typeState[T any](held *[cache.NumTypes]*T, others *map[string]*T, url string, create func(url string, t cache.Type, held bool) *T) (*T, error) {
	t, ok := cache.TypeOf(url)
	if ok {
		if held[t] == nil {
			held[t] = create(url, t, true)
		}
		return held[t], nil
	}
	if ts := (*others)[url]; ts != nil {
		return ts, nil
	}
	if len(*others) >= maxOtherTypes {
		return nil, status.Errorf(codes.InvalidArgument, "too many resource types that are not served; %s is one", url)
	}
	if *others == nil {
		*others = map[string]*T{}
	}
	ts := create(url, t, false)
	(*others)[url] = ts
	return ts, nil
}

// respondEach calls respond with the state of every type a stream asked
// for: those snapshots hold in type order, then the others.
func respondEach[T any](held *[cache.NumTypes]*T, others map[string]*T, respond func(*T) error) error {
	for _, ts := range held {
		if ts != nil {
			if err := respond(ts); err != nil {
				return err
			}
		}
	}
	for _, ts := range others {
		if err := respond(ts); err != nil {
			return err
		}
	}
	return nil
}

// nextNonce returns a nonce no earlier response of the stream had.
func (st *stream) nextNonce() string {
	st.nonce++
	return strconv.FormatUint(st.nonce, 10)
}

// send sends a response.
func (st *stream) send(r *response) error { return st.ss.SendMsg(r) }

// notify is the cache's callback after a Publish: it makes sure a
// goroutine answers from the new snapshot, without waiting for it.
func (st *stream) notify() {
	st.nmu.Lock()
	st.dirty = true
	start := !st.running
	st.running = true
	st.nmu.Unlock()
	if start {
		go st.drain()
	}
}

// drain answers Publishes until none is left to answer.
func (st *stream) drain() {
	for {
		st.nmu.Lock()
		if !st.dirty {
			st.running = false
			st.nmu.Unlock()
			return
		}
		st.dirty = false
		st.nmu.Unlock()
		st.mu.Lock()
		if !st.closed && st.failed == nil {
			if err := st.respond(); err != nil {
				st.failed = err
				st.srv.log.Debug("sending an xDS response failed", "error", err)
			}
		}
		st.mu.Unlock()
	}
}

// close ends the stream's watch and tells the hooks.
func (st *stream) close() {
	st.mu.Lock()
	st.closed = true
	if st.watch != nil {
		st.watch.Close()
	}
	st.mu.Unlock()
	st.hooks.Closed()
}

// answer accounts for a request's response_nonce: when it is the nonce of
// the type's last response and that response had no answer yet, the
// request is the ACK (or NACK, with an error detail) of its version.
func (st *stream) answer(a *answered, nonce string, errorDetail *statuspb.Status, typeURL string) {
	if a.nonce == "" || nonce != a.nonce || a.done {
		return
	}
	a.done = true
	if errorDetail != nil {
		st.hooks.Rejected(typeURL, a.version, errorDetail.GetMessage())
		return
	}
	st.hooks.Acknowledged(typeURL, a.version)
}

// answered is the last response of a type and whether the proxy answered
// it.
type answered struct {
	nonce   string
	version string
	done    bool
}

// sent records a response.
func (a *answered) sent(nonce, version string) { a.nonce, a.version, a.done = nonce, version, false }
