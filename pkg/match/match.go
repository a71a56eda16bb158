package match

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// MatchResource is Match for a Dataplane resource; it fails when the
// resource's spec is not a *dataplane.Spec.
func (p *Prepared[C]) MatchResource(dp *resource.Resource) (*Result[C], error) {
	spec, ok := dp.Spec.(*dataplane.Spec)
	if !ok {
		return nil, fmt.Errorf("matching %s policies: dataplane %q has spec %T, not *dataplane.Spec", p.typ, dp.Meta.Name, dp.Spec)
	}
	return p.Match(dp.Meta, spec), nil
}

// Match selects the policies that apply to the dataplane with meta and spec,
// and merges their confs: proxy-wide (spec.default), per outbound
// destination (to[]), and per inbound (rules[] and from[]). A dataplane of
// another mesh gets an empty result.
func (p *Prepared[C]) Match(meta resource.Meta, spec *dataplane.Spec) *Result[C] {
	res := &Result[C]{Type: p.typ, Mesh: meta.Mesh, Dataplane: meta.Name, Policies: []AppliedPolicy{}}
	if spec == nil || (p.mesh != "" && meta.Mesh != p.mesh) {
		return res
	}
	px := p.services.view(&meta, spec)
	sel := p.selectPolicies(px)
	res.Policies = make([]AppliedPolicy, len(sel))
	for i, pol := range sel {
		res.Policies[i] = pol.applied
	}
	mg := &merger[C]{}
	res.Default = buildDefault(mg, sel)
	res.To = buildTo(mg, sel)
	res.Inbounds = buildInbounds(mg, px, sel)
	return res
}

