package manager_test

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

func newManager(t *testing.T) (*manager.Manager, store.ResourceStore) {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	st := memory.New(reg)
	m := manager.New(reg, st, slog.New(slog.DiscardHandler))
	require.NoError(t, m.EnsureDefaultMesh(t.Context()))
	require.NoError(t, m.EnsureDefaultMesh(t.Context()), "idempotent")
	return m, st
}

func timeout(name, idle string) *resource.Resource {
	return &resource.Resource{Type: "MeshTimeout", Meta: resource.Meta{Mesh: "default", Name: name},
		Spec: &meshtimeout.Spec{To: []targetref.To[meshtimeout.Conf]{{
			TargetRef: targetref.TargetRef{Kind: targetref.Mesh}, Default: meshtimeout.Conf{IdleTimeout: duration.Duration(idle)}}}}}
}

func TestConcurrentUnconditionalAppliesAllSucceed(t *testing.T) {
	m, _ := newManager(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := m.Apply(t.Context(), timeout("same", fmt.Sprintf("%ds", i+1)), manager.ApplyOptions{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "create-or-update never fails on a race with another writer")
	}
}

func TestConditionalApplyAndDelete(t *testing.T) {
	m, _ := newManager(t)
	first, err := m.Apply(t.Context(), timeout("t", "1s"), manager.ApplyOptions{})
	require.NoError(t, err)
	require.True(t, first.Created)
	v1 := first.Resource.Meta.Version

	second, err := m.Apply(t.Context(), timeout("t", "2s"), manager.ApplyOptions{IfVersion: v1})
	require.NoError(t, err)
	require.False(t, second.Created)
	require.Equal(t, first.Resource.Meta.CreationTime, second.Resource.Meta.CreationTime)

	_, err = m.Apply(t.Context(), timeout("t", "3s"), manager.ApplyOptions{IfVersion: v1})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = m.Apply(t.Context(), timeout("missing", "3s"), manager.ApplyOptions{IfVersion: "1"})
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorIs(t, m.Delete(t.Context(), "MeshTimeout", resource.Key{Mesh: "default", Name: "t"}, manager.DeleteOptions{IfVersion: v1}), store.ErrConflict)
	require.NoError(t, m.Delete(t.Context(), "MeshTimeout", resource.Key{Mesh: "default", Name: "t"}, manager.DeleteOptions{IfVersion: second.Resource.Meta.Version}))
}

func TestApplyRefusals(t *testing.T) {
	m, st := newManager(t)
	bad := timeout("Bad Name", "1s")
	_, err := m.Apply(t.Context(), bad, manager.ApplyOptions{})
	var verr *manager.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "name", verr.Errors[0].Field)

	elsewhere := timeout("t", "1s")
	elsewhere.Meta.Mesh = "nope"
	_, err = m.Apply(t.Context(), elsewhere, manager.ApplyOptions{})
	require.ErrorIs(t, err, manager.ErrMeshNotFound)

	ins := &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "default", Name: "dp"}, Spec: &insight.DataplaneInsight{}}
	_, err = m.Apply(t.Context(), ins, manager.ApplyOptions{})
	require.ErrorIs(t, err, manager.ErrReadOnly)
	_, err = m.Apply(t.Context(), ins, manager.ApplyOptions{System: true})
	require.NoError(t, err, "the control plane writes insights")

	dry, err := m.Apply(t.Context(), timeout("dry", "1s"), manager.ApplyOptions{DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.Created)
	require.False(t, dry.Resource.Meta.CreationTime.IsZero())
	_, err = st.Get(t.Context(), "MeshTimeout", resource.Key{Mesh: "default", Name: "dry"})
	require.True(t, errors.Is(err, store.ErrNotFound), "a dry run stores nothing")

	_, err = m.Apply(t.Context(), &resource.Resource{Type: "Nope"}, manager.ApplyOptions{})
	require.ErrorIs(t, err, manager.ErrUnknownType)
}

func TestMeshDeletionIsRefusedWhileDataplanesAreOnline(t *testing.T) {
	m, _ := newManager(t)
	_, err := m.Apply(t.Context(), &resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: "m"}, Spec: &mesh.Spec{}}, manager.ApplyOptions{})
	require.NoError(t, err)
	offline := &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "m", Name: "dp"},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{ID: "1"}}}}
	_, err = m.Apply(t.Context(), offline, manager.ApplyOptions{System: true})
	require.NoError(t, err)
	require.NoError(t, m.Delete(t.Context(), resource.MeshType, resource.Key{Name: "m"}, manager.DeleteOptions{}), "offline dataplanes do not block")
}

func TestDeletingADataplaneDeletesItsInsight(t *testing.T) {
	m, _ := newManager(t)
	key := resource.Key{Mesh: "default", Name: "web-1"}
	_, err := m.Apply(t.Context(), &resource.Resource{Type: resource.DataplaneType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name},
		Spec: &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1",
			Inbound: []dataplane.Inbound{{Port: 80, Tags: map[string]string{dataplane.ServiceTag: "web"}}}}}}, manager.ApplyOptions{})
	require.NoError(t, err)
	_, err = m.Apply(t.Context(), &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{ID: "1"}}}}, manager.ApplyOptions{System: true})
	require.NoError(t, err)

	require.NoError(t, m.Delete(t.Context(), resource.DataplaneType, key, manager.DeleteOptions{}))
	_, err = m.Get(t.Context(), resource.DataplaneInsightType, key)
	require.ErrorIs(t, err, store.ErrNotFound, "a deleted dataplane leaves no insight behind to be listed or counted")
	// Deleting a dataplane that never connected (no insight) is fine too.
	_, err = m.Apply(t.Context(), &resource.Resource{Type: resource.DataplaneType, Meta: resource.Meta{Mesh: key.Mesh, Name: key.Name},
		Spec: &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1",
			Inbound: []dataplane.Inbound{{Port: 80, Tags: map[string]string{dataplane.ServiceTag: "web"}}}}}}, manager.ApplyOptions{})
	require.NoError(t, err)
	require.NoError(t, m.Delete(t.Context(), resource.DataplaneType, key, manager.DeleteOptions{}))
}
