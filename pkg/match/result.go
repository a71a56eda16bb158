package match

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/api/targetref"
)

// Result is what applies to one dataplane from the policies of one type: the
// selected policies and the merged confs per traffic direction, each with the
// policy entries that produced it.
type Result[C Mergeable[C]] struct {
	// Type is the policy type, for example "MeshTimeout".
	Type string `json:"type"`
	// Mesh is the dataplane's mesh.
	Mesh string `json:"mesh"`
	// Dataplane is the dataplane's name.
	Dataplane string `json:"dataplane"`
	// Policies are the policies whose top-level targetRef selects the
	// dataplane, least specific first (later ones win).
	Policies []AppliedPolicy `json:"policies"`
	// Default is the merged spec.default of the selected policies, for
	// policies without directions; nil when none has one.
	Default *Merged[C] `json:"default,omitempty"`
	// To holds the confs of outbound traffic.
	To ToResult[C] `json:"to,omitzero"`
	// Inbounds hold the confs of inbound traffic, one per inbound that is not
	// Ignored, in the dataplane's order.
	Inbounds []InboundResult[C] `json:"inbounds,omitempty"`
}

// AppliedPolicy is one policy that selects the dataplane, and why.
type AppliedPolicy struct {
	// Type is the policy type.
	Type string `json:"type"`
	// Mesh is the policy's mesh.
	Mesh string `json:"mesh"`
	// Name is the policy's name.
	Name string `json:"name"`
	// TargetRef is the top-level targetRef (kind Mesh when it was absent).
	TargetRef targetref.TargetRef `json:"targetRef"`
	// Specificity names the targetRef's place in the order, for example
	// "Dataplane with labels".
	Specificity string `json:"specificity"`
	// Origin is the kuma.io/origin label, when set.
	Origin string `json:"origin,omitempty"`
	// Role is the kuma.io/policy-role label, when set.
	Role string `json:"role,omitempty"`
}

// Contribution names one policy entry that was merged into a conf.
type Contribution struct {
	// Type is the policy type.
	Type string `json:"type"`
	// Mesh is the policy's mesh.
	Mesh string `json:"mesh"`
	// Name is the policy's name.
	Name string `json:"name"`
	// Section is "to", "from", "rules" or "default".
	Section string `json:"section"`
	// Index is the entry's position in its section (0 for "default").
	Index int `json:"index"`
}

// String renders the contribution as "MeshTimeout default/name spec.to[1]".
func (c Contribution) String() string {
	if c.Section == "default" {
		return fmt.Sprintf("%s %s/%s spec.default", c.Type, c.Mesh, c.Name)
	}
	return fmt.Sprintf("%s %s/%s spec.%s[%d]", c.Type, c.Mesh, c.Name, c.Section, c.Index)
}

// Merged is a conf merged from policy entries.
type Merged[C any] struct {
	// Conf is the effective configuration.
	Conf C `json:"conf"`
	// Contributors are the merged entries in merge order: the last one to set
	// a field decided its value. They are shared between results: read-only.
	Contributors []*Contribution `json:"contributors"`

	confs []*C
}

// Confs returns the unmerged confs of the contributors, in merge order, for
// policies whose semantics are not a merge (MeshTrafficPermission: any
// matching deny beats any allow). They belong to the policies: read-only.
func (m *Merged[C]) Confs() []*C { return m.confs }

// Explain renders the contributors, in merge order, one per line.
func (m *Merged[C]) Explain() string {
	parts := make([]string, len(m.Contributors))
	for i, c := range m.Contributors {
		parts[i] = c.String()
	}
	return strings.Join(parts, "\n")
}

// Destination identifies an outbound destination as to[] entries name it.
type Destination struct {
	// Kind is MeshService, MeshExternalService, MeshMultiZoneService or
	// MeshHTTPRoute. A MeshService that exists only as a kuma.io/service tag
	// value is a MeshService named after it.
	Kind targetref.Kind `json:"kind"`
	// Name of the resource (or the kuma.io/service value).
	Name string `json:"name"`
	// Port of the resource a sectionName resolved to; 0 means every port.
	Port uint32 `json:"port,omitempty"`
}

// compare orders destinations by kind, name and port.
func (d Destination) compare(o Destination) int {
	if c := strings.Compare(string(d.Kind), string(o.Kind)); c != 0 {
		return c
	}
	if c := strings.Compare(d.Name, o.Name); c != 0 {
		return c
	}
	return cmp.Compare(d.Port, o.Port)
}

// DestinationResult is the merged conf of a destination that to[] entries
// name specifically.
type DestinationResult[C any] struct {
	// Destination is the destination.
	Destination Destination `json:"destination"`
	// Merged is the destination's conf and its contributors.
	Merged[C]
}