// selectPolicies returns the policies whose top-level targetRef selects the
// proxy, least specific first. Only the policies filed under the proxy's
// name, labels, inbound tags and services are checked.
func (p *Prepared[C]) selectPolicies(px *proxyView) []*policy[C] {
	cands := make([]int32, 0, len(p.always)+8)
	cands = append(cands, p.always...)
	if len(p.byDPName) > 0 {
		cands = append(cands, p.byDPName[px.meta.Name]...)
	}
	if len(p.byDPLabel) > 0 {
		for k, v := range px.meta.Labels {
			cands = append(cands, p.byDPLabel[kv{k, v}]...)
		}
	}
	for i := range px.inbounds {
		iv := &px.inbounds[i]
		if len(p.bySubset) > 0 {
			for k, v := range iv.in.Tags {
				cands = append(cands, p.bySubset[kv{k, v}]...)
			}
		}
		if len(p.byLegacy) > 0 {
			cands = append(cands, p.byLegacy[iv.in.Tags[dataplane.ServiceTag]]...)
		}
		for _, name := range iv.services {
			cands = append(cands, p.byService[name]...)
		}
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	sel := make([]*policy[C], 0, len(cands))
	for _, c := range cands {
		if pol := p.pols[c]; pol.sel.appliesToProxy(px) {
			sel = append(sel, pol)
		}
	}
	return sel
}

// merger merges entries that are in merge order. It hands out contributor
// lists from one shared array, and reuses the merges of every prefix of a
// base list (the Mesh to[] entries) that most destinations start with, so a
// destination costs one Merge per entry of its own.
type merger[C Mergeable[C]] struct {
	contribs []*Contribution
	confs    []*C
	base     []*entry[C]
	prefix   []C // prefix[k] merges base[:k+1]
}

// setBase records base and merges each of its prefixes.
func (m *merger[C]) setBase(base []*entry[C]) {
	m.base = base
	m.prefix = make([]C, len(base))
	for k, e := range base {
		if k == 0 {
			m.prefix[k] = *e.conf
		} else {
			m.prefix[k] = m.prefix[k-1].Merge(*e.conf)
		}
	}
}

// grow makes room for n more contributors in the shared array.
func (m *merger[C]) grow(n int) {
	m.contribs = slices.Grow(m.contribs, n)
	m.confs = slices.Grow(m.confs, n)
}

// merge merges es, which must not be empty.
func (m *merger[C]) merge(es []*entry[C]) Merged[C] {
	p := 0
	for p < len(es) && p < len(m.base) && es[p] == m.base[p] {
		p++
	}
	var conf C
	rest := es[1:]
	if p > 0 {
		conf, rest = m.prefix[p-1], es[p:]
	} else {
		conf = *es[0].conf
	}
	for _, e := range rest {
		conf = conf.Merge(*e.conf)
	}
	start, end := len(m.contribs), len(m.contribs)+len(es)
	for _, e := range es {
		m.contribs = append(m.contribs, e.contrib)
		m.confs = append(m.confs, e.conf)
	}
	return Merged[C]{Conf: conf, Contributors: m.contribs[start:end:end], confs: m.confs[start:end:end]}
}

// sortEntries puts entries in merge order.
func sortEntries[C any](es []*entry[C]) {
	slices.SortFunc(es, func(a, b *entry[C]) int { return cmp.Compare(a.key, b.key) })
}

// buildDefault merges the spec.default of the selected policies.
func buildDefault[C Mergeable[C]](mg *merger[C], sel []*policy[C]) *Merged[C] {
	var es []*entry[C]
	for _, pol := range sel {
		if pol.def != nil {
			es = append(es, pol.def)
		}
	}
	if len(es) == 0 {
		return nil
	}
	m := mg.merge(es)
	return &m
}

// destEntry is a to[] entry filed under one destination it names.
type destEntry[C any] struct {
	dest Destination
	e    *entry[C]
}

// buildTo merges the to[] entries of the selected policies: the Mesh entries
// for every destination, and for each destination an entry names, the Mesh
// entries, the entries naming the whole resource and those naming the
// destination's port, in merge order. A MeshHTTPRoute gets its own entries
// only; ForRoute puts them on top of the owning outbound's conf.
func buildTo[C Mergeable[C]](mg *merger[C], sel []*policy[C]) ToResult[C] {
	var mesh []*entry[C]
	var named []destEntry[C]
	for _, pol := range sel {
		for i := range pol.to {
			e := &pol.to[i]
			if e.mesh {
				mesh = append(mesh, &e.entry)
				continue
			}
			for _, d := range e.dests {
				named = append(named, destEntry[C]{dest: d, e: &e.entry})
			}
		}
	}
	var out ToResult[C]
	if len(mesh) > 0 {
		sortEntries(mesh)
		mg.setBase(mesh)
		mg.grow(len(mesh))
		m := mg.merge(mesh)
		out.AllDestinations = &m
	}
	if len(named) == 0 {
		return out
	}
	slices.SortFunc(named, func(a, b destEntry[C]) int {
		if c := a.dest.compare(b.dest); c != 0 {
			return c
		}
		return cmp.Compare(a.e.key, b.e.key)
	})
	groups := 1
	for i := 1; i < len(named); i++ {
		if named[i].dest != named[i-1].dest {
			groups++
		}
	}
	out.Destinations = make([]DestinationResult[C], 0, groups)
	mg.grow(groups*len(mesh) + 2*len(named))
	scratch := make([]*entry[C], 0, len(mesh)+len(named))
	var whole []destEntry[C] // the group naming the whole resource of the current name
	for i := 0; i < len(named); {
		d := named[i].dest
		j := i + 1
		for j < len(named) && named[j].dest == d {
			j++
		}
		group := named[i:j]
		i = j
		if d.Port == 0 {
			whole = group
		} else if len(whole) > 0 && (whole[0].dest.Kind != d.Kind || whole[0].dest.Name != d.Name) {
			whole = nil
		}
		scratch = scratch[:0]
		if d.Kind != targetref.MeshHTTPRoute {
			scratch = append(scratch, mesh...)
		}
		if d.Port != 0 {
			for _, de := range whole {
				scratch = append(scratch, de.e)
			}
		}
		for _, de := range group {
			scratch = append(scratch, de.e)
		}
		sortEntries(scratch)
		out.Destinations = append(out.Destinations, DestinationResult[C]{Destination: d, Merged: mg.merge(scratch)})
	}
	return out
}

// buildInbounds merges, per inbound that is not Ignored, the rules[] and
// from[] entries of the selected policies that select the inbound.
func buildInbounds[C Mergeable[C]](mg *merger[C], px *proxyView, sel []*policy[C]) []InboundResult[C] {
	out := make([]InboundResult[C], 0, len(px.inbounds))
	var rules []*entry[C]
	for i := range px.inbounds {
		iv := &px.inbounds[i]
		if iv.gateway {
			continue
		}
		ir := InboundResult[C]{Name: iv.in.Name, Port: iv.in.Port, Service: iv.in.Tags[dataplane.ServiceTag]}
		rules = rules[:0]
		var from []*fromEntry[C]
		for _, pol := range sel {
			if (len(pol.rules) == 0 && len(pol.from) == 0) || !pol.sel.selectsInbound(px, iv) {
				continue
			}
			for j := range pol.rules {
				rules = append(rules, &pol.rules[j])
			}
			for j := range pol.from {
				from = append(from, &pol.from[j])
			}
		}
		if len(rules) > 0 {
			m := mg.merge(rules)
			ir.Rules = &m
		}
		if len(from) > 0 {
			ir.From = buildFrom(mg, from)
		}
		out = append(out, ir)
	}
	return out
}

// buildFrom merges from[] entries per source selector: each selector gets
// every entry whose selector includes it, Mesh entries included.
func buildFrom[C Mergeable[C]](mg *merger[C], from []*fromEntry[C]) FromResult[C] {
	slices.SortFunc(from, func(a, b *fromEntry[C]) int { return cmp.Compare(a.key, b.key) })
	out := FromResult[C]{entries: from}
	var es []*entry[C]
	var sources []*fromEntry[C]
	for _, f := range from {
		if len(f.tags) == 0 {
			es = append(es, &f.entry)
			continue
		}
		if !slices.ContainsFunc(sources, func(s *fromEntry[C]) bool { return s.sourceKey == f.sourceKey }) {
			sources = append(sources, f)
		}
	}
	if len(es) > 0 {
		m := mg.merge(es)
		out.AllSources = &m
	}
	slices.SortFunc(sources, func(a, b *fromEntry[C]) int {
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.tags), len(b.tags)); c != 0 {
			return c
		}
		return strings.Compare(a.sourceKey, b.sourceKey)
	})
	for _, s := range sources {
		es = es[:0]
		for _, f := range from {
			if subset(f.tags, s.tags) {
				es = append(es, &f.entry)
			}
		}
		out.Sources = append(out.Sources, SourceResult[C]{Source: s.source, Merged: mg.merge(es)})
	}
	return out
}
