package storetest

import (
	"fmt"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

func crudCases() []testCase {
	return []testCase{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateIgnoresServerOwnedFields", testCreateIgnoresServerOwnedFields},
		{"CreateDuplicate", testCreateDuplicate},
		{"SameNameInOtherMeshOrType", testSameNameInOtherMeshOrType},
		{"UpdateWithCurrentVersion", testUpdateWithCurrentVersion},
		{"UpdateWithStaleVersion", testUpdateWithStaleVersion},
		{"MissingResource", testMissingResource},
		{"DeleteWithVersion", testDeleteWithVersion},
		{"RecreateGetsNewVersion", testRecreateGetsNewVersion},
		{"GlobalScopedTypes", testGlobalScopedTypes},
		{"StatusRoundTrip", testStatusRoundTrip},
		{"CallerChangesDoNotReachStore", testCallerChangesDoNotReachStore},
		{"UnknownType", testUnknownType},
	}
}

func testCreateGetRoundTrip(h *harness) {
	for _, in := range everyType("default") {
		what := in.Type + " " + in.Key().String()
		want := h.clone(in)
		created := h.create(in)
		requireContent(h.t, want, created, "Create result of "+what)
		requireStamped(h.t, created, "Create result of "+what)

		got := h.get(in.Type, in.Key())
		requireSame(h.t, created, got, "Get after Create of "+what)
	}
}

func testCreateIgnoresServerOwnedFields(h *harness) {
	in := newDataplane("default", "dp-1", nil)
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	in.Meta.Version = "caller-chosen"
	in.Meta.CreationTime, in.Meta.ModificationTime = past, past
	created := h.create(in)
	require.NotEqual(h.t, "caller-chosen", created.Meta.Version, "Create must set its own version")
	require.True(h.t, created.Meta.CreationTime.After(past), "Create must set its own creation time, got %s", created.Meta.CreationTime)
	require.True(h.t, created.Meta.ModificationTime.After(past), "Create must set its own modification time, got %s", created.Meta.ModificationTime)
}

func testCreateDuplicate(h *harness) {
	first := h.create(newDataplane("default", "dp-1", map[string]string{"v": "1"}))
	_, err := h.s.Create(h.ctx, newDataplane("default", "dp-1", map[string]string{"v": "2"}))
	requireErr(h.t, err, store.ErrAlreadyExists, "second Create of Dataplane default/dp-1")
	requireSame(h.t, first, h.get(resource.DataplaneType, first.Key()), "Dataplane after the rejected duplicate Create")

	h.create(newMesh("default"))
	_, err = h.s.Create(h.ctx, newMesh("default"))
	requireErr(h.t, err, store.ErrAlreadyExists, "second Create of Mesh default")
}

func testSameNameInOtherMeshOrType(h *harness) {
	h.create(newDataplane("mesh-a", "web", nil))
	h.create(newDataplane("mesh-b", "web", nil))
	h.create(newInsight("mesh-a", "web"))
	h.create(newMesh("web"))
	h.create(newZone("web"))
	require.Equal(h.t, "mesh-a", h.get(resource.DataplaneType, resource.Key{Mesh: "mesh-a", Name: "web"}).Meta.Mesh)
	require.Equal(h.t, "mesh-b", h.get(resource.DataplaneType, resource.Key{Mesh: "mesh-b", Name: "web"}).Meta.Mesh)
	require.Equal(h.t, 2, h.list(resource.DataplaneType, store.ListOptions{}).Total, "the same name in two meshes is two resources")
}

func testUpdateWithCurrentVersion(h *harness) {
	created := h.create(newPolicy("default", "p-1", map[string]string{"env": "dev"}))

	next := h.clone(created)
	next.Meta.Labels = map[string]string{"env": "prod", "tier": "1"}
	next.Spec.(*PolicySpec).To[0].Default.ConnectTimeout = "9s"
	next.Status = &PolicyStatus{Conditions: []PolicyCondition{{Type: "Accepted", Status: "False", Reason: "Invalid"}}}
	// Times are server-owned: what the caller sends must be ignored.
	next.Meta.CreationTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	next.Meta.ModificationTime = next.Meta.CreationTime
	want := h.clone(next)

	updated := h.update(next)
	requireContent(h.t, want, updated, "Update result")
	requireStamped(h.t, updated, "Update result")
	require.NotEqual(h.t, created.Meta.Version, updated.Meta.Version, "Update must change the version")
	requireTime(h.t, created.Meta.CreationTime, updated.Meta.CreationTime, "Update must keep the creation time")
	require.False(h.t, updated.Meta.ModificationTime.Before(created.Meta.ModificationTime),
		"Update must not move the modification time back: was %s, now %s", created.Meta.ModificationTime, updated.Meta.ModificationTime)

	requireSame(h.t, updated, h.get(PolicyType, created.Key()), "Get after Update")

	// The new version is the token for the next update.
	again := h.clone(updated)
	again.Meta.Labels = nil
	third := h.update(again)
	require.NotEqual(h.t, updated.Meta.Version, third.Meta.Version, "a second Update must change the version again")
	require.Empty(h.t, h.get(PolicyType, created.Key()).Meta.Labels, "Update must replace the labels, not merge them")
}

func testUpdateWithStaleVersion(h *harness) {
	created := h.create(newDataplane("default", "dp-1", map[string]string{"v": "1"}))
	first := h.clone(created)
	first.Meta.Labels["v"] = "2"
	current := h.update(first)

	stale := h.clone(created) // still carries the version from Create
	stale.Meta.Labels["v"] = "3"
	_, err := h.s.Update(h.ctx, stale)
	requireErr(h.t, err, store.ErrConflict, "Update with the version from before the last write")
	requireSame(h.t, current, h.get(resource.DataplaneType, created.Key()), "Dataplane after the rejected stale Update")

	// Versions must not come back: after several more writes, every earlier
	// version is still stale.
	history := []string{created.Meta.Version, current.Meta.Version}
	for i := range 6 {
		next := h.clone(current)
		next.Meta.Labels["v"] = fmt.Sprint(10 + i)
		current = h.update(next)
		require.NotContains(h.t, history, current.Meta.Version, "Update %d reused an earlier version of the resource", i+1)
		history = append(history, current.Meta.Version)
	}
	for _, v := range history[:len(history)-1] {
		old := h.clone(current)
		old.Meta.Version = v
		_, err := h.s.Update(h.ctx, old)
		requireErr(h.t, err, store.ErrConflict, "Update with earlier version "+v)
	}

	blind := h.clone(current)
	blind.Meta.Version = ""
	blind.Meta.Labels["v"] = "4"
	_, err = h.s.Update(h.ctx, blind)
	requireErr(h.t, err, store.ErrConflict, "Update without a version (a blind overwrite)")
	requireSame(h.t, current, h.get(resource.DataplaneType, created.Key()), "Dataplane after the rejected blind Update")
}

func testMissingResource(h *harness) {
	key := resource.Key{Mesh: "default", Name: "nope"}
	h.requireNotFound(resource.DataplaneType, key)
	h.requireNotFound(resource.MeshType, resource.Key{Name: "nope"})

	_, err := h.s.Update(h.ctx, newDataplane("default", "nope", nil))
	requireErr(h.t, err, store.ErrNotFound, "Update of a missing Dataplane")
	h.requireNotFound(resource.DataplaneType, key) // Update must not create

	err = h.s.Delete(h.ctx, resource.DataplaneType, key, store.DeleteOptions{})
	requireErr(h.t, err, store.ErrNotFound, "Delete of a missing Dataplane")
	err = h.s.Delete(h.ctx, resource.DataplaneType, key, store.DeleteOptions{Version: "1"})
	requireErr(h.t, err, store.ErrNotFound, "Delete with a version of a missing Dataplane")

	// The same name in another mesh, or of another type, is a different resource.
	h.create(newDataplane("other", "nope", nil))
	h.requireNotFound(resource.DataplaneType, key)
	h.requireNotFound(resource.DataplaneInsightType, resource.Key{Mesh: "other", Name: "nope"})
}

func testDeleteWithVersion(h *harness) {
	created := h.create(newDataplane("default", "dp-1", nil))
	next := h.clone(created)
	next.Meta.Labels = map[string]string{"v": "2"}
	current := h.update(next)

	err := h.s.Delete(h.ctx, resource.DataplaneType, created.Key(), store.DeleteOptions{Version: created.Meta.Version})
	requireErr(h.t, err, store.ErrConflict, "Delete with a stale version")
	requireSame(h.t, current, h.get(resource.DataplaneType, created.Key()), "Dataplane after the rejected Delete")

	require.NoError(h.t, h.s.Delete(h.ctx, resource.DataplaneType, created.Key(), store.DeleteOptions{Version: current.Meta.Version}),
		"Delete with the current version")
	h.requireNotFound(resource.DataplaneType, created.Key())

	// Without a version, Delete is unconditional.
	other := h.create(newDataplane("default", "dp-2", nil))
	h.delete(resource.DataplaneType, other.Key())
	h.requireNotFound(resource.DataplaneType, other.Key())
}

func testRecreateGetsNewVersion(h *harness) {
	first := h.create(newDataplane("default", "dp-1", nil))
	h.delete(resource.DataplaneType, first.Key())
	second := h.create(newDataplane("default", "dp-1", nil))
	require.NotEqual(h.t, first.Meta.Version, second.Meta.Version,
		"a re-created resource must get a version its previous incarnation never had, or an old writer could overwrite it")

	stale := h.clone(first)
	stale.Meta.Labels = map[string]string{"old": "writer"}
	_, err := h.s.Update(h.ctx, stale)
	requireErr(h.t, err, store.ErrConflict, "Update of a re-created resource with the old incarnation's version")
}

func testGlobalScopedTypes(h *harness) {
	for _, in := range []*resource.Resource{newMesh("mesh-1"), newZone("zone-1"), newGlobalSecret("gs-1")} {
		what := in.Type + " " + in.Meta.Name
		created := h.create(in)
		require.Empty(h.t, created.Meta.Mesh, "%s: a global-scoped resource has no mesh", what)
		got := h.get(in.Type, resource.Key{Name: in.Meta.Name})
		requireSame(h.t, created, got, "Get of "+what)

		l := h.list(in.Type, store.ListOptions{})
		require.Equal(h.t, []resource.Key{{Name: in.Meta.Name}}, keysOf(l.Items), "List of %s", in.Type)

		next := h.clone(got)
		next.Meta.Labels = map[string]string{"changed": "yes"}
		h.update(next)
		h.delete(in.Type, resource.Key{Name: in.Meta.Name})
		h.requireNotFound(in.Type, resource.Key{Name: in.Meta.Name})
	}
}

func testStatusRoundTrip(h *harness) {
	svc := newMeshService("default", "backend")
	wantStatus := h.clone(svc).Status
	created := h.create(svc)
	requireStatus(h.t, wantStatus, created.Status, "MeshService status after Create")
	requireStatus(h.t, wantStatus, h.get(resource.MeshServiceType, svc.Key()).Status, "MeshService status after Get")

	next := h.clone(created)
	next.Status = &meshservice.Status{TLS: &meshservice.TLSStatus{Status: "Ready"}}
	h.update(next)
	requireStatus(h.t, &meshservice.Status{TLS: &meshservice.TLSStatus{Status: "Ready"}},
		h.get(resource.MeshServiceType, svc.Key()).Status, "MeshService status after Update replaced it")

	pol := newPolicy("default", "no-status", nil)
	pol.Status = nil
	h.create(pol)
	requireStatus(h.t, nil, h.get(PolicyType, pol.Key()).Status, "policy created without status")

	withStatus := newPolicy("default", "with-status", nil)
	wantPolicy := h.clone(withStatus).Status
	h.create(withStatus)
	requireStatus(h.t, wantPolicy, h.get(PolicyType, withStatus.Key()).Status, "policy status after Get")
}

// testCallerChangesDoNotReachStore checks copy-on-write: the store keeps its
// own copy of what it is given, so changing a value after passing it in, or
// changing a Clone of a returned resource (the documented way to edit one),
// leaves what Get returns unchanged. Returned resources themselves are
// shared and read-only by contract, so the suite does not write to them.
func testCallerChangesDoNotReachStore(h *harness) {
	in := newDataplane("default", "dp-1", map[string]string{"app": "web"})
	created := h.create(in)
	want := h.clone(created)

	in.Meta.Labels["app"] = "changed-after-create"
	in.Meta.Labels["extra"] = "x"
	in.Spec.(*dataplane.Spec).Networking.Address = "192.0.2.99"
	in.Spec.(*dataplane.Spec).Networking.Inbound[0].Tags[dataplane.ServiceTag] = "changed"
	requireSame(h.t, want, h.get(resource.DataplaneType, in.Key()), "Get after the caller changed the value it passed to Create")

	edit := h.clone(h.get(resource.DataplaneType, in.Key()))
	edit.Meta.Labels["app"] = "edited-clone"
	edit.Spec.(*dataplane.Spec).Networking.Inbound[0].Port = 1
	requireSame(h.t, want, h.get(resource.DataplaneType, in.Key()), "Get after the caller changed a clone of a returned resource")

	updated := h.update(edit)
	wantUpdated := h.clone(updated)
	edit.Meta.Labels["app"] = "changed-after-update"
	edit.Spec.(*dataplane.Spec).Networking.Inbound[0].Tags["new"] = "tag"
	requireSame(h.t, wantUpdated, h.get(resource.DataplaneType, in.Key()), "Get after the caller changed the value it passed to Update")

	pol := newPolicy("default", "p-1", nil)
	createdPol := h.create(pol)
	wantPol := h.clone(createdPol)
	pol.Status.(*PolicyStatus).Conditions[0].Status = "False"
	*pol.Spec.(*PolicySpec).To[0].Default.MaxRetries = 7
	pol.Spec.(*PolicySpec).To[0].Default.Metadata["owner"] = "someone-else"
	requireSame(h.t, wantPol, h.get(PolicyType, pol.Key()), "Get after the caller changed the policy (pointers, maps, status) it passed to Create")
}

func testUnknownType(h *harness) {
	const typ = "NoSuchType"
	key := resource.Key{Mesh: "default", Name: "x"}
	bogus := newDataplane("default", "x", nil)
	bogus.Type = typ

	_, err := h.s.Create(h.ctx, bogus)
	require.ErrorContains(h.t, err, typ, "Create of an unknown type must fail and name the type")
	_, err = h.s.Update(h.ctx, bogus)
	require.ErrorContains(h.t, err, typ, "Update of an unknown type must fail and name the type")
	_, err = h.s.Get(h.ctx, typ, key)
	require.ErrorContains(h.t, err, typ, "Get of an unknown type must fail and name the type")
	_, err = h.s.List(h.ctx, typ, store.ListOptions{})
	require.ErrorContains(h.t, err, typ, "List of an unknown type must fail and name the type")
	err = h.s.Delete(h.ctx, typ, key, store.DeleteOptions{})
	require.ErrorContains(h.t, err, typ, "Delete of an unknown type must fail and name the type")
}
