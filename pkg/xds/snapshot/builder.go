package snapshot

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Builder is the mutable side of a Snapshot: it holds one mesh's resources
// as they change and turns them into a new immutable Snapshot after each
// batch of changes (Snapshot). Maps handed to a snapshot are shared with it
// and copied before the next change (copy on write), and only the services
// a change touches are derived again, so a batch costs what it touches, not
// the size of the mesh. A Builder is not safe for concurrent use.
type Builder struct {
	name     string
	mesh     *resource.Resource
	meshSpec *mesh.Spec
	meshHash Hash

	dataplanes map[string]*Dataplane // shared with the last snapshot when dpShared
	dpShared   bool
	dpHash     Hash
	byService  map[string]map[string]struct{} // kuma.io/service → dataplane names
	sortedDPs  []*Dataplane                   // cache; nil after a dataplane change

	meshServices map[string]*resource.Resource
	msList       []*resource.Resource // sorted; nil after a change

	base     map[string]*Service // derived services before VIP collisions are resolved
	services map[string]*Service // resolved; shared with the last snapshot
	names    []string
	clusters map[string]clusterRef
	svcHash  Hash

	policies map[string]map[string]policyEntry
	sets     map[string]*PolicySet // shared with the last snapshot when setsShared
	setsShrd bool

	secrets map[string]Hash
	caHash  Hash

	// What the current batch touched.
	touched      map[string]bool // service names to derive again
	allServices  bool
	servicesSet  bool // a service was added or removed
	typesTouched map[string]bool
	caTouched    bool
}

// NewBuilder returns an empty Builder of the mesh name, tracking the given
// policy types (policies of other types are ignored).
func NewBuilder(name string, policyTypes []string) *Builder {
	s := &Builder{
		name:         name,
		dataplanes:   map[string]*Dataplane{},
		byService:    map[string]map[string]struct{}{},
		meshServices: map[string]*resource.Resource{},
		base:         map[string]*Service{},
		services:     map[string]*Service{},
		clusters:     map[string]clusterRef{},
		policies:     map[string]map[string]policyEntry{},
		sets:         map[string]*PolicySet{},
		secrets:      map[string]Hash{},
		touched:      map[string]bool{},
		typesTouched: map[string]bool{},
	}
	for _, t := range policyTypes {
		s.policies[t] = map[string]policyEntry{}
		s.typesTouched[t] = true
	}
	s.allServices, s.caTouched = true, true
	return s
}

// SetMesh records the Mesh resource.
func (s *Builder) SetMesh(res *resource.Resource) error {
	spec, ok := res.Spec.(*mesh.Spec)
	if !ok {
		return fmt.Errorf("mesh %q has spec %T, not *mesh.Spec", res.Meta.Name, res.Spec)
	}
	h, err := ResourceHash(res)
	if err != nil {
		return fmt.Errorf("hashing mesh %q: %w", res.Meta.Name, err)
	}
	if s.meshSpec == nil || servicesMode(s.meshSpec) != servicesMode(spec) {
		s.allServices = true
	}
	s.mesh, s.meshSpec, s.meshHash = res, spec, h
	s.caTouched = true
	return nil
}

func servicesMode(m *mesh.Spec) string {
	if m.MeshServices == nil {
		return ""
	}
	return m.MeshServices.Mode
}

// ownDataplanes makes the dataplane map the state's own before a change.
func (s *Builder) ownDataplanes() {
	if s.dpShared {
		s.dataplanes = maps.Clone(s.dataplanes)
		s.dpShared = false
	}
	s.sortedDPs = nil
}

// Set records res, of type typ and name name, as created or updated; nil
// records its deletion. Mesh resources go through SetMesh; policies of
// types the builder does not track, and other types, are ignored.
func (s *Builder) Set(typ, name string, res *resource.Resource) error {
	switch typ {
	case resource.DataplaneType:
		if res == nil {
			s.deleteDataplane(name)
			return nil
		}
		return s.upsertDataplane(res)
	case resource.MeshServiceType:
		if res == nil {
			s.deleteMeshService(name)
			return nil
		}
		return s.upsertMeshService(res)
	case resource.SecretType:
		if res == nil {
			s.deleteSecret(name)
			return nil
		}
		return s.upsertSecret(res)
	case resource.MeshType, resource.DataplaneInsightType:
		return nil
	default:
		if res == nil {
			s.deletePolicy(typ, name)
			return nil
		}
		return s.upsertPolicy(res)
	}
}