// ToResult holds the confs of a proxy's outbound traffic.
type ToResult[C Mergeable[C]] struct {
	// AllDestinations is the conf of every destination no entry names
	// specifically: the merged to[] entries of kind Mesh. Nil when none.
	AllDestinations *Merged[C] `json:"allDestinations,omitempty"`
	// Destinations are the destinations some entry names, sorted by kind,
	// name and port. Their confs include the Mesh entries. For a
	// MeshHTTPRoute the conf holds only the route's own entries: use ForRoute.
	Destinations []DestinationResult[C] `json:"destinations,omitempty"`
}

// find returns the result recorded for exactly d.
func (t *ToResult[C]) find(d Destination) (*Merged[C], bool) {
	i, ok := slices.BinarySearchFunc(t.Destinations, d, func(r DestinationResult[C], d Destination) int {
		return r.Destination.compare(d)
	})
	if !ok {
		return nil, false
	}
	return &t.Destinations[i].Merged, true
}

// For returns the conf of outbound traffic to d: the entry for d's port, else
// for the whole resource, else AllDestinations. It reports false when no
// entry applies to d.
func (t *ToResult[C]) For(d Destination) (*Merged[C], bool) {
	if m, ok := t.find(d); ok {
		return m, true
	}
	if d.Port != 0 {
		d.Port = 0
		if m, ok := t.find(d); ok {
			return m, true
		}
	}
	return t.AllDestinations, t.AllDestinations != nil
}

// ForRoute returns the conf of traffic matched by the MeshHTTPRoute route on
// the outbound to parent: parent's conf with the route's own entries merged
// on top. It reports false when no entry applies.
func (t *ToResult[C]) ForRoute(parent Destination, route string) (*Merged[C], bool) {
	base, hasBase := t.For(parent)
	overlay, hasOverlay := t.find(Destination{Kind: targetref.MeshHTTPRoute, Name: route})
	switch {
	case !hasOverlay:
		return base, hasBase
	case !hasBase:
		return overlay, true
	}
	return &Merged[C]{
		Conf:         base.Conf.Merge(overlay.Conf),
		Contributors: append(slices.Clip(base.Contributors), overlay.Contributors...),
		confs:        append(slices.Clip(base.confs), overlay.confs...),
	}, true
}

// InboundResult holds the confs of traffic reaching one inbound.
type InboundResult[C Mergeable[C]] struct {
	// Name is the inbound's name, when it has one.
	Name string `json:"name,omitempty"`
	// Port is the inbound's port.
	Port uint32 `json:"port"`
	// Service is the inbound's kuma.io/service tag.
	Service string `json:"service,omitempty"`
	// Rules is the merged rules[] conf of the policies selecting the inbound.
	Rules *Merged[C] `json:"rules,omitempty"`
	// From holds the from[] confs per source.
	From FromResult[C] `json:"from,omitzero"`
}

// FromResult holds the from[] confs of one inbound.
type FromResult[C Mergeable[C]] struct {
	// AllSources is the merged from[] entries of kind Mesh: the conf of
	// traffic from any source no entry names specifically. Nil when none.
	AllSources *Merged[C] `json:"allSources,omitempty"`
	// Sources are the source selectors entries name, least specific first
	// (MeshSubset, MeshService, MeshServiceSubset; then fewer tags first;
	// then by selector text), each with the merged conf of every entry whose
	// selector includes it.
	Sources []SourceResult[C] `json:"sources,omitempty"`

	entries []*fromEntry[C]
}

// SourceResult is the merged conf of traffic from one source selector.
type SourceResult[C any] struct {
	// Source is the selector as written in from[].targetRef.
	Source targetref.TargetRef `json:"source"`
	// Merged is the conf of traffic from the source and its contributors.
	Merged[C]
}

// For returns the conf of traffic from a source whose tags (kuma.io/service
// and the other inbound tags of the calling proxy) are given: every entry
// whose selector the tags satisfy, merged in order. It reports false when
// none does.
func (f *FromResult[C]) For(sourceTags map[string]string) (*Merged[C], bool) {
	var out *Merged[C]
	for _, e := range f.entries {
		if !subset(e.tags, sourceTags) {
			continue
		}
		if out == nil {
			out = &Merged[C]{Conf: *e.conf}
		} else {
			out.Conf = out.Conf.Merge(*e.conf)
		}
		out.Contributors = append(out.Contributors, e.contrib)
		out.confs = append(out.confs, e.conf)
	}
	return out, out != nil
}

// Inbound returns the result of the inbound with the given port, or nil.
func (r *Result[C]) Inbound(port uint32) *InboundResult[C] {
	for i := range r.Inbounds {
		if r.Inbounds[i].Port == port {
			return &r.Inbounds[i]
		}
	}
	return nil
}
