package ads

import (
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// deltaStream is an incremental (delta) ADS stream.
type deltaStream struct {
	stream
	types  [cache.NumTypes]*deltaType
	others map[string]*deltaType
}

// forgotten marks, in deltaType.except, a name the proxy does not hold.
const forgotten = "\x00forgotten"

// deltaType is a delta stream's state for one type.
type deltaType struct {
	url  string
	t    cache.Type
	held bool

	// The subscription; scope counts its changes.
	legacy   bool
	wildcard bool
	names    names
	scope    uint64

	waiting    bool
	emptyNonce bool // the waiting request carried no nonce
	last       answered

	// What the proxy holds: the resources of known that were in the
	// subscription of the time (all of them, or those of knownNames), at
	// their versions — every resource a response carries is taken as held,
	// ACKed or not, as go-control-plane does. except overrides it for
	// single names (versions from initial_resource_versions, "" for a
	// resource to send again, forgotten for one the proxy dropped) until the
	// next response. knownScope is the subscription's scope at the time.
	known      *cache.List
	knownAll   bool
	knownNames names
	knownScope uint64
	except     map[string]string
}

func (s *Server) serveDelta(ss grpc.ServerStream) error {
	st := &deltaStream{}
	st.init(s, ss, true)
	st.respond = st.respondAll
	return serve(&st.stream, st.handle)
}

// handle handles a request (with mu held).
func (st *deltaStream) handle(req *discoveryv3.DeltaDiscoveryRequest) error {
	if err := st.checkNode(req.GetNode(), req.GetTypeUrl()); err != nil {
		return err
	}
	ts, err := st.typeState(req)
	if err != nil {
		return err
	}
	st.answer(&ts.last, req.GetResponseNonce(), req.GetErrorDetail(), ts.url)
	ts.subscribe(req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe(), st.list(ts))
	ts.waiting, ts.emptyNonce = true, req.GetResponseNonce() == ""
	return st.respondType(ts)
}

func (st *deltaStream) typeState(req *discoveryv3.DeltaDiscoveryRequest) (*deltaType, error) {
	return typeState(&st.types, &st.others, req.GetTypeUrl(), func(url string, t cache.Type, held bool) *deltaType {
		ts := &deltaType{url: url, t: t, held: held, legacy: true, wildcard: len(req.GetResourceNamesSubscribe()) == 0}
		if v := req.GetInitialResourceVersions(); len(v) > 0 {
			ts.except = v
		}
		return ts
	})
}

func (st *deltaStream) list(ts *deltaType) *cache.List {
	l, _ := st.current(ts.held, ts.t)
	return l
}

// subscribe applies a request's subscription changes, as go-control-plane's
// delta subscriptions do: while the subscription is a legacy wildcard, a
// request without names changes nothing; "*" subscribes and unsubscribes
// the wildcard. A name unsubscribed is dropped by the proxy (sent again if
// subscribed again) — unless a wildcard still covers it, when it is sent
// again at once.
func (ts *deltaType) subscribe(sub, unsub []string, l *cache.List) {
	if ts.legacy {
		if len(sub) == 0 {
			return
		}
		ts.legacy = false
	}
	wildOn, add := normalize(sub)
	wildOff, remove := normalize(unsub)
	if wildOn && !ts.wildcard {
		ts.wildcard = true
		ts.scope++
	}
	if wildOff && ts.wildcard {
		ts.wildcard = false
		ts.scope++
	}
	for _, name := range remove {
		v := forgotten
		if ts.wildcard && ts.names.contains(name) {
			v = ""
		}
		if ts.except == nil {
			ts.except = map[string]string{}
		}
		ts.except[name] = v
	}
	if len(add) > 0 || len(remove) > 0 {
		ts.names = ts.names.update(add, remove, l)
		ts.scope++
	}
}

// respondAll answers every waiting request from the current snapshot, in
// type order.
func (st *deltaStream) respondAll() error { return respondEach(&st.types, st.others, st.respondType) }

// respondType sends what changed for ts's type, if a request is waiting:
// the resources in the subscription the proxy does not hold at their
// current version, and the names of those it holds that are gone. A
// wildcard request without a nonce (a proxy starting) is answered even when
// nothing changed, so that the proxy can finish initialising.
func (st *deltaStream) respondType(ts *deltaType) error {
	if !ts.waiting || st.closed {
		return nil
	}
	l, ok := st.current(ts.held, ts.t)
	if !ok {
		return nil
	}
	changed, removed := ts.diff(l)
	if len(changed) == 0 && len(removed) == 0 && !(ts.wildcard && ts.emptyNonce) {
		if ts.except == nil && ts.knownScope == ts.scope {
			// The proxy holds what l says; forget the older list. (After a
			// subscription change it may hold more than l says, which only
			// a response makes it drop.)
			ts.adopt(l)
		}
		return nil
	}
	nonce := st.nextNonce()
	if err := st.send(newResponse(l.Version(), ts.url, nonce, removed, changed, true)); err != nil {
		return err
	}
	ts.adopt(l)
	ts.waiting = false
	ts.last.sent(nonce, l.Version())
	st.hooks.Sent(ts.url, l.Version())
	return nil
}

// adopt records that the proxy holds l's resources in the subscription.
func (ts *deltaType) adopt(l *cache.List) {
	ts.known, ts.knownAll, ts.knownNames, ts.knownScope, ts.except = l, ts.wildcard, ts.names, ts.scope, nil
}

// inScope reports whether the subscription covers name.
func (ts *deltaType) inScope(name string) bool { return ts.wildcard || ts.names.contains(name) }

// diff returns the resources of l to send and the names to remove. Most of
// the time the proxy holds the list l replaced, with the same
// subscription, and l recorded the difference: that is the answer, at the
// cost of the change. Otherwise the lists are compared.
func (ts *deltaType) diff(l *cache.List) ([]*cache.Entry, []string) {
	sameScope := ts.knownScope == ts.scope
	switch {
	case ts.except != nil:
		return ts.diffVersions(l)
	case ts.known == nil:
		out := make([]*cache.Entry, 0, l.Len())
		ts.eachInScope(l, func(i int) {
			if e := l.Entry(i); e != nil {
				out = append(out, e)
			}
		})
		return out, nil
	case sameScope && ts.known == l:
		return nil, nil
	case sameScope:
		if changed, removed, ok := l.Changes(ts.known); ok {
			var out []*cache.Entry
			for i := range changed {
				if ts.wildcard || ts.names.contains(l.Name(i)) {
					if e := l.Entry(i); e != nil {
						out = append(out, e)
					}
				}
			}
			if ts.wildcard {
				return out, removed
			}
			var gone []string
			for _, n := range removed {
				if ts.names.contains(n) {
					gone = append(gone, n)
				}
			}
			return out, gone
		}
	}
	return ts.diffLists(l)
}

// eachInScope calls fn with the index of every resource of l in the
// subscription.
func (ts *deltaType) eachInScope(l *cache.List, fn func(i int)) {
	if ts.wildcard {
		for i := range l.Len() {
			fn(i)
		}
		return
	}
	ts.names.eachIn(l, fn)
}

// diffLists compares what the proxy holds with l, both in name order;
// messages l shares with the known list are skipped without a look at
// their names.
func (ts *deltaType) diffLists(l *cache.List) ([]*cache.Entry, []string) {
	k := ts.known
	held := func(i int) bool { return ts.knownAll || ts.knownNames.contains(k.Name(i)) }
	var changed []*cache.Entry
	var removed []string
	i, j := 0, 0
	for i < k.Len() || j < l.Len() {
		if i < k.Len() && j < l.Len() && l.Same(j, k, i) {
			if !held(i) && ts.inScope(l.Name(j)) {
				if e := l.Entry(j); e != nil {
					changed = append(changed, e)
				}
			}
			i, j = i+1, j+1
			continue
		}
		switch {
		case j == l.Len() || (i < k.Len() && k.Name(i) < l.Name(j)):
			if n := k.Name(i); held(i) && ts.inScope(n) {
				removed = append(removed, n)
			}
			i++
		case i == k.Len() || l.Name(j) < k.Name(i):
			if ts.inScope(l.Name(j)) {
				if e := l.Entry(j); e != nil {
					changed = append(changed, e)
				}
			}
			j++
		default:
			if ts.inScope(l.Name(j)) {
				e := l.Entry(j)
				if !held(i) || e == nil || ts.versionHeld(k, i) != e.Version() {
					if e != nil {
						changed = append(changed, e)
					}
				}
			}
			i, j = i+1, j+1
		}
	}
	return changed, removed
}

// versionHeld returns the version of resource i of k, which the proxy
// holds.
func (ts *deltaType) versionHeld(k *cache.List, i int) string {
	if e := k.Entry(i); e != nil {
		return e.Version()
	}
	return ""
}

// diffVersions compares with a map of what the proxy holds, built from the
// known list and the exceptions: the general (and rare) case, for proxies
// that came back with initial_resource_versions or unsubscribed names.
func (ts *deltaType) diffVersions(l *cache.List) ([]*cache.Entry, []string) {
	holds := map[string]string{}
	if k := ts.known; k != nil {
		for i := range k.Len() {
			if n := k.Name(i); ts.knownAll || ts.knownNames.contains(n) {
				holds[n] = ts.versionHeld(k, i)
			}
		}
	}
	for n, v := range ts.except {
		if v == forgotten {
			delete(holds, n)
		} else {
			holds[n] = v
		}
	}
	var changed []*cache.Entry
	var removed []string
	ts.eachInScope(l, func(i int) {
		e := l.Entry(i)
		if v, ok := holds[l.Name(i)]; e != nil && (!ok || v != e.Version()) {
			changed = append(changed, e)
		}
	})
	for n := range holds {
		if _, ok := l.Find(n); !ok && ts.inScope(n) {
			removed = append(removed, n)
		}
	}
	slices.Sort(removed)
	return changed, removed
}