// upsertDataplane records a created or updated Dataplane.
func (s *Builder) upsertDataplane(res *resource.Resource) error {
	spec, ok := res.Spec.(*dataplane.Spec)
	if !ok {
		return fmt.Errorf("dataplane %q has spec %T, not *dataplane.Spec", res.Meta.Name, res.Spec)
	}
	h, err := ResourceHash(res)
	if err != nil {
		return fmt.Errorf("hashing dataplane %q: %w", res.Meta.Name, err)
	}
	name := res.Meta.Name
	old := s.dataplanes[name]
	if old != nil && old.Hash == h {
		return nil
	}
	dp := &Dataplane{Resource: res, Spec: spec, Hash: h}
	s.ownDataplanes()
	if old != nil {
		s.unindex(old)
		s.dpHash = xor(s.dpHash, entryHash(name, old.Hash))
	}
	s.dataplanes[name] = dp
	s.dpHash = xor(s.dpHash, entryHash(name, h))
	s.index(dp)
	return nil
}

// deleteDataplane forgets a Dataplane.
func (s *Builder) deleteDataplane(name string) {
	old := s.dataplanes[name]
	if old == nil {
		return
	}
	s.ownDataplanes()
	s.unindex(old)
	s.dpHash = xor(s.dpHash, entryHash(name, old.Hash))
	delete(s.dataplanes, name)
}

// index files dp under its services and marks what it affects.
func (s *Builder) index(dp *Dataplane) {
	for _, svc := range dp.Services() {
		set := s.byService[svc]
		if set == nil {
			set = map[string]struct{}{}
			s.byService[svc] = set
		}
		set[dp.Name()] = struct{}{}
		s.touched[svc] = true
	}
	s.touchMeshServices(dp)
}

// unindex removes dp from its services and marks what it affected.
func (s *Builder) unindex(dp *Dataplane) {
	for _, svc := range dp.Services() {
		if set := s.byService[svc]; set != nil {
			delete(set, dp.Name())
			if len(set) == 0 {
				delete(s.byService, svc)
			}
		}
		s.touched[svc] = true
	}
	s.touchMeshServices(dp)
}

// touchMeshServices marks the MeshServices that select dp.
func (s *Builder) touchMeshServices(dp *Dataplane) {
	for name, ms := range s.meshServices {
		if selects(&ms.Spec.(*meshservice.Spec).Selector, dp) {
			s.touched[name] = true
		}
	}
}

// upsertMeshService records a created or updated MeshService.
func (s *Builder) upsertMeshService(res *resource.Resource) error {
	if _, ok := res.Spec.(*meshservice.Spec); !ok {
		return fmt.Errorf("MeshService %q has spec %T, not *meshservice.Spec", res.Meta.Name, res.Spec)
	}
	s.meshServices[res.Meta.Name] = res
	s.msList = nil
	s.touched[res.Meta.Name] = true
	return nil
}

// deleteMeshService forgets a MeshService.
func (s *Builder) deleteMeshService(name string) {
	if _, ok := s.meshServices[name]; ok {
		delete(s.meshServices, name)
		s.msList = nil
		s.touched[name] = true
	}
}

// upsertPolicy records a created or updated policy.
func (s *Builder) upsertPolicy(res *resource.Resource) error {
	m := s.policies[res.Type]
	if m == nil {
		return nil // not a tracked policy type
	}
	h, err := ResourceHash(res)
	if err != nil {
		return fmt.Errorf("hashing %s %q: %w", res.Type, res.Meta.Name, err)
	}
	if old, ok := m[res.Meta.Name]; ok && old.hash == h {
		return nil
	}
	m[res.Meta.Name] = policyEntry{res: res, hash: h}
	s.typesTouched[res.Type] = true
	return nil
}

