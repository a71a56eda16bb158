package snapshot

import (
	"maps"
	"slices"
	"sync"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// Snapshot is an immutable view of one mesh: the Mesh, its Dataplanes, its
// services (explicit MeshServices and implicit kuma.io/service ones), its
// policies per type and a hash of its CA material. Every part has a content
// hash, so consumers can tell cheaply what changed between two snapshots
// (see Diff). A Snapshot and everything it returns are shared: read-only.
type Snapshot struct {
	name       string
	generation uint64

	meshRes  *resource.Resource
	meshSpec *mesh.Spec
	meshHash Hash
	caHash   Hash

	dataplanes map[string]*Dataplane
	dpHash     Hash // XOR of entryHash(name, dataplane hash)

	services     map[string]*Service
	serviceNames []string
	servicesHash Hash // XOR of entryHash(name, service hash)
	clusters     map[string]clusterRef
	meshServices []*resource.Resource

	policies map[string]*PolicySet

	hash Hash

	sortedOnce sync.Once
	sorted     []*Dataplane
	memo       memo
}

// clusterRef locates the service port a cluster name stands for.
type clusterRef struct {
	svc  *Service
	port int
}

// Dataplane is one Dataplane of the mesh with its content hash.
type Dataplane struct {
	// Resource is the stored resource (read-only).
	Resource *resource.Resource
	// Spec is the resource's spec.
	Spec *dataplane.Spec
	// Hash is the content hash of labels and spec.
	Hash Hash
}

// Name returns the dataplane's name.
func (d *Dataplane) Name() string { return d.Resource.Meta.Name }

// Key returns the dataplane's mesh and name.
func (d *Dataplane) Key() resource.Key { return d.Resource.Meta.Key() }

// Services returns the kuma.io/service values of the dataplane's inbounds
// that are not Ignored (and of its gateway), sorted, without duplicates.
func (d *Dataplane) Services() []string {
	var out []string
	for i := range d.Spec.Networking.Inbound {
		in := &d.Spec.Networking.Inbound[i]
		if in.State == dataplane.StateIgnored || in.Service() == "" {
			continue
		}
		out = append(out, in.Service())
	}
	if gw := d.Spec.Networking.Gateway; gw != nil && gw.Tags[dataplane.ServiceTag] != "" {
		out = append(out, gw.Tags[dataplane.ServiceTag])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// PolicySet is the policies of one type in a mesh.
type PolicySet struct {
	// Type is the policy type.
	Type string
	// Items are the policies sorted by name.
	Items []*resource.Resource
	// Hash covers every policy's name and content.
	Hash Hash

	byName map[string]policyEntry
}

type policyEntry struct {
	res  *resource.Resource
	hash Hash
}

// Mesh returns the mesh name.
func (s *Snapshot) Mesh() string { return s.name }

// Generation increases with every snapshot a Tracker makes.
func (s *Snapshot) Generation() uint64 { return s.generation }

// Hash returns the content hash of the whole snapshot.
func (s *Snapshot) Hash() Hash { return s.hash }

// MeshResource returns the Mesh resource.
func (s *Snapshot) MeshResource() *resource.Resource { return s.meshRes }

// MeshSpec returns the Mesh spec.
func (s *Snapshot) MeshSpec() *mesh.Spec { return s.meshSpec }

// MeshHash returns the content hash of the Mesh resource.
func (s *Snapshot) MeshHash() Hash { return s.meshHash }

// CAHash returns a hash of the mesh's mTLS settings and of the secrets its
// CA backends are stored in; it changes when the CA material may have.
func (s *Snapshot) CAHash() Hash { return s.caHash }

// MTLSBackend returns the enabled mTLS backend, or nil when mTLS is off.
func (s *Snapshot) MTLSBackend() *mesh.Backend { return s.meshSpec.ActiveBackend() }

// MTLSMode returns the mesh's mTLS mode for proxies: off without an enabled
// backend, else the backend's mode, STRICT when it sets none.
func (s *Snapshot) MTLSMode() ir.MTLSMode {
	b := s.MTLSBackend()
	switch {
	case b == nil:
		return ir.MTLSOff
	case b.Mode == mesh.ModePermissive:
		return ir.MTLSPermissive
	default:
		return ir.MTLSStrict
	}
}

// Passthrough reports whether transparent proxies forward traffic to
// destinations outside the mesh (networking.outbound.passthrough, on unless
// set to false, as in Kuma).
func (s *Snapshot) Passthrough() bool {
	n := s.meshSpec.Networking
	if n == nil || n.Outbound == nil || n.Outbound.Passthrough == nil {
		return true
	}
	return *n.Outbound.Passthrough
}

// Dataplane returns the named dataplane, or nil.
func (s *Snapshot) Dataplane(name string) *Dataplane { return s.dataplanes[name] }

// Dataplanes returns every dataplane, sorted by name.
func (s *Snapshot) Dataplanes() []*Dataplane {
	s.sortedOnce.Do(func() {
		s.sorted = make([]*Dataplane, 0, len(s.dataplanes))
		for _, n := range slices.Sorted(maps.Keys(s.dataplanes)) {
			s.sorted = append(s.sorted, s.dataplanes[n])
		}
	})
	return s.sorted
}

// DataplaneCount returns how many dataplanes the mesh has.
func (s *Snapshot) DataplaneCount() int { return len(s.dataplanes) }

// Service returns the named service, or nil.
func (s *Snapshot) Service(name string) *Service { return s.services[name] }

// ServiceNames returns the names of every service, sorted.
func (s *Snapshot) ServiceNames() []string { return s.serviceNames }

// ServicesHash changes whenever any service is added, removed or changed.
func (s *Snapshot) ServicesHash() Hash { return s.servicesHash }

// ClusterTarget returns the service and port a cluster name stands for
// (see Port.Cluster).
func (s *Snapshot) ClusterTarget(cluster string) (*Service, *Port, bool) {
	ref, ok := s.clusters[cluster]
	if !ok {
		return nil, nil, false
	}
	return ref.svc, &ref.svc.Ports[ref.port], true
}

// MeshServices returns the MeshService resources of the mesh, sorted by name.
func (s *Snapshot) MeshServices() []*resource.Resource { return s.meshServices }

// PolicyTypes returns the policy types the snapshot holds, sorted.
func (s *Snapshot) PolicyTypes() []string { return slices.Sorted(maps.Keys(s.policies)) }

// Policies returns the policies of a type, sorted by name.
func (s *Snapshot) Policies(typ string) []*resource.Resource {
	if ps := s.policies[typ]; ps != nil {
		return ps.Items
	}
	return nil
}

// Policy returns one policy, or nil.
func (s *Snapshot) Policy(typ, name string) *resource.Resource {
	if ps := s.policies[typ]; ps != nil {
		return ps.byName[name].res
	}
	return nil
}

// PolicyHash returns the content hash of one policy (zero when absent).
func (s *Snapshot) PolicyHash(typ, name string) Hash {
	if ps := s.policies[typ]; ps != nil {
		return ps.byName[name].hash
	}
	return Hash{}
}

// PolicyTypeHash returns the hash of every policy of a type.
func (s *Snapshot) PolicyTypeHash(typ string) Hash {
	if ps := s.policies[typ]; ps != nil {
		return ps.Hash
	}
	return Hash{}
}

// Memo returns the value compute returns for key, computing it at most once
// per snapshot, however many goroutines ask. Derived, immutable data
// (prepared policy matchers, shared builder parts) lives here and dies with
// the snapshot. Keys must be comparable; use a private key type per caller.
func (s *Snapshot) Memo(key any, compute func() (any, error)) (any, error) {
	return s.memo.get(key, compute)
}

type memo struct {
	mu sync.Mutex
	m  map[any]*memoEntry
}

type memoEntry struct {
	once sync.Once
	v    any
	err  error
}

func (m *memo) get(key any, compute func() (any, error)) (any, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[any]*memoEntry{}
	}
	e, ok := m.m[key]
	if !ok {
		e = &memoEntry{}
		m.m[key] = e
	}
	m.mu.Unlock()
	e.once.Do(func() { e.v, e.err = compute() })
	return e.v, e.err
}

// entryHash hashes one named entry for an order-independent set hash.
func entryHash(name string, h Hash) Hash {
	x := NewHasher()
	x.String(name)
	x.Hash(h)
	return x.Sum()
}

// xor combines set hashes; adding and removing an entry are both xor.
func xor(a, b Hash) Hash {
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}
