package match

import (
	"strconv"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// kv is one tag or label, a map key that needs no string concatenation.
type kv struct{ k, v string }

// subset reports whether have carries every key/value of want.
func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// anchor returns the tag or label a selector is indexed by: its smallest key.
// It reports false for an empty selector, which matches everything.
func anchor(m map[string]string) (kv, bool) {
	var a kv
	found := false
	for k, v := range m {
		if !found || k < a.k {
			a, found = kv{k, v}, true
		}
	}
	return a, found
}

// nameMatches reports whether a resource is the one ref names: by name, or
// in a namespace as "name.namespace" or by the namespace label.
func nameMatches(ref *targetref.TargetRef, meta *resource.Meta) bool {
	if ref.Namespace == "" {
		return meta.Name == ref.Name
	}
	if meta.Name == ref.Name+"."+ref.Namespace {
		return true
	}
	return meta.Name == ref.Name && meta.Labels[NamespaceLabel] == ref.Namespace
}

// proxy type bits for targetRef.proxyTypes.
const (
	proxySidecar uint8 = 1 << iota
	proxyGateway
)

// proxyTypeBits returns the proxyTypes of ref as bits; 0 means all.
func proxyTypeBits(types []string) uint8 {
	var b uint8
	for _, t := range types {
		switch t {
		case "Sidecar":
			b |= proxySidecar
		case "Gateway":
			b |= proxyGateway
		}
	}
	return b
}

// selector is a resolved top-level targetRef.
type selector struct {
	kind       targetref.Kind
	proxyTypes uint8
	// Dataplane
	dpName, dpNamespace, dpNameNS string
	dpLabels                      map[string]string
	section                       string
	// MeshSubset, MeshServiceSubset
	tags map[string]string
	// MeshService (kuma.io/service fallback) and MeshServiceSubset
	legacyService string
	// MeshService resources the policy selects, by index in the snapshot.
	services []serviceSel
}

// serviceSel is one MeshService a top-level targetRef selects, with the
// inbound a sectionName narrows it to.
type serviceSel struct {
	name string
	// narrowed is set when sectionName picked one port; then an inbound must
	// have inboundName (when set) or inboundPort.
	narrowed    bool
	inboundName string
	inboundPort uint32
}

// inboundView is one inbound of the proxy as selectors see it.
type inboundView struct {
	in       *dataplane.Inbound
	services []string // MeshServices the inbound backs (only those policies name)
	gateway  bool     // the tags of a builtin gateway, not a real inbound
}

// proxyView is the dataplane as selectors see it.
type proxyView struct {
	meta      *resource.Meta
	proxyType uint8
	inbounds  []inboundView
}

// appliesToProxy reports whether the selector picks the proxy at all.
func (s *selector) appliesToProxy(px *proxyView) bool {
	if s.proxyTypes != 0 && s.proxyTypes&px.proxyType == 0 {
		return false
	}
	switch s.kind {
	case targetref.Mesh:
		return true
	case targetref.Dataplane:
		if !s.dataplaneMatches(px.meta) {
			return false
		}
		if s.section == "" {
			return true
		}
	}
	for i := range px.inbounds {
		if s.selectsInbound(px, &px.inbounds[i]) {
			return true
		}
	}
	return false
}

// dataplaneMatches checks the name and labels of a Dataplane selector.
func (s *selector) dataplaneMatches(meta *resource.Meta) bool {
	switch {
	case s.dpName == "":
	case s.dpNamespace == "":
		if meta.Name != s.dpName {
			return false
		}
	case meta.Name == s.dpNameNS:
	case meta.Name != s.dpName || meta.Labels[NamespaceLabel] != s.dpNamespace:
		return false
	}
	return subset(s.dpLabels, meta.Labels)
}

// selectsInbound reports whether the selector picks one inbound of a proxy
// it applies to (the gateway pseudo-inbound counts for proxy selection).
func (s *selector) selectsInbound(px *proxyView, iv *inboundView) bool {
	switch s.kind {
	case targetref.Mesh:
		return true
	case targetref.Dataplane:
		if iv.gateway {
			return false
		}
		return s.section == "" || sectionSelects(px, iv, s.section)
	case targetref.MeshSubset:
		return subset(s.tags, iv.in.Tags)
	case targetref.MeshServiceSubset:
		return iv.in.Tags[dataplane.ServiceTag] == s.legacyService && subset(s.tags, iv.in.Tags)
	case targetref.MeshService:
		if s.legacyService != "" {
			return iv.in.Tags[dataplane.ServiceTag] == s.legacyService &&
				(s.section == "" || iv.gateway || sectionSelects(px, iv, s.section))
		}
		for _, sel := range s.services {
			for _, name := range iv.services {
				if name != sel.name {
					continue
				}
				if !sel.narrowed || iv.gateway {
					return true
				}
				if sel.inboundName != "" {
					if iv.in.Name == sel.inboundName {
						return true
					}
				} else if iv.in.Port == sel.inboundPort {
					return true
				}
			}
		}
	}
	return false
}

// sectionSelects resolves a Dataplane sectionName against the proxy's
// inbounds: an inbound name if any inbound has it, else the port of an
// unnamed inbound.
func sectionSelects(px *proxyView, iv *inboundView, section string) bool {
	if iv.in.Name == section {
		return true
	}
	if iv.in.Name != "" {
		return false
	}
	for i := range px.inbounds {
		if !px.inbounds[i].gateway && px.inbounds[i].in.Name == section {
			return false
		}
	}
	n, err := strconv.ParseUint(section, 10, 32)
	return err == nil && uint32(n) == iv.in.Port
}

// servicePort resolves a sectionName against a MeshService's ports: a port
// name first, else the number of an unnamed port. With ms nil (a
// kuma.io/service without a MeshService resource) any port number resolves.
func servicePort(ms *meshservice.Spec, section string) (meshservice.Port, bool) {
	if ms != nil {
		for _, p := range ms.Ports {
			if p.Name == section {
				return p, true
			}
		}
	}
	n, err := strconv.ParseUint(section, 10, 32)
	if err != nil || n == 0 || n > 65535 {
		return meshservice.Port{}, false
	}
	if ms == nil {
		return meshservice.Port{Port: uint32(n)}, true
	}
	for _, p := range ms.Ports {
		if p.Name == "" && p.Port == uint32(n) {
			return p, true
		}
	}
	return meshservice.Port{}, false
}

// serviceIndex finds, per inbound, the MeshServices that policies select and
// the inbound backs, without scanning every service.
type serviceIndex struct {
	specs    []*meshservice.Spec
	names    []string
	byAnchor map[kv][]int32
	byDPRef  map[string][]int32
}

// add indexes one MeshService.
func (x *serviceIndex) add(name string, spec *meshservice.Spec) {
	i := int32(len(x.specs))
	x.specs = append(x.specs, spec)
	x.names = append(x.names, name)
	switch {
	case spec.Selector.DataplaneRef != nil:
		x.byDPRef[spec.Selector.DataplaneRef.Name] = append(x.byDPRef[spec.Selector.DataplaneRef.Name], i)
	case len(spec.Selector.DataplaneTags) > 0:
		a, _ := anchor(spec.Selector.DataplaneTags)
		x.byAnchor[a] = append(x.byAnchor[a], i)
	}
}

// backedBy appends to buf the names of the indexed MeshServices that select
// an inbound with the given tags on the named dataplane.
func (x *serviceIndex) backedBy(buf []string, dpName string, tags map[string]string) []string {
	for _, i := range x.byDPRef[dpName] {
		buf = append(buf, x.names[i])
	}
	for k, v := range tags {
		for _, i := range x.byAnchor[kv{k, v}] {
			if subset(x.specs[i].Selector.DataplaneTags, tags) {
				buf = append(buf, x.names[i])
			}
		}
	}
	return buf
}

// view builds the proxy as selectors see it.
func (x *serviceIndex) view(meta *resource.Meta, spec *dataplane.Spec) *proxyView {
	n := &spec.Networking
	px := &proxyView{meta: meta, proxyType: proxySidecar}
	size := len(n.Inbound)
	if n.Gateway != nil {
		size++
		if n.Gateway.Type == "BUILTIN" {
			px.proxyType = proxyGateway
		}
	}
	px.inbounds = make([]inboundView, 0, size)
	var buf []string
	for i := range n.Inbound {
		in := &n.Inbound[i]
		if in.State == dataplane.StateIgnored {
			continue
		}
		start := len(buf)
		if len(x.specs) > 0 {
			buf = x.backedBy(buf, meta.Name, in.Tags)
		}
		px.inbounds = append(px.inbounds, inboundView{in: in, services: buf[start:len(buf):len(buf)]})
	}
	if n.Gateway != nil {
		in := &dataplane.Inbound{Tags: n.Gateway.Tags}
		start := len(buf)
		if len(x.specs) > 0 {
			buf = x.backedBy(buf, meta.Name, in.Tags)
		}
		px.inbounds = append(px.inbounds, inboundView{in: in, services: buf[start:len(buf):len(buf)], gateway: true})
	}
	return px
}