// deletePolicy forgets a policy.
func (s *Builder) deletePolicy(typ, name string) {
	if m := s.policies[typ]; m != nil {
		if _, ok := m[name]; ok {
			delete(m, name)
			s.typesTouched[typ] = true
		}
	}
}

// upsertSecret records the content hash of a Secret of the mesh.
func (s *Builder) upsertSecret(res *resource.Resource) error {
	h, err := ResourceHash(res)
	if err != nil {
		return fmt.Errorf("hashing secret %q: %w", res.Meta.Name, err)
	}
	if s.secrets[res.Meta.Name] != h {
		s.secrets[res.Meta.Name] = h
		s.caTouched = true
	}
	return nil
}

// deleteSecret forgets a Secret.
func (s *Builder) deleteSecret(name string) {
	if _, ok := s.secrets[name]; ok {
		delete(s.secrets, name)
		s.caTouched = true
	}
}

// Changed reports whether anything changed since the last Snapshot.
func (s *Builder) Changed() bool {
	return len(s.touched) > 0 || s.allServices || len(s.typesTouched) > 0 || s.caTouched || !s.dpShared
}

// Snapshot returns a new immutable Snapshot of what the builder holds, with
// the given generation, and starts a new batch.
func (s *Builder) Snapshot(gen uint64) *Snapshot {
	s.deriveServices()
	for typ := range s.typesTouched {
		s.sets = s.ownSets()
		s.sets[typ] = newPolicySet(typ, s.policies[typ])
	}
	if s.caTouched {
		s.caHash = caHash(s.name, s.meshSpec, s.secrets)
	}
	if s.msList == nil {
		s.msList = make([]*resource.Resource, 0, len(s.meshServices))
		for _, n := range slices.Sorted(maps.Keys(s.meshServices)) {
			s.msList = append(s.msList, s.meshServices[n])
		}
	}
	snap := &Snapshot{
		name: s.name, generation: gen,
		meshRes: s.mesh, meshSpec: s.meshSpec, meshHash: s.meshHash, caHash: s.caHash,
		dataplanes: s.dataplanes, dpHash: s.dpHash,
		services: s.services, serviceNames: s.names, servicesHash: s.svcHash, clusters: s.clusters,
		meshServices: s.msList,
		policies:     s.sets,
	}
	x := NewHasher()
	x.Hash(s.meshHash)
	x.Hash(s.caHash)
	x.Hash(s.svcHash)
	x.Hash(s.dpHash)
	for _, typ := range slices.Sorted(maps.Keys(s.sets)) {
		x.String(typ)
		x.Hash(s.sets[typ].Hash)
	}
	snap.hash = x.Sum()
	if s.sortedDPs != nil {
		snap.sortedOnce.Do(func() { snap.sorted = s.sortedDPs })
	}
	s.dpShared, s.setsShrd = true, true
	clear(s.touched)
	clear(s.typesTouched)
	s.allServices, s.servicesSet, s.caTouched = false, false, false
	return snap
}

func (s *Builder) ownSets() map[string]*PolicySet {
	if s.setsShrd {
		s.setsShrd = false
		return maps.Clone(s.sets)
	}
	return s.sets
}

// sorted returns every dataplane sorted by name, cached until the next
// dataplane change.
func (s *Builder) sorted() []*Dataplane {
	if s.sortedDPs == nil {
		s.sortedDPs = make([]*Dataplane, 0, len(s.dataplanes))
		for _, n := range slices.Sorted(maps.Keys(s.dataplanes)) {
			s.sortedDPs = append(s.sortedDPs, s.dataplanes[n])
		}
	}
	return s.sortedDPs
}

