// Package resource is Atoll's resource model: a Resource is a typed spec with
// metadata, a Descriptor says how one type is named, scoped, served and
// synced, and a Registry is the set of types a binary bundles. Registries are
// values built by composition roots, never globals filled by init().
package resource

import (
	"time"

	"github.com/atoll-mesh/atoll/api/validate"
)

// Spec is the typed body of a resource. Every API type implements it.
type Spec interface {
	// Validate returns every problem of the spec with its field path.
	Validate() validate.Errors
}

// Meta is what every resource carries besides its spec.
type Meta struct {
	// Name is unique per type within a mesh (or globally for global types).
	Name string
	// Mesh is the owning mesh; empty for global-scoped types and for Mesh itself.
	Mesh string
	// Labels are user or system key/values, usable in list filters.
	Labels map[string]string
	// Version changes on every write; it is the token for conditional updates.
	Version string
	// CreationTime is set by the store when the resource is created.
	CreationTime time.Time
	// ModificationTime is set by the store on every write.
	ModificationTime time.Time
}

// Key returns the resource's identity within its type.
func (m Meta) Key() Key { return Key{Mesh: m.Mesh, Name: m.Name} }

// Key identifies a resource within its type.
type Key struct {
	// Mesh is empty for global-scoped types and for Mesh itself.
	Mesh string
	// Name of the resource.
	Name string
}

// String returns "mesh/name", or "name" without a mesh.
func (k Key) String() string {
	if k.Mesh == "" {
		return k.Name
	}
	return k.Mesh + "/" + k.Name
}

// Resource is one stored object. A Resource returned by a store or manager is
// shared: treat it as read-only and Clone it before changing it.
type Resource struct {
	// Type is the descriptor name, for example "MeshTimeout".
	Type string
	// Meta holds name, mesh, labels, version and times.
	Meta Meta
	// Spec is the typed body.
	Spec Spec
	// Status is the control plane's observed state for types that have one; may be nil.
	Status any
}

// Key returns the resource's identity within its type.
func (r *Resource) Key() Key { return r.Meta.Key() }
