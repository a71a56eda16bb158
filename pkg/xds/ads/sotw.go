package ads

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// sotwStream is a state-of-the-world ADS stream.
type sotwStream struct {
	stream
	types  [cache.NumTypes]*sotwType // nil until asked for
	others map[string]*sotwType      // types snapshots do not hold
}

// sotwType is a SotW stream's state for one type.
type sotwType struct {
	url  string
	t    cache.Type
	held bool // a type snapshots hold

	// The subscription: every resource (wildcard) or the named ones.
	legacy   bool // a wildcard made by asking for no name, until names come
	wildcard bool
	names    names

	// waiting: a request awaits a response (one response in flight).
	waiting bool
	last    answered
	// version is the version of the last response, or the one the proxy
	// announced before any: a response is due when the type's version is
	// another. A NACK does not change it, so a rejected version is never
	// sent again; the next Publish that changes the type is.
	version string
	// What the last response carried: every resource of its version
	// (sentAll) or those of sentNames; narrowed as names are unsubscribed.
	// A proxy subscribing to a name it was not sent gets a response even
	// when the version did not change.
	sent      bool
	sentAll   bool
	sentNames names
}

func (s *Server) serveSotW(ss grpc.ServerStream) error {
	st := &sotwStream{}
	st.init(s, ss, false)
	st.respond = st.respondAll
	return serve(&st.stream, st.handle)
}

// handle handles a request (with mu held).
func (st *sotwStream) handle(req *discoveryv3.DiscoveryRequest) error {
	if err := st.checkNode(req.GetNode(), req.GetTypeUrl()); err != nil {
		return err
	}
	ts, err := st.typeState(req)
	if err != nil {
		return err
	}
	nonce := req.GetResponseNonce()
	if ts.last.nonce != "" && nonce != ts.last.nonce {
		// An answer to an older response, crossing a newer one: the xDS
		// protocol says to ignore it; the answer to the newer one follows.
		return nil
	}
	st.answer(&ts.last, nonce, req.GetErrorDetail(), ts.url)
	ts.subscribe(req.GetResourceNames(), st.list(ts))
	ts.waiting = true
	return st.respondType(ts)
}

func (st *sotwStream) typeState(req *discoveryv3.DiscoveryRequest) (*sotwType, error) {
	return typeState(&st.types, &st.others, req.GetTypeUrl(), func(url string, t cache.Type, held bool) *sotwType {
		return &sotwType{url: url, t: t, held: held, legacy: true, wildcard: len(req.GetResourceNames()) == 0, version: req.GetVersionInfo()}
	})
}

// list returns the proxy's current resources of ts's type (nil when there
// are none, or the type is not held).
func (st *sotwStream) list(ts *sotwType) *cache.List {
	l, _ := st.current(ts.held, ts.t)
	return l
}

// subscribe applies the names of a request, as go-control-plane's SotW
// subscriptions do: no names keep a legacy wildcard; otherwise the names
// replace the subscription, "*" among them making it a wildcard.
func (ts *sotwType) subscribe(req []string, l *cache.List) {
	if ts.legacy {
		if len(req) == 0 {
			return
		}
		ts.legacy = false
	}
	wild, sorted := normalize(req)
	subscribed := ts.names
	if !ts.names.equal(sorted) {
		subscribed = makeNames(sorted, l)
	}
	if !wild && ts.sent {
		// Names no longer subscribed are no longer held by the proxy:
		// subscribing again gets them sent again.
		if ts.sentAll {
			ts.sentAll, ts.sentNames = false, subscribed
		} else {
			ts.sentNames = ts.sentNames.intersect(subscribed)
		}
	}
	ts.wildcard, ts.names = wild, subscribed
}

// respondAll answers every waiting request from the current snapshot, in
// type order.
func (st *sotwStream) respondAll() error { return respondEach(&st.types, st.others, st.respondType) }

// respondType sends a response of ts's type if one is waiting and due: the
// version moved, or the proxy subscribed to resources it was not sent.
func (st *sotwStream) respondType(ts *sotwType) error {
	if !ts.waiting || st.closed {
		return nil
	}
	l, ok := st.current(ts.held, ts.t)
	if !ok {
		return nil
	}
	version := l.Version()
	if version == ts.version && !ts.newNames(l) {
		return nil
	}
	entries := make([]*cache.Entry, 0, l.Len())
	add := func(i int) {
		if e := l.Entry(i); e != nil {
			entries = append(entries, e)
		}
	}
	if ts.wildcard {
		for i := range l.Len() {
			add(i)
		}
	} else {
		ts.names.eachIn(l, add)
	}
	nonce := st.nextNonce()
	r := newResponse(version, ts.url, nonce, nil, entries, false)
	if err := st.send(r); err != nil {
		return err
	}
	ts.waiting, ts.version = false, version
	ts.last.sent(nonce, version)
	ts.sent, ts.sentAll, ts.sentNames = true, ts.wildcard, ts.names
	st.hooks.Sent(ts.url, version)
	return nil
}

// newNames reports whether l holds subscribed resources the last response
// did not carry.
func (ts *sotwType) newNames(l *cache.List) bool {
	if l.Len() == 0 {
		return false
	}
	if ts.wildcard {
		switch {
		case !ts.sent:
			return true
		case ts.sentAll:
			return false
		}
		for i := range l.Len() {
			if !ts.sentNames.contains(l.Name(i)) {
				return true
			}
		}
		return false
	}
	if ts.sent && ts.sentNames.same(ts.names) {
		return false
	}
	found := false
	ts.names.eachIn(l, func(i int) {
		found = found || !ts.sent || !ts.sentNames.contains(l.Name(i))
	})
	return found
}
