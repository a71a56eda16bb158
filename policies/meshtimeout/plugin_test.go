package meshtimeout

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	api "github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

func snapshotOf(t *testing.T, docs string) *snapshot.Snapshot {
	t.Helper()
	reg := resource.MustRegistry(append(resource.CoreDescriptors(), Descriptor())...)
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

const docs = `type: Mesh
name: m
---
type: Dataplane
mesh: m
name: web-1
networking:
  address: 10.0.0.1
  inbound: [{port: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}]
---
type: Dataplane
mesh: m
name: web-2
networking:
  address: 10.0.0.2
  inbound: [{port: 8080, tags: {kuma.io/service: web, kuma.io/protocol: http}}]
---
type: Dataplane
mesh: m
name: db-1
networking:
  address: 10.0.0.3
  inbound: [{port: 5432, tags: {kuma.io/service: db}}]
---
type: MeshTimeout
mesh: m
name: inbound-only
spec:
  targetRef: {kind: Dataplane, name: web-2}
  from:
    - targetRef: {kind: Mesh}
      default: {idleTimeout: 2m, http: {requestTimeout: 20s}}
  rules:
    - default: {http: {requestTimeout: 3s}}
---
type: MeshTimeout
mesh: m
name: db-callers
spec:
  targetRef: {kind: MeshService, name: db}
  to:
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 1s, http: {requestTimeout: 9s}}
`

func matchOf(t *testing.T, snap *snapshot.Snapshot, name string) policy.Matched {
	t.Helper()
	prep, err := New().Prepare(snap)
	require.NoError(t, err)
	m, err := prep.Match(snap.Dataplane(name))
	require.NoError(t, err)
	return m
}

func TestOutboundKeyNamesOnlyPoliciesWithTo(t *testing.T) {
	snap := snapshotOf(t, docs)
	require.Equal(t, "", matchOf(t, snap, "web-1").OutboundKey(), "no policy configures web-1's outbounds")
	require.Equal(t, "", matchOf(t, snap, "web-2").OutboundKey(), "an inbound-only policy leaves the outbound part shared")
	require.NotEqual(t, "", matchOf(t, snap, "db-1").OutboundKey())
}

func TestInboundRulesApplyOverFrom(t *testing.T) {
	snap := snapshotOf(t, docs)
	p := &ir.Proxy{Inbounds: []ir.Inbound{{Port: 8080, Protocol: ir.ProtocolHTTP}}}
	require.NoError(t, matchOf(t, snap, "web-2").Inbound(p))
	want := ir.DefaultTimeouts()
	want.IdleTimeout, want.RequestTimeout = 2*time.Minute, 3*time.Second
	require.Equal(t, want, p.Inbounds[0].Timeouts)
}

func TestOutboundTimeoutsPerProtocol(t *testing.T) {
	snap := snapshotOf(t, docs)
	p := &ir.Proxy{
		Outbounds: []ir.Outbound{
			{Service: "web", Protocol: ir.ProtocolHTTP, Routes: []ir.Route{{Clusters: []ir.WeightedCluster{{Name: "web"}}}}},
			{Service: "db", Protocol: ir.ProtocolTCP, Routes: []ir.Route{{Clusters: []ir.WeightedCluster{{Name: "db"}}}}},
		},
		Clusters: []ir.Cluster{{Name: "web", Service: "web"}, {Name: "db", Service: "db"}},
	}
	require.NoError(t, matchOf(t, snap, "db-1").Outbound(p))
	require.Equal(t, time.Second, p.Clusters[0].ConnectTimeout)
	require.Equal(t, time.Hour, p.Clusters[0].IdleTimeout)
	require.Equal(t, 9*time.Second, p.Outbounds[0].Timeouts.RequestTimeout)
	require.Zero(t, p.Outbounds[0].Timeouts.ConnectTimeout, "the connect timeout belongs to the cluster")
	require.Zero(t, p.Outbounds[1].Timeouts.RequestTimeout, "TCP has no HTTP timeouts")
	require.Equal(t, time.Hour, p.Outbounds[1].Timeouts.IdleTimeout)
}

func TestApplyKeepsWhatAConfLeavesOut(t *testing.T) {
	got := Apply(ir.DefaultTimeouts(), api.Conf{HTTP: &api.HTTP{MaxStreamDuration: "0s", RequestHeadersTimeout: "1s"}})
	want := ir.DefaultTimeouts()
	want.RequestHeadersTimeout = time.Second
	require.Equal(t, want, got, "0s disables (it already was zero); absent fields keep their value")
}
