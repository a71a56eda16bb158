package ads

import (
	"slices"
	"sort"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// wildcard is the explicit wildcard subscription.
const wildcard = "*"

// names is a sorted set of resource names: a subscription, or what a
// response carried. It is either a list of its own or the names of every
// resource of a cache.List, which costs nothing per name — an Envoy asking
// (SotW) for the load assignments of its clusters asks for exactly the
// names of its endpoint list. Sets are never changed once made.
type names struct {
	list []string
	of   *cache.List
}

func (n names) len() int {
	if n.of != nil {
		return n.of.Len()
	}
	return len(n.list)
}

func (n names) at(i int) string {
	if n.of != nil {
		return n.of.Name(i)
	}
	return n.list[i]
}

func (n names) contains(name string) bool {
	if n.of != nil {
		_, ok := n.of.Find(name)
		return ok
	}
	i := sort.SearchStrings(n.list, name)
	return i < len(n.list) && n.list[i] == name
}

// same reports whether both are the same set object (a cheap test before
// comparing).
func (n names) same(o names) bool {
	if n.of != nil || o.of != nil {
		return n.of == o.of
	}
	return len(n.list) == len(o.list) && (len(n.list) == 0 || &n.list[0] == &o.list[0])
}

// equal reports whether the set holds exactly the sorted names.
func (n names) equal(sorted []string) bool {
	if n.len() != len(sorted) {
		return false
	}
	for i, s := range sorted {
		if n.at(i) != s {
			return false
		}
	}
	return true
}

// makeNames returns the set of sorted (unique) names. It is l's names when
// they are exactly those; otherwise a list sharing l's strings where names
// match, so the strings of a request are not kept.
func makeNames(sorted []string, l *cache.List) names {
	if len(sorted) == 0 {
		return names{}
	}
	if l != nil && l.Len() == len(sorted) {
		all := true
		for i, s := range sorted {
			if l.Name(i) != s {
				all = false
				break
			}
		}
		if all {
			return names{of: l}
		}
	}
	out := make([]string, len(sorted))
	j := 0
	for i, s := range sorted {
		for l != nil && j < l.Len() && l.Name(j) < s {
			j++
		}
		if l != nil && j < l.Len() && l.Name(j) == s {
			out[i] = l.Name(j)
		} else {
			out[i] = s
		}
	}
	return names{list: out}
}

// normalize returns the names of a request sorted, without duplicates and
// without the wildcard, and whether the wildcard was among them. A sorted
// request without the wildcard is returned as it is.
func normalize(req []string) (bool, []string) {
	ordered := true
	for i, s := range req {
		if s == wildcard || (i > 0 && req[i-1] >= s) {
			ordered = false
			break
		}
	}
	if ordered {
		return false, req
	}
	out := slices.Clone(req)
	slices.Sort(out)
	out = slices.Compact(out)
	wild := false
	if i, ok := slices.BinarySearch(out, wildcard); ok {
		wild = true
		out = slices.Delete(out, i, i+1)
	}
	return wild, out
}

// intersect returns a set of the names in both.
func (n names) intersect(o names) names {
	if n.same(o) {
		return n
	}
	var out []string
	i, j := 0, 0
	for i < n.len() && j < o.len() {
		a, b := n.at(i), o.at(j)
		switch {
		case a < b:
			i++
		case b < a:
			j++
		default:
			out = append(out, a)
			i, j = i+1, j+1
		}
	}
	return names{list: out}
}

// update returns the set with add (sorted, unique) added and remove
// removed, interned against l.
func (n names) update(add, remove []string, l *cache.List) names {
	merged := make([]string, 0, n.len()+len(add))
	i, j := 0, 0
	for i < n.len() || j < len(add) {
		switch {
		case j == len(add) || (i < n.len() && n.at(i) < add[j]):
			merged = append(merged, n.at(i))
			i++
		case i == n.len() || add[j] < n.at(i):
			merged = append(merged, add[j])
			j++
		default:
			merged = append(merged, add[j])
			i, j = i+1, j+1
		}
	}
	if len(remove) > 0 {
		merged = slices.DeleteFunc(merged, func(s string) bool {
			_, found := slices.BinarySearch(remove, s)
			return found
		})
	}
	return makeNames(merged, l)
}

// eachIn calls fn with the index in l of every name of n that l holds, in
// order.
func (n names) eachIn(l *cache.List, fn func(i int)) {
	if l == nil {
		return
	}
	if n.of == l {
		for i := range l.Len() {
			fn(i)
		}
		return
	}
	i, j := 0, 0
	for i < n.len() && j < l.Len() {
		a, b := n.at(i), l.Name(j)
		switch {
		case a < b:
			i++
		case b < a:
			j++
		default:
			fn(j)
			i, j = i+1, j+1
		}
	}
}
