package cache

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
	"slices"
	"sort"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// List is the resources of one type in one proxy's snapshot, sorted by
// name, with the type's version. It is immutable: a Publish that changes
// the type makes a new List, and streams keep the List they last sent as
// their record of what the proxy holds.
//
// A List refers to the published slice itself (the reconciler keeps it
// too), so a snapshot costs next to nothing per resource. When it replaced
// a List of the same proxy and the difference is small, it also records
// that difference, so a stream that sent the previous List answers with
// the changed resources without looking at the others.
type List struct {
	memo    *memo
	typ     Type
	version string
	items   items
	id      uint64
	// When diff is set, the list records how it differs from the List with
	// id prev: changed marks (a bit per resource) the resources that are
	// new or have new content, removed (sorted) names those gone.
	prev    uint64
	diff    bool
	changed []uint64
	removed []string
}

// Type returns the list's type.
func (l *List) Type() Type { return l.typ }

// ID identifies the list among every list the cache made.
func (l *List) ID() uint64 {
	if l == nil {
		return 0
	}
	return l.id
}

// Version returns the type's version; a nil list has version "".
func (l *List) Version() string {
	if l == nil {
		return ""
	}
	return l.version
}

// Len returns the number of resources; a nil list is empty.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.items.len()
}

// Name returns the name of resource i.
func (l *List) Name(i int) string { return l.items.name(i) }

// Same reports whether resource i of l is the very message resource j of
// o is (then their content is equal).
func (l *List) Same(i int, o *List, j int) bool { return l.items.msg(i) == o.items.msg(j) }

// Find returns the index of the resource named name.
func (l *List) Find(name string) (int, bool) {
	n := l.Len()
	i := sort.Search(n, func(k int) bool { return l.items.name(k) >= name })
	return i, i < n && l.items.name(i) == name
}

// Entry returns the entry of resource i: its content hash and encoding.
// It is nil only if the resource cannot be encoded, which Publish rules out.
func (l *List) Entry(i int) *Entry { return l.memo.lookup(l.typ, l.items.msg(i), l.items.name(i)) }

// Changes returns how l differs from from, when l recorded it: the
// indexes of its new and changed resources, in order, and the names of the
// removed ones, sorted.
func (l *List) Changes(from *List) (changed iter.Seq[int], removed []string, ok bool) {
	if l == nil || from == nil || !l.diff || l.prev != from.id {
		return nil, nil, false
	}
	marks := l.changed
	return func(yield func(int) bool) {
		for w, word := range marks {
			for word != 0 {
				i := bits.TrailingZeros64(word)
				if !yield(w*64 + i) {
					return
				}
				word &= word - 1
			}
		}
	}, l.removed, true
}

// maxRemoved is how many removals a list records at most: beyond it,
// streams compare lists, which costs about as much as the removals.
func maxRemoved(n int) int { return max(32, n/4) }

// items is a typed slice of resources.
type items interface {
	len() int
	name(i int) string
	msg(i int) proto.Message
	// same reports whether both are the same slice.
	same(o items) bool
	// walk compares these items with the old ones (nil: none).
	walk(old items) (walked, error)
	// sorted returns a copy sorted by name.
	sorted() items
}

// walked is what walk found: the new items that are not the old message at
// the same place (added or replaced) and the old items that are not carried
// over (removed or replaced), both in name order.
type walked struct {
	added, dropped []int32
}

// errUnsorted reports new items out of name order.
var errUnsorted = errors.New("resources are not sorted by name")

// duplicateError reports two resources with one name.
type duplicateError struct{ name string }

func (e duplicateError) Error() string { return fmt.Sprintf("two resources are named %q", e.name) }

var errNoName = errors.New("a resource has no name")

type typed[T interface {
	comparable
	proto.Message
}] struct {
	s      []T
	nameOf func(T) string
}

func (t *typed[T]) len() int                { return len(t.s) }
func (t *typed[T]) name(i int) string       { return t.nameOf(t.s[i]) }
func (t *typed[T]) msg(i int) proto.Message { return t.s[i] }

func (t *typed[T]) same(o items) bool {
	u, ok := o.(*typed[T])
	return ok && len(t.s) == len(u.s) && (len(t.s) == 0 || &t.s[0] == &u.s[0])
}

func (t *typed[T]) sorted() items {
	s := slices.Clone(t.s)
	slices.SortStableFunc(s, func(a, b T) int { return strings.Compare(t.nameOf(a), t.nameOf(b)) })
	return &typed[T]{s: s, nameOf: t.nameOf}
}

// walk runs over both sorted lists at once. Where the new list holds the
// very message the old one holds at the matching place — nearly everywhere
// when one resource of many changed — it compares two pointers and moves
// on: names are read only around what changed. It also checks that the new
// items are sorted by name, named and unique, comparing names only where
// the order is not inherited from the old list.
func (t *typed[T]) walk(oldItems items) (walked, error) {
	var olds []T
	if oldItems != nil {
		olds = oldItems.(*typed[T]).s
	}
	news := t.s
	var w walked
	if len(olds) == 0 {
		w.added = make([]int32, 0, len(news))
	}
	i, j := 0, 0
	matched := false // news[i-1] is olds[j-1], so the order up to i is the old order
	prev := ""       // the name of news[i-1], when !matched
	for i < len(news) {
		x := news[i]
		if j < len(olds) && x == olds[j] {
			if i > 0 && !matched {
				if err := order(prev, t.nameOf(x)); err != nil {
					return w, err
				}
			}
			matched = true
			i, j = i+1, j+1
			continue
		}
		n := t.nameOf(x)
		if n == "" {
			return w, errNoName
		}
		if i > 0 {
			if matched {
				prev = t.nameOf(news[i-1])
			}
			if err := order(prev, n); err != nil {
				return w, err
			}
		}
		for j < len(olds) && t.nameOf(olds[j]) < n {
			w.dropped = append(w.dropped, int32(j))
			j++
		}
		if j < len(olds) && olds[j] == x {
			matched = true
			i, j = i+1, j+1
			continue
		}
		if j < len(olds) && t.nameOf(olds[j]) == n {
			w.dropped = append(w.dropped, int32(j))
			j++
		}
		w.added = append(w.added, int32(i))
		matched, prev = false, n
		i++
	}
	for ; j < len(olds); j++ {
		w.dropped = append(w.dropped, int32(j))
	}
	return w, nil
}

func order(prev, next string) error {
	switch {
	case prev < next:
		return nil
	case prev == next:
		return duplicateError{name: next}
	}
	return errUnsorted
}

// itemsOf views the published resources by type.
func itemsOf(res *translate.Resources) [NumTypes]items {
	return [NumTypes]items{
		Secrets:   &typed[*tlsv3.Secret]{s: res.Secrets, nameOf: (*tlsv3.Secret).GetName},
		Clusters:  &typed[*clusterv3.Cluster]{s: res.Clusters, nameOf: (*clusterv3.Cluster).GetName},
		Endpoints: &typed[*endpointv3.ClusterLoadAssignment]{s: res.Endpoints, nameOf: (*endpointv3.ClusterLoadAssignment).GetClusterName},
		Listeners: &typed[*listenerv3.Listener]{s: res.Listeners, nameOf: (*listenerv3.Listener).GetName},
		Routes:    &typed[*routev3.RouteConfiguration]{s: res.Routes, nameOf: (*routev3.RouteConfiguration).GetName},
	}
}
