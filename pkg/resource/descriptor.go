package resource

import (
	"fmt"
	"slices"
	"strings"
)

// Scope says whether a type lives inside a mesh or beside meshes.
type Scope uint8

const (
	// ScopeMesh types belong to one mesh and are served under /meshes/{mesh}/.
	ScopeMesh Scope = iota
	// ScopeGlobal types (Mesh, Zone, GlobalSecret) are served at the top level.
	ScopeGlobal
)

// String returns "Mesh" or "Global", the words Kuma's /_resources uses.
func (s Scope) String() string {
	if s == ScopeGlobal {
		return "Global"
	}
	return "Mesh"
}

// Sync says which way multi-zone sync (KDS) carries a type.
type Sync uint8

const (
	// SyncNone types stay where they are written.
	SyncNone Sync = 0
	// SyncGlobalToZone types are written on the global CP and copied to zones.
	SyncGlobalToZone Sync = 1 << iota
	// SyncZoneToGlobal types are written in zones and copied to the global CP.
	SyncZoneToGlobal
)

// String names the directions.
func (s Sync) String() string {
	var parts []string
	if s&SyncGlobalToZone != 0 {
		parts = append(parts, "GlobalToZone")
	}
	if s&SyncZoneToGlobal != 0 {
		parts = append(parts, "ZoneToGlobal")
	}
	if len(parts) == 0 {
		return "None"
	}
	return strings.Join(parts, ",")
}

// PolicyShape says which sections a targetRef policy type accepts.
type PolicyShape struct {
	// HasTo is true when the policy has a to[] section.
	HasTo bool
	// HasFrom is true when the policy has a from[] section.
	HasFrom bool
	// HasRules is true when the policy has a rules[] section.
	HasRules bool
}

// Descriptor describes one resource type: how it is named on the wire, in the
// CLI and in REST paths, where it lives, and how to make an empty spec.
type Descriptor struct {
	// Name is the type name in documents, for example "MeshTimeout".
	Name string
	// Path is the plural REST path segment and CLI plural, for example "meshtimeouts".
	Path string
	// Singular is the CLI singular, for example "meshtimeout".
	Singular string
	// ShortName is a short CLI alias, for example "mt"; optional.
	ShortName string
	// Scope is ScopeMesh or ScopeGlobal.
	Scope Scope
	// Policy is set for targetRef policies, with the sections they accept.
	Policy *PolicyShape
	// InlineSpec is true when spec fields sit at the top level of the
	// document (Mesh, Dataplane, Secret, Zone) instead of under "spec".
	InlineSpec bool
	// Sync is the multi-zone sync direction.
	Sync Sync
	// ReadOnly types are written by the control plane only (insights).
	ReadOnly bool
	// NewSpec returns an empty spec of the type.
	NewSpec func() Spec
	// NewStatus returns an empty status, or is nil for types without one.
	NewStatus func() any
}

// IsPolicy reports whether the type is a targetRef policy.
func (d *Descriptor) IsPolicy() bool { return d.Policy != nil }

// Registry is the set of resource types one binary knows. It is immutable
// after NewRegistry and safe for concurrent use.
type Registry struct {
	list   []*Descriptor
	byName map[string]*Descriptor
	byPath map[string]*Descriptor
	byCLI  map[string]*Descriptor
}

// NewRegistry builds a registry from descriptors, rejecting duplicates and
// incomplete descriptors.
func NewRegistry(ds ...Descriptor) (*Registry, error) {
	r := &Registry{byName: map[string]*Descriptor{}, byPath: map[string]*Descriptor{}, byCLI: map[string]*Descriptor{}}
	for i := range ds {
		d := ds[i]
		if d.Name == "" || d.Path == "" || d.Singular == "" || d.NewSpec == nil {
			return nil, fmt.Errorf("resource type %q: Name, Path, Singular and NewSpec are required", d.Name)
		}
		if _, dup := r.byName[d.Name]; dup {
			return nil, fmt.Errorf("resource type %q registered twice", d.Name)
		}
		if _, dup := r.byPath[d.Path]; dup {
			return nil, fmt.Errorf("resource type %q: path %q already used", d.Name, d.Path)
		}
		r.list = append(r.list, &d)
		r.byName[d.Name] = &d
		r.byPath[d.Path] = &d
		for _, alias := range []string{strings.ToLower(d.Name), d.Path, d.Singular, d.ShortName} {
			if alias == "" {
				continue
			}
			if other, dup := r.byCLI[alias]; dup && other != &d {
				return nil, fmt.Errorf("resource type %q: CLI name %q already used by %q", d.Name, alias, other.Name)
			}
			r.byCLI[alias] = &d
		}
	}
	slices.SortStableFunc(r.list, func(a, b *Descriptor) int { return strings.Compare(a.Name, b.Name) })
	return r, nil
}

// MustRegistry is NewRegistry for composition roots with a fixed type list;
// it panics on an invalid list, which is a programming error.
func MustRegistry(ds ...Descriptor) *Registry {
	r, err := NewRegistry(ds...)
	if err != nil {
		panic(err)
	}
	return r
}

// Get returns the descriptor of a type name such as "MeshTimeout".
func (r *Registry) Get(name string) (*Descriptor, bool) {
	d, ok := r.byName[name]
	return d, ok
}

// ByPath returns the descriptor served at a plural REST path such as "meshtimeouts".
func (r *Registry) ByPath(path string) (*Descriptor, bool) {
	d, ok := r.byPath[path]
	return d, ok
}

// Lookup finds a type by any CLI spelling: its name (any case), plural,
// singular or short name.
func (r *Registry) Lookup(word string) (*Descriptor, bool) {
	d, ok := r.byCLI[strings.ToLower(word)]
	return d, ok
}

// All returns every descriptor, sorted by name.
func (r *Registry) All() []*Descriptor { return slices.Clone(r.list) }

// Names returns every type name, sorted.
func (r *Registry) Names() []string {
	out := make([]string, len(r.list))
	for i, d := range r.list {
		out[i] = d.Name
	}
	return out
}
