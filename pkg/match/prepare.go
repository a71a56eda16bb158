package match

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Inputs are the parts of a mesh snapshot the matcher reads besides the
// policies. It never reads a store.
type Inputs struct {
	// Type is the policy type, for example "MeshTimeout"; a policy of
	// another type is an error. Empty takes the type of the first policy.
	Type string
	// Mesh is the mesh of the snapshot; policies of other meshes are ignored.
	// Empty accepts every policy.
	Mesh string
	// MeshServices are the MeshService resources of the mesh (spec
	// *meshservice.Spec). A top-level or to[] MeshService reference that
	// names none of them falls back to the kuma.io/service tag.
	MeshServices []*resource.Resource
	// Destinations lists, per kind (MeshExternalService,
	// MeshMultiZoneService, MeshHTTPRoute), the resources to[] entries may
	// select by labels. Only their metadata is read.
	Destinations map[targetref.Kind][]resource.Meta
}

// Skipped is a policy, or one entry of it, that the matcher did not apply,
// with the reason, so that inspect and resource status can show it.
type Skipped struct {
	// Type is the policy type.
	Type string `json:"type"`
	// Mesh is the policy's mesh.
	Mesh string `json:"mesh"`
	// Name is the policy's name.
	Name string `json:"name"`
	// Field is the path of what was skipped, for example "spec.to[1]".
	Field string `json:"field"`
	// Reason says why, in words an operator can act on.
	Reason string `json:"reason"`
}

// entry is one conf of a policy, with its place in the merge order.
type entry[C any] struct {
	key     uint64
	conf    *C
	contrib *Contribution
}

// toEntry is a to[] entry with the destinations it names; none for kind Mesh.
type toEntry[C any] struct {
	entry[C]
	mesh  bool
	dests []Destination
}

// fromEntry is a from[] entry with its source selector as a tag set.
type fromEntry[C any] struct {
	entry[C]
	source    targetref.TargetRef
	sourceKey string
	kind      uint8
	tags      map[string]string
}

// policy is one prepared policy.
type policy[C any] struct {
	ord     int
	tier    uint16
	applied AppliedPolicy
	sel     selector
	to      []toEntry[C]
	from    []fromEntry[C]
	rules   []entry[C]
	def     *entry[C]
}

// Prepared is the policies of one type in one mesh, ordered and indexed for
// cheap per-proxy queries. It is immutable and safe for concurrent use.
type Prepared[C Mergeable[C]] struct {
	typ, mesh string
	pols      []*policy[C]
	always    []int32
	byDPName  map[string][]int32
	byDPLabel map[kv][]int32
	bySubset  map[kv][]int32
	byLegacy  map[string][]int32
	byService map[string][]int32
	services  serviceIndex
	skipped   []Skipped
}

// Skipped returns the policies and entries that are never applied, sorted by
// mesh, policy name and field.
func (p *Prepared[C]) Skipped() []Skipped { return slices.Clone(p.skipped) }

// Type returns the policy type: Inputs.Type, or the type of the policies.
func (p *Prepared[C]) Type() string { return p.typ }

