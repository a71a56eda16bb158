package snapshot

import (
	"fmt"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// FromResources builds the snapshot of one mesh from resources held in
// memory, without a store: for tests, dry runs and offline inspection. It
// takes the Mesh resource and any Dataplanes, MeshServices, Secrets and
// policies (every other mesh-scoped type counts as a policy type); resources
// of other meshes are an error.
func FromResources(mesh *resource.Resource, resources ...*resource.Resource) (*Snapshot, error) {
	if mesh == nil || mesh.Type != resource.MeshType {
		return nil, fmt.Errorf("building a snapshot: the first resource must be a Mesh")
	}
	var types []string
	seen := map[string]bool{}
	for _, r := range resources {
		switch r.Type {
		case resource.DataplaneType, resource.MeshServiceType, resource.SecretType, resource.MeshType, resource.DataplaneInsightType:
		default:
			if !seen[r.Type] {
				seen[r.Type] = true
				types = append(types, r.Type)
			}
		}
	}
	b := NewBuilder(mesh.Meta.Name, types)
	if err := b.SetMesh(mesh); err != nil {
		return nil, err
	}
	for _, r := range resources {
		if r.Type == resource.DataplaneInsightType {
			continue
		}
		if r.Meta.Mesh != mesh.Meta.Name {
			return nil, fmt.Errorf("building a snapshot of mesh %q: %s %q belongs to mesh %q", mesh.Meta.Name, r.Type, r.Meta.Name, r.Meta.Mesh)
		}
		if err := b.Set(r.Type, r.Meta.Name, r); err != nil {
			return nil, fmt.Errorf("building a snapshot of mesh %q: %w", mesh.Meta.Name, err)
		}
	}
	return b.Snapshot(1), nil
}
