package build

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

const mesh = `type: Mesh
name: m
---
type: Dataplane
mesh: m
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags: {kuma.io/service: web, kuma.io/protocol: http}
  transparentProxying: {}
---
type: Dataplane
mesh: m
name: web-2
networking:
  address: 10.0.0.2
  inbound:
    - port: 8080
      tags: {kuma.io/service: web, kuma.io/protocol: http}
  transparentProxying: {}
---
type: Dataplane
mesh: m
name: api-1
networking:
  address: 10.0.0.3
  inbound:
    - port: 8080
      tags: {kuma.io/service: api, kuma.io/protocol: http}
  transparentProxying:
    reachableBackends:
      refs:
        - kind: MeshService
          name: web
---
type: MeshTimeout
mesh: m
name: web-2-only
spec:
  targetRef: {kind: Dataplane, name: web-2}
  to:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 1m}
`

func TestTransparentProxyingDefaultsAndReachableBackends(t *testing.T) {
	snap := snapshotOf(t, mesh)
	p, err := Build(Input{Snapshot: snap, Dataplane: "web-1", Plugins: plugins(t)})
	require.NoError(t, err)
	require.Equal(t, ir.TransparentProxy{RedirectPortInbound: 15006, RedirectPortOutbound: 15001, Passthrough: true}, p.TransparentProxy)
	require.Len(t, p.Outbounds, 2, "every service of the mesh")

	p, err = Build(Input{Snapshot: snap, Dataplane: "api-1", Plugins: plugins(t)})
	require.NoError(t, err)
	require.Len(t, p.Outbounds, 1)
	require.Equal(t, "web", p.Outbounds[0].Service, "reachableBackends narrows the outbounds")
	require.Equal(t, "web.mesh", p.Outbounds[0].Hostname)
	require.Equal(t, snap.Service("web").VIP, p.Outbounds[0].Address)
}

func TestFlavourFromCallerThenLabel(t *testing.T) {
	snap := snapshotOf(t, mesh)
	p, err := Build(Input{Snapshot: snap, Dataplane: "web-1", Flavour: ir.FlavourProxyless})
	require.NoError(t, err)
	require.Equal(t, ir.FlavourProxyless, p.Flavour)
	require.False(t, p.TransparentProxy.Enabled(), "proxyless workloads are never redirected")
	require.Zero(t, p.Node.AdminPort)
	for _, o := range p.Outbounds {
		require.Empty(t, o.Address, "api_listeners have no address")
	}

	p, err = Build(Input{Snapshot: snap, Dataplane: "web-1"})
	require.NoError(t, err)
	require.Equal(t, ir.FlavourEnvoy, p.Flavour)
}

func TestErrorsNameTheProxy(t *testing.T) {
	snap := snapshotOf(t, mesh)
	_, err := Build(Input{Snapshot: snap, Dataplane: "nope"})
	require.ErrorIs(t, err, store.ErrNotFound)

	strict := snapshotOf(t, "type: Mesh\nname: s\nmtls:\n  enabledBackend: b\n  backends: [{name: b, type: builtin}]\n---\n"+
		"type: Dataplane\nmesh: s\nname: a\nnetworking:\n  address: 10.0.0.1\n  inbound: [{port: 80, tags: {kuma.io/service: a}}]\n")
	_, err = Build(Input{Snapshot: strict, Dataplane: "a"})
	require.ErrorContains(t, err, "building proxy s/a: mTLS is on but no workload certificate has been issued")
	p, err := Build(Input{Snapshot: strict, Dataplane: "a", Flavour: ir.FlavourProxyless})
	require.NoError(t, err, "proxyless workloads read their certificate from files")
	require.Empty(t, p.Secrets)
	require.Equal(t, ir.MTLSStrict, p.MTLS.Mode)
}

func TestBatchSharesOutboundPartsBetweenEqualProxies(t *testing.T) {
	snap := snapshotOf(t, mesh)
	b := NewBatch(snap, plugins(t))
	web1, err := b.Build("web-1", "", nil)
	require.NoError(t, err)
	api1, err := b.Build("api-1", "", nil)
	require.NoError(t, err)
	web2, err := b.Build("web-2", "", nil)
	require.NoError(t, err)
	again, err := b.Build("web-1", "", nil)
	require.NoError(t, err)
	require.Same(t, web1.Outbound, again.Outbound)
	require.NotSame(t, web1.Outbound, api1.Outbound, "other reachable services")
	require.NotSame(t, web1.Outbound, web2.Outbound, "a policy selects web-2 only")
	require.Equal(t, 3, b.Parts())
	require.True(t, web1.Outbound.AllServices)
	require.False(t, api1.Outbound.AllServices)
	require.Equal(t, []string{"web"}, api1.Outbound.Services)
	for _, name := range []string{"web-1", "web-2", "api-1"} {
		want, err := Build(Input{Snapshot: snap, Dataplane: name, Plugins: plugins(t)})
		require.NoError(t, err)
		got, err := b.Build(name, "", nil)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(want, got.Proxy))
	}
}

func TestBatchReportsListenConflictsAsBuildDoes(t *testing.T) {
	snap := snapshotOf(t, `type: Mesh
name: m
---
type: Dataplane
mesh: m
name: a
networking:
  address: 10.0.0.1
  inbound:
    - port: 10001
      address: 127.0.0.1
      tags: {kuma.io/service: a}
  outbound:
    - port: 10001
      tags: {kuma.io/service: b}
`)
	_, err := Build(Input{Snapshot: snap, Dataplane: "a"})
	require.ErrorContains(t, err, "address 127.0.0.1:10001 is used by another inbound or outbound")
	_, err = NewBatch(snap, nil).Build("a", "", nil)
	require.ErrorContains(t, err, "address 127.0.0.1:10001 is used by another inbound or outbound")
}
