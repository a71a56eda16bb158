package storetest

import (
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

func meshCases() []testCase {
	return []testCase{
		{"MeshDeleteCascades", testMeshDeleteCascades},
		{"MeshDeleteWithStaleVersionKeepsContents", testMeshDeleteWithStaleVersionKeepsContents},
		{"MissingMeshDeleteTouchesNothing", testMissingMeshDeleteTouchesNothing},
	}
}

// requireFixturesCoverEveryMeshType fails when the registry has a
// mesh-scoped type that meshScoped does not create, so a new core type
// cannot slip past the cascade tests.
func requireFixturesCoverEveryMeshType(h *harness) {
	h.t.Helper()
	covered := map[string]bool{}
	for _, r := range meshScoped("x") {
		covered[r.Type] = true
	}
	for _, d := range h.reg.All() {
		if d.Scope == resource.ScopeMesh {
			require.True(h.t, covered[d.Name], "storetest: add a %s fixture to meshScoped so the cascade tests cover it", d.Name)
		}
	}
}

// populate creates meshes "m1", "m2" and "m10" (a name sharing a prefix
// with m1), one resource of every mesh-scoped type in each, and global
// resources named "m1" that are not meshes.
func populate(h *harness) {
	h.t.Helper()
	for _, m := range []string{"m1", "m2", "m10"} {
		h.create(newMesh(m))
		for _, r := range meshScoped(m) {
			h.create(r)
		}
	}
	h.create(newZone("m1"))
	h.create(newGlobalSecret("m1"))
}

// requireMeshIntact checks that every fixture of mesh m is still stored.
func requireMeshIntact(h *harness, m string) {
	h.t.Helper()
	h.get(resource.MeshType, resource.Key{Name: m})
	for _, r := range meshScoped(m) {
		_, err := h.s.Get(h.ctx, r.Type, r.Key())
		require.NoError(h.t, err, "%s %s in mesh %q must survive", r.Type, r.Key(), m)
	}
}

func testMeshDeleteCascades(h *harness) {
	requireFixturesCoverEveryMeshType(h)
	populate(h)

	h.delete(resource.MeshType, resource.Key{Name: "m1"})

	h.requireNotFound(resource.MeshType, resource.Key{Name: "m1"})
	for _, r := range meshScoped("m1") {
		h.requireNotFound(r.Type, r.Key())
	}
	for _, d := range h.reg.All() {
		if d.Scope == resource.ScopeMesh {
			l := h.list(d.Name, store.ListOptions{Mesh: "m1"})
			require.Zero(h.t, l.Total, "List %s in the deleted mesh m1 must be empty, got %v", d.Name, keysOf(l.Items))
		}
	}
	requireMeshIntact(h, "m2")
	requireMeshIntact(h, "m10")
	h.get(resource.ZoneType, resource.Key{Name: "m1"})
	h.get(resource.GlobalSecretType, resource.Key{Name: "m1"})

	// The name is free again, and a new mesh of that name starts empty.
	h.create(newMesh("m1"))
	require.Zero(h.t, h.list(resource.DataplaneType, store.ListOptions{Mesh: "m1"}).Total,
		"a re-created mesh must not bring back the old mesh's dataplanes")
}

func testMeshDeleteWithStaleVersionKeepsContents(h *harness) {
	populate(h)
	m := h.get(resource.MeshType, resource.Key{Name: "m1"})
	next := h.clone(m)
	next.Meta.Labels = map[string]string{"changed": "yes"}
	h.update(next)

	err := h.s.Delete(h.ctx, resource.MeshType, resource.Key{Name: "m1"}, store.DeleteOptions{Version: m.Meta.Version})
	requireErr(h.t, err, store.ErrConflict, "Delete of Mesh m1 with a stale version")
	requireMeshIntact(h, "m1")
}

func testMissingMeshDeleteTouchesNothing(h *harness) {
	// Resources may name a mesh that does not exist (the store does not
	// enforce references); deleting that mesh is still ErrNotFound and
	// removes nothing.
	orphan := h.create(newDataplane("ghost", "dp-1", nil))
	err := h.s.Delete(h.ctx, resource.MeshType, resource.Key{Name: "ghost"}, store.DeleteOptions{})
	requireErr(h.t, err, store.ErrNotFound, "Delete of a Mesh that does not exist")
	requireSame(h.t, orphan, h.get(resource.DataplaneType, orphan.Key()), "Dataplane in the never-created mesh")

	// Deleting a global resource that merely shares a mesh's name cascades nothing.
	h.create(newMesh("shared"))
	h.create(newZone("shared"))
	dp := h.create(newDataplane("shared", "dp-1", nil))
	h.delete(resource.ZoneType, resource.Key{Name: "shared"})
	requireSame(h.t, dp, h.get(resource.DataplaneType, dp.Key()), "Dataplane after deleting a Zone named like its mesh")
}
