package memory

import (
	"maps"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/store"
)

// packedLabels holds a resource's labels as one string in key order,
// "\x00k1\x01v1\x00k2\x01v2\x00", so a label filter is a substring search in
// memory the scan already touches. Every \x00 starts a pair and \x01 ends its
// key, so "\x00k\x01v\x00" can only match a whole pair. Labels holding either
// byte (never valid, but the store does not validate) are left unpacked and
// matched through the map.
type packedLabels struct {
	s        string
	unpacked bool
}

const (
	pairStart = "\x00"
	keyEnd    = "\x01"
)

func hasSeparator(s string) bool { return strings.ContainsAny(s, pairStart+keyEnd) }

func packLabels(labels map[string]string) packedLabels {
	if len(labels) == 0 {
		return packedLabels{}
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if hasSeparator(k) || hasSeparator(v) {
			return packedLabels{unpacked: true}
		}
		b.WriteString(pairStart + k + keyEnd + v)
	}
	b.WriteString(pairStart)
	return packedLabels{s: b.String()}
}

// labelFilter is a List label filter prepared for matching packedLabels.
type labelFilter struct {
	want    map[string]string
	needles []string
	usable  bool // false when a wanted key or value holds a separator
}

func newLabelFilter(want map[string]string) labelFilter {
	f := labelFilter{want: want, usable: true}
	for k, v := range want {
		if hasSeparator(k) || hasSeparator(v) {
			f.usable = false
		}
		f.needles = append(f.needles, pairStart+k+keyEnd+v+pairStart)
	}
	return f
}

// match reports whether e carries every wanted label with an equal value.
func (f labelFilter) match(e *entry) bool {
	if !f.usable || e.labels.unpacked {
		for k, v := range f.want {
			if got, ok := e.res.Meta.Labels[k]; !ok || got != v {
				return false
			}
		}
		return true
	}
	for _, n := range f.needles {
		if !strings.Contains(e.labels.s, n) {
			return false
		}
	}
	return true
}

// filter is a List's label and name selection, prepared once per call. The
// mesh is not part of it: List bounds its scan to the mesh instead.
type filter struct {
	labels labelFilter
	name   string
}

func newFilter(opts store.ListOptions) filter {
	return filter{labels: newLabelFilter(opts.Labels), name: opts.NameContains}
}

// trivial reports whether the filter selects by mesh alone.
func (f filter) trivial() bool { return len(f.labels.want) == 0 && f.name == "" }

// match reports whether e passes the label and name filters.
func (f filter) match(e *entry) bool {
	return (f.name == "" || strings.Contains(e.key.Name, f.name)) && f.labels.match(e)
}
