package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// DefaultMeshName is the mesh created at start-up unless disabled.
const DefaultMeshName = "default"

// EnsureDefaultMesh creates the "default" mesh when it does not exist. It is
// idempotent and safe to run on several instances at once.
func (m *Manager) EnsureDefaultMesh(ctx context.Context) error {
	key := resource.Key{Name: DefaultMeshName}
	_, err := m.store.Get(ctx, resource.MeshType, key)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("checking the default mesh: %w", err)
	}
	_, err = m.store.Create(ctx, &resource.Resource{
		Type: resource.MeshType,
		Meta: resource.Meta{Name: DefaultMeshName},
		Spec: &mesh.Spec{},
	})
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("creating the default mesh: %w", err)
	}
	if err == nil {
		m.log.Info("created the default mesh", "mesh", DefaultMeshName)
	}
	return nil
}