// Prepare orders and indexes policies of one type (their specs must
// implement Targeted, and ToLister, FromLister, RulesLister or Defaulter for
// the sections they have, all with conf type C) against the MeshServices and
// other destinations of in. Policies of another mesh are ignored. It fails
// only on programming errors: specs of the wrong Go type, mixed policy types,
// MeshServices without a *meshservice.Spec.
func Prepare[C Mergeable[C]](in Inputs, policies []*resource.Resource) (*Prepared[C], error) {
	p := &Prepared[C]{
		typ:       in.Type,
		mesh:      in.Mesh,
		byDPName:  map[string][]int32{},
		byDPLabel: map[kv][]int32{},
		bySubset:  map[kv][]int32{},
		byLegacy:  map[string][]int32{},
		byService: map[string][]int32{},
		services:  serviceIndex{byAnchor: map[kv][]int32{}, byDPRef: map[string][]int32{}},
	}
	var errs []error
	services, err := indexServices(in.MeshServices)
	if err != nil {
		errs = append(errs, err)
	}

	type pending struct {
		res     *resource.Resource
		spec    Targeted
		ref     targetref.TargetRef
		rank    rank
		tier    uint16
		display string
	}
	var list []pending
	for _, res := range policies {
		if in.Mesh != "" && res.Meta.Mesh != in.Mesh {
			continue
		}
		if p.typ == "" {
			p.typ = res.Type
		} else if res.Type != p.typ {
			errs = append(errs, fmt.Errorf("policy %s %q: expected type %s: Prepare takes policies of one type", res.Type, res.Meta.Name, p.typ))
			continue
		}
		spec, ok := res.Spec.(Targeted)
		if !ok {
			errs = append(errs, fmt.Errorf("policy %s %q: spec %T has no GetTargetRef method", res.Type, res.Meta.Name, res.Spec))
			continue
		}
		pd := pending{res: res, spec: spec, ref: targetref.TargetRef{Kind: targetref.Mesh}}
		if ref := spec.GetTargetRef(); ref != nil {
			pd.ref = *ref
		}
		r, ok := topRank(&pd.ref)
		if !ok {
			p.skip(res, "spec.targetRef.kind", fmt.Sprintf("top-level kind %s is not supported by the matcher; the policy applies to no proxy", pd.ref.Kind))
			continue
		}
		pd.rank, pd.tier = r, tierOf(r, res.Meta.Labels)
		pd.display = displayName(res.Meta.Name, res.Meta.Labels)
		list = append(list, pd)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(list) >= maxPolicies {
		return nil, fmt.Errorf("%d policies of type %s: at most %d are supported", len(list), p.typ, maxPolicies-1)
	}
	slices.SortStableFunc(list, func(a, b pending) int {
		return comparePolicies(a.tier, a.display, a.res.Meta.Name, b.tier, b.display, b.res.Meta.Name)
	})

	p.pols = make([]*policy[C], len(list))
	for ord, pd := range list {
		meta := &pd.res.Meta
		pol := &policy[C]{ord: ord, tier: pd.tier, applied: AppliedPolicy{
			Type: pd.res.Type, Mesh: meta.Mesh, Name: meta.Name, TargetRef: pd.ref,
			Specificity: pd.rank.String(), Origin: meta.Labels[OriginLabel], Role: meta.Labels[PolicyRoleLabel],
		}}
		p.pols[ord] = pol
		p.index(pol, pd.res, services)
		if err := p.prepareEntries(pol, pd.res, pd.spec, in, services); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(p.skipped, func(a, b Skipped) int {
		return cmp.Or(strings.Compare(a.Mesh, b.Mesh), strings.Compare(a.Name, b.Name), strings.Compare(a.Field, b.Field))
	})
	return p, nil
}

// skip records a skipped policy or entry.
func (p *Prepared[C]) skip(res *resource.Resource, field, reason string) {
	p.skipped = append(p.skipped, Skipped{Type: res.Type, Mesh: res.Meta.Mesh, Name: res.Meta.Name, Field: field, Reason: reason})
}

// meshServices is the MeshServices of the snapshot, by name.
type meshServices struct {
	list   []*resource.Resource
	byName map[string]*resource.Resource
}

// indexServices checks the MeshServices and indexes them by name.
func indexServices(list []*resource.Resource) (*meshServices, error) {
	ms := &meshServices{byName: make(map[string]*resource.Resource, len(list))}
	var errs []error
	for _, r := range list {
		if _, ok := r.Spec.(*meshservice.Spec); !ok {
			errs = append(errs, fmt.Errorf("MeshService %q: spec is %T, not *meshservice.Spec", r.Meta.Name, r.Spec))
			continue
		}
		ms.list = append(ms.list, r)
		ms.byName[r.Meta.Name] = r
	}
	return ms, errors.Join(errs...)
}

// named returns the MeshService ref names, or nil.
func (m *meshServices) named(ref *targetref.TargetRef) *resource.Resource {
	if ref.Namespace != "" {
		if r := m.byName[ref.Name+"."+ref.Namespace]; r != nil {
			return r
		}
	}
	if r := m.byName[ref.Name]; r != nil && nameMatches(ref, &r.Meta) {
		return r
	}
	return nil
}

// selected returns the MeshServices ref names or whose labels it lists.
func (m *meshServices) selected(ref *targetref.TargetRef) []*resource.Resource {
	if ref.Name != "" {
		if r := m.named(ref); r != nil {
			return []*resource.Resource{r}
		}
		return nil
	}
	var out []*resource.Resource
	for _, r := range m.list {
		if subset(ref.Labels, r.Meta.Labels) {
			out = append(out, r)
		}
	}
	return out
}

// index builds the selector of pol and files it under the keys a proxy can
// find it by.
func (p *Prepared[C]) index(pol *policy[C], res *resource.Resource, services *meshServices) {
	ref := &pol.applied.TargetRef
	s := &pol.sel
	s.kind, s.proxyTypes = ref.Kind, proxyTypeBits(ref.ProxyTypes)
	i := int32(pol.ord)
	switch ref.Kind {
	case targetref.Mesh:
		p.always = append(p.always, i)
	case targetref.Dataplane:
		s.dpName, s.dpNamespace, s.dpLabels, s.section = ref.Name, ref.Namespace, ref.Labels, ref.SectionName
		switch {
		case ref.Name != "":
			p.byDPName[ref.Name] = append(p.byDPName[ref.Name], i)
			if ref.Namespace != "" {
				s.dpNameNS = ref.Name + "." + ref.Namespace
				p.byDPName[s.dpNameNS] = append(p.byDPName[s.dpNameNS], i)
			}
		case len(ref.Labels) > 0:
			a, _ := anchor(ref.Labels)
			p.byDPLabel[a] = append(p.byDPLabel[a], i)
		default:
			p.always = append(p.always, i)
		}
	case targetref.MeshSubset:
		s.tags = ref.Tags
		if a, ok := anchor(ref.Tags); ok {
			p.bySubset[a] = append(p.bySubset[a], i)
		} else {
			p.always = append(p.always, i)
		}
	case targetref.MeshServiceSubset:
		s.legacyService, s.tags = ref.Name, ref.Tags
		p.byLegacy[ref.Name] = append(p.byLegacy[ref.Name], i)
	case targetref.MeshService:
		selected := services.selected(ref)
		if len(selected) == 0 && ref.Name != "" {
			s.legacyService, s.section = ref.Name, ref.SectionName
			p.byLegacy[ref.Name] = append(p.byLegacy[ref.Name], i)
			return
		}
		for _, r := range selected {
			spec := r.Spec.(*meshservice.Spec)
			sel := serviceSel{name: r.Meta.Name}
			if ref.SectionName != "" {
				port, ok := servicePort(spec, ref.SectionName)
				if !ok {
					p.skip(res, "spec.targetRef.sectionName", fmt.Sprintf("%q names no port of MeshService %s", ref.SectionName, r.Meta.Name))
					continue
				}
				sel.narrowed = true
				switch {
				case port.TargetPort == nil:
					sel.inboundPort = port.Port
				case port.TargetPort.Str != "":
					sel.inboundName = port.TargetPort.Str
				default:
					sel.inboundPort = port.TargetPort.Int
				}
			}
			s.services = append(s.services, sel)
			if _, known := p.byService[r.Meta.Name]; !known {
				p.services.add(r.Meta.Name, spec)
			}
			p.byService[r.Meta.Name] = append(p.byService[r.Meta.Name], i)
		}
	}
}

// selectsOneInbound reports whether the top-level targetRef narrows the
// policy to one inbound with a sectionName.
func (s *selector) selectsOneInbound(ref *targetref.TargetRef) bool {
	return ref.SectionName != "" && (s.kind == targetref.Dataplane || s.kind == targetref.MeshService)
}

// prepareEntries resolves the to[], from[], rules[] and default sections of
// one policy.
func (p *Prepared[C]) prepareEntries(pol *policy[C], res *resource.Resource, spec Targeted, in Inputs, services *meshServices) error {
	meta := &res.Meta
	contrib := func(section string, i int) *Contribution {
		return &Contribution{Type: res.Type, Mesh: meta.Mesh, Name: meta.Name, Section: section, Index: i}
	}
	if s, ok := spec.(ToLister[C]); ok && len(s.GetTo()) > 0 {
		to := s.GetTo()
		if pol.sel.selectsOneInbound(&pol.applied.TargetRef) {
			p.skip(res, "spec.to", "the top-level targetRef has a sectionName, which selects one inbound; outbound traffic belongs to the whole proxy, so to[] is not applied")
		} else if len(to) >= maxEntries {
			return fmt.Errorf("policy %s %q: %d to[] entries: at most %d are supported", res.Type, meta.Name, len(to), maxEntries-1)
		} else {
			for i := range to {
				ref := &to[i].TargetRef
				kind, ok := toKindRank(ref)
				if !ok {
					p.skip(res, fmt.Sprintf("spec.to[%d].targetRef.kind", i), fmt.Sprintf("to[] kind %s is not supported by the matcher", ref.Kind))
					continue
				}
				e := toEntry[C]{entry: entry[C]{key: entryKey(pol.tier, kind, pol.ord, i), conf: &to[i].Default, contrib: contrib("to", i)}}
				if ref.Kind == targetref.Mesh {
					e.mesh = true
				} else {
					var problems []string
					e.dests, problems = destinations(ref, in, services)
					for _, msg := range problems {
						p.skip(res, fmt.Sprintf("spec.to[%d].targetRef.sectionName", i), msg)
					}
				}
				pol.to = append(pol.to, e)
			}
		}
	}
	if s, ok := spec.(FromLister[C]); ok {
		from := s.GetFrom()
		if len(from) >= maxEntries {
			return fmt.Errorf("policy %s %q: %d from[] entries: at most %d are supported", res.Type, meta.Name, len(from), maxEntries-1)
		}
		for i := range from {
			ref := from[i].TargetRef
			kind, ok := fromKindRank(ref.Kind)
			if !ok {
				p.skip(res, fmt.Sprintf("spec.from[%d].targetRef.kind", i), fmt.Sprintf("from[] kind %s is not supported by the matcher", ref.Kind))
				continue
			}
			tags := sourceTags(&ref)
			pol.from = append(pol.from, fromEntry[C]{
				entry:  entry[C]{key: entryKey(pol.tier, kind, pol.ord, i), conf: &from[i].Default, contrib: contrib("from", i)},
				source: ref, sourceKey: sourceKey(ref.Kind, tags), kind: kind, tags: tags,
			})
		}
	}
	if s, ok := spec.(RulesLister[C]); ok {
		rules := s.GetRules()
		if len(rules) >= maxEntries {
			return fmt.Errorf("policy %s %q: %d rules[] entries: at most %d are supported", res.Type, meta.Name, len(rules), maxEntries-1)
		}
		for i := range rules {
			pol.rules = append(pol.rules, entry[C]{key: entryKey(pol.tier, 0, pol.ord, i), conf: &rules[i].Default, contrib: contrib("rules", i)})
		}
	}
	if s, ok := spec.(Defaulter[C]); ok {
		if d := s.GetDefault(); d != nil {
			pol.def = &entry[C]{key: entryKey(pol.tier, 0, pol.ord, 0), conf: d, contrib: contrib("default", 0)}
		}
	}
	return nil
}

// destinations resolves a to[] targetRef other than Mesh to the destinations
// it names, with a message for each selected resource whose sectionName
// names no port.
func destinations(ref *targetref.TargetRef, in Inputs, services *meshServices) ([]Destination, []string) {
	var out []Destination
	var problems []string
	add := func(name string, spec *meshservice.Spec) {
		d := Destination{Kind: ref.Kind, Name: name}
		if ref.SectionName != "" {
			port, ok := servicePort(spec, ref.SectionName)
			if !ok {
				problems = append(problems, fmt.Sprintf("%q names no port of %s %s", ref.SectionName, ref.Kind, name))
				return
			}
			d.Port = port.Port
		}
		out = append(out, d)
	}
	if ref.Kind == targetref.MeshService {
		selected := services.selected(ref)
		if len(selected) == 0 && ref.Name != "" {
			add(ref.Name, nil) // a kuma.io/service without a MeshService resource
		}
		for _, r := range selected {
			add(r.Meta.Name, r.Spec.(*meshservice.Spec))
		}
		return out, problems
	}
	metas := in.Destinations[ref.Kind]
	if ref.Name != "" {
		for i := range metas {
			if nameMatches(ref, &metas[i]) {
				add(metas[i].Name, nil)
				return out, problems
			}
		}
		add(ref.Name, nil)
		return out, problems
	}
	for i := range metas {
		if subset(ref.Labels, metas[i].Labels) {
			add(metas[i].Name, nil)
		}
	}
	return out, problems
}

// sourceTags returns the tags a source must carry to match a from[]
// selector: none for Mesh, kuma.io/service standing for a service name.
func sourceTags(ref *targetref.TargetRef) map[string]string {
	tags := maps.Clone(ref.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	if ref.Kind == targetref.Mesh || ref.Kind == targetref.MeshSubset {
		if ref.Kind == targetref.Mesh {
			clear(tags)
		}
		return tags
	}
	tags[dataplane.ServiceTag] = ref.Name
	return tags
}

// sourceKey is a canonical text of a from[] selector, to group equal ones.
func sourceKey(kind targetref.Kind, tags map[string]string) string {
	var b strings.Builder
	b.WriteString(string(kind))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString("|" + k + "=" + tags[k])
	}
	return b.String()
}
