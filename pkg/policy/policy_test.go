package policy_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/policies/all"
)

// counting is a plugin that counts its Prepare calls.
type counting struct {
	typ      string
	prepared int
	fail     bool
}

var _ policy.Plugin = (*counting)(nil)

func (c *counting) Type() string { return c.typ }
func (c *counting) Prepare(*snapshot.Snapshot) (policy.Prepared, error) {
	c.prepared++
	if c.fail {
		return nil, errors.New("broken")
	}
	return nil, nil
}
func (c *counting) Targets(*resource.Resource) policy.Targets { return policy.Targets{} }

func TestRegistryKeepsOrderAndRejectsDuplicates(t *testing.T) {
	a, b := &counting{typ: "A"}, &counting{typ: "B"}
	r, err := policy.NewRegistry(b, a)
	require.NoError(t, err)
	require.Equal(t, []policy.Plugin{b, a}, r.Plugins(), "plugins run in the order given")
	got, ok := r.Plugin("A")
	require.True(t, ok)
	require.Same(t, a, got)

	_, err = policy.NewRegistry(a, &counting{typ: "A"})
	require.ErrorContains(t, err, `plugin "A" registered twice`)
	_, err = policy.NewRegistry(nil)
	require.Error(t, err)

	bundled, err := all.PluginRegistry()
	require.NoError(t, err)
	require.Equal(t, "MeshTimeout", bundled.Plugins()[0].Type())
}

func TestPrepareRunsOncePerSnapshot(t *testing.T) {
	a := &counting{typ: "A"}
	r, err := policy.NewRegistry(a)
	require.NoError(t, err)
	snap := snapshotOf(t, "type: Mesh\nname: m\n")
	for range 3 {
		_, err := r.Prepare(snap)
		require.NoError(t, err)
	}
	require.Equal(t, 1, a.prepared)
	_, err = r.Prepare(snapshotOf(t, "type: Mesh\nname: m\n"))
	require.NoError(t, err)
	require.Equal(t, 2, a.prepared, "a new snapshot prepares again")

	broken, err := policy.NewRegistry(&counting{typ: "B", fail: true})
	require.NoError(t, err)
	_, err = broken.Prepare(snap)
	require.ErrorContains(t, err, `preparing B policies of mesh "m": broken`)
}

func snapshotOf(t *testing.T, docs string) *snapshot.Snapshot {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	var mesh *resource.Resource
	var rest []*resource.Resource
	for _, d := range resource.SplitYAML([]byte(docs)) {
		res, err := reg.DecodeYAML(d.Data)
		require.NoError(t, err)
		if res.Type == resource.MeshType {
			mesh = res
		} else {
			rest = append(rest, res)
		}
	}
	snap, err := snapshot.FromResources(mesh, rest...)
	require.NoError(t, err)
	return snap
}

const proxies = `type: Mesh
name: m
---
type: Dataplane
mesh: m
name: web-1
labels: {team: shop}
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags: {kuma.io/service: web, version: v1}
---
type: Dataplane
mesh: m
name: api-1
networking:
  address: 10.0.0.2
  inbound:
    - port: 8080
      tags: {kuma.io/service: api-legacy, app: api}
---
type: MeshService
mesh: m
name: api
spec:
  selector:
    dataplaneTags: {app: api}
  ports: [{port: 80, targetPort: 8080}]
`

func TestTargetsSelectProxies(t *testing.T) {
	snap := snapshotOf(t, proxies)
	web, api := snap.Dataplane("web-1"), snap.Dataplane("api-1")
	tests := []struct {
		ref      *targetref.TargetRef
		web, api bool
	}{
		{nil, true, true},
		{&targetref.TargetRef{Kind: targetref.Mesh}, true, true},
		{&targetref.TargetRef{Kind: targetref.Dataplane, Name: "web-1"}, true, false},
		{&targetref.TargetRef{Kind: targetref.Dataplane, Labels: map[string]string{"team": "shop"}}, true, false},
		{&targetref.TargetRef{Kind: targetref.MeshSubset, Tags: map[string]string{"version": "v1"}}, true, false},
		{&targetref.TargetRef{Kind: targetref.MeshService, Name: "web"}, true, false},
		{&targetref.TargetRef{Kind: targetref.MeshService, Name: "api"}, false, true},
		{&targetref.TargetRef{Kind: targetref.MeshServiceSubset, Name: "api-legacy"}, false, true},
	}
	for _, tt := range tests {
		tg := policy.Targets{Proxy: tt.ref}
		require.Equal(t, tt.web, tg.SelectsProxy(snap, web), "%+v selects web-1", tt.ref)
		require.Equal(t, tt.api, tg.SelectsProxy(snap, api), "%+v selects api-1", tt.ref)
	}
}

func TestTargetsOfMeshTimeout(t *testing.T) {
	snap := snapshotOf(t, `type: Mesh
name: m
---
type: MeshTimeout
mesh: m
name: to-some
spec:
  targetRef: {kind: MeshService, name: web}
  to:
    - targetRef: {kind: MeshService, name: db}
      default: {idleTimeout: 1m}
    - targetRef: {kind: MeshService, name: api}
      default: {idleTimeout: 1m}
---
type: MeshTimeout
mesh: m
name: everything
spec:
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 1m}
  rules:
    - default: {idleTimeout: 1m}
`)
	plugins, err := all.PluginRegistry()
	require.NoError(t, err)
	mt, _ := plugins.Plugin("MeshTimeout")
	some := mt.Targets(snap.Policy("MeshTimeout", "to-some"))
	require.Equal(t, []string{"api", "db"}, some.Destinations)
	require.False(t, some.AllDestinations)
	require.False(t, some.Inbound)
	require.Equal(t, "web", some.Proxy.Name)
	every := mt.Targets(snap.Policy("MeshTimeout", "everything"))
	require.True(t, every.AllDestinations)
	require.True(t, every.Inbound)
	require.Nil(t, every.Proxy)
}

func TestDestinationOf(t *testing.T) {
	snap := snapshotOf(t, proxies)
	d := policy.DestinationOf(snap, &ir.Cluster{Name: "api", Service: "api"})
	require.Equal(t, targetref.MeshService, d.Kind)
	require.Equal(t, "api", d.Name)
	require.Equal(t, uint32(80), d.Port, "an explicit service names its port")
	d = policy.DestinationOf(snap, &ir.Cluster{Name: "web", Service: "web"})
	require.Zero(t, d.Port)
	d = policy.DestinationOf(snap, &ir.Cluster{Name: "gone", Service: "gone"})
	require.Equal(t, "gone", d.Name)
}