// deriveServices derives the touched services again (all of them after a
// mode change) and resolves VIP collisions.
func (s *Builder) deriveServices() {
	if s.allServices {
		clear(s.touched)
		for n := range s.base {
			s.touched[n] = true
		}
		for n := range s.byService {
			s.touched[n] = true
		}
		for n := range s.meshServices {
			s.touched[n] = true
		}
	}
	if len(s.touched) == 0 {
		return
	}
	mode := servicesMode(s.meshSpec)
	for name := range s.touched {
		var svc *Service
		if ms, ok := s.meshServices[name]; ok && mode != ModeDisabled {
			svc = explicitService(s.name, ms, s.sorted())
		} else if set := s.byService[name]; len(set) > 0 && mode != ModeExclusive {
			dps := make([]*Dataplane, 0, len(set))
			for _, n := range slices.Sorted(maps.Keys(set)) {
				dps = append(dps, s.dataplanes[n])
			}
			svc = implicitService(s.name, name, dps)
		}
		old, had := s.base[name]
		switch {
		case svc == nil && had:
			delete(s.base, name)
			s.servicesSet = true
		case svc != nil && !had:
			s.base[name] = svc
			s.servicesSet = true
		case svc != nil && old.Hash != svc.Hash:
			s.base[name] = svc
		}
	}
	s.resolve()
}

// resolve builds the published service map from the derived ones: when
// several services share a VIP, the one whose name sorts first keeps it and
// the others get another derived address.
func (s *Builder) resolve() {
	names := slices.Sorted(maps.Keys(s.base))
	services := make(map[string]*Service, len(names))
	taken := make(map[string]bool, len(names))
	for _, n := range names {
		svc := s.base[n]
		for attempt := 1; taken[svc.VIP]; attempt++ {
			svc = svc.withVIP(deriveVIP(s.name, n, attempt))
		}
		taken[svc.VIP] = true
		services[n] = svc
	}
	clusters := make(map[string]clusterRef, len(names))
	x := NewHasher()
	for _, n := range names {
		svc := services[n]
		x.String(n)
		x.Hash(svc.Hash)
		for i := range svc.Ports {
			clusters[svc.Ports[i].Cluster] = clusterRef{svc: svc, port: i}
		}
	}
	s.services, s.clusters, s.names, s.svcHash = services, clusters, names, x.Sum()
}

// newPolicySet builds the published set of one policy type.
func newPolicySet(typ string, m map[string]policyEntry) *PolicySet {
	ps := &PolicySet{Type: typ, byName: maps.Clone(m), Items: make([]*resource.Resource, 0, len(m))}
	var h Hash
	for _, n := range slices.Sorted(maps.Keys(m)) {
		ps.Items = append(ps.Items, m[n].res)
		h = xor(h, entryHash(n, m[n].hash))
	}
	ps.Hash = h
	return ps
}

// caHash hashes the mesh's mTLS section and the secrets its CA backends
// live in, so that enabling mTLS, switching backends or replacing a CA
// changes it.
func caHash(meshName string, spec *mesh.Spec, secrets map[string]Hash) Hash {
	x := NewHasher()
	if spec == nil || spec.MTLS == nil {
		return x.Sum()
	}
	x.String(spec.MTLS.EnabledBackend)
	for _, b := range spec.MTLS.Backends {
		x.String(b.Name)
		x.String(b.Type)
		x.String(b.Mode)
		var names []string
		switch b.Type {
		case mesh.BackendBuiltin:
			names = []string{pki.BuiltinCertSecretName(meshName, b.Name), pki.BuiltinKeySecretName(meshName, b.Name)}
		case mesh.BackendProvided:
			if b.Conf != nil {
				for _, ds := range []*mesh.DataSource{b.Conf.Cert, b.Conf.Key} {
					if ds == nil {
						continue
					}
					x.String(ds.File)
					x.Bytes(ds.Inline)
					x.String(ds.InlineString)
					if ds.Secret != "" {
						names = append(names, ds.Secret)
					}
				}
			}
		}
		if b.DPCert != nil && b.DPCert.Rotation != nil {
			x.String(strings.TrimSpace(string(b.DPCert.Rotation.Expiration)))
		}
		for _, n := range names {
			x.String(n)
			x.Hash(secrets[n])
		}
	}
	return x.Sum()
}
