package track

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

const meshA = `
type: Mesh
name: a
`

func TestImplicitServicesFromReadyInbounds(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA + "---" +
		dpYAML("a", "backend-1", "10.0.0.1", "backend", 8080, "") + "---" +
		dpYAML("a", "backend-2", "10.0.0.2", "backend", 8080, "") + "---" +
		dpYAML("a", "web-1", "10.0.0.3", "web", 80, ""))
	u := e.update("a")
	_ = u
	e.drain()
	snap := e.tr.Snapshot("a")
	require.NotNil(t, snap)
	require.Equal(t, []string{"backend", "web"}, snap.ServiceNames())
	backend := snap.Service("backend")
	require.False(t, backend.Explicit())
	require.Len(t, backend.Ports, 1)
	require.Equal(t, uint32(snapshot.ImplicitServicePort), backend.Ports[0].Port)
	require.Equal(t, ir.ProtocolTCP, backend.Ports[0].Protocol)
	require.Equal(t, []snapshot.Endpoint{{Dataplane: "backend-1", Address: "10.0.0.1", Port: 8080}, {Dataplane: "backend-2", Address: "10.0.0.2", Port: 8080}}, backend.Ports[0].Endpoints)
	require.Equal(t, []string{"backend-1", "backend-2"}, backend.Backers)
	vip, err := netip.ParseAddr(backend.VIP)
	require.NoError(t, err)
	require.True(t, netip.MustParsePrefix("240.0.0.0/4").Contains(vip))

	// A NotReady inbound backs the service without receiving traffic.
	e.apply(dpYAML("a", "backend-2", "10.0.0.2", "backend", 8080, "      state: NotReady"))
	u = e.update("a")
	require.Equal(t, []string{"backend"}, u.Delta.Services)
	require.Equal(t, []string{"backend-2"}, u.Delta.Dataplanes)
	require.Empty(t, u.Delta.ServicesAdded)
	require.Len(t, u.New.Service("backend").Ports[0].Endpoints, 1)
	require.Equal(t, []string{"backend-1", "backend-2"}, u.New.Service("backend").Backers)
	require.Same(t, u.Old.Service("web"), u.New.Service("web"), "an untouched service is shared between snapshots")
}

func TestProtocolFromTags(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA + "---" +
		dpYAML("a", "g-1", "10.0.0.1", "greeter", 9090, "        kuma.io/protocol: grpc") + "---" +
		dpYAML("a", "g-2", "10.0.0.2", "greeter", 9090, "        kuma.io/protocol: grpc") + "---" +
		dpYAML("a", "m-1", "10.0.0.3", "mixed", 80, "        kuma.io/protocol: http") + "---" +
		dpYAML("a", "m-2", "10.0.0.4", "mixed", 80, ""))
	e.update("a")
	e.drain()
	snap := e.tr.Snapshot("a")
	require.Equal(t, ir.ProtocolGRPC, snap.Service("greeter").Ports[0].Protocol)
	require.Equal(t, ir.ProtocolTCP, snap.Service("mixed").Ports[0].Protocol, "inconsistent protocols fall back to tcp")
}

func TestExplicitMeshServiceShadowsImplicit(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA + "---" +
		dpYAML("a", "backend-1", "10.0.0.1", "backend", 8080, "        app: backend\n    - port: 9090\n      name: admin\n      tags:\n        kuma.io/service: backend-admin\n        app: backend") + "---" +
		dpYAML("a", "web-1", "10.0.0.3", "web", 80, ""))
	e.update("a")
	e.drain()
	require.False(t, e.tr.Snapshot("a").Service("backend").Explicit())

	e.apply(`
type: MeshService
mesh: a
name: backend
spec:
  selector:
    dataplaneTags:
      app: backend
  ports:
    - port: 80
      targetPort: 8080
      appProtocol: http
    - port: 9000
      name: admin
      targetPort: admin
status:
  vips:
    - ip: 241.1.2.3
`)
	u := e.update("a")
	require.Equal(t, []string{"backend"}, u.Delta.Services)
	svc := u.New.Service("backend")
	require.True(t, svc.Explicit())
	require.Equal(t, "241.1.2.3", svc.VIP)
	require.Len(t, svc.Ports, 2)
	require.Equal(t, "backend_80", svc.Ports[0].Cluster)
	require.Equal(t, ir.ProtocolHTTP, svc.Ports[0].Protocol)
	require.Equal(t, []snapshot.Endpoint{{Dataplane: "backend-1", Address: "10.0.0.1", Port: 8080}}, svc.Ports[0].Endpoints)
	require.Equal(t, []snapshot.Endpoint{{Dataplane: "backend-1", Address: "10.0.0.1", Port: 9090}}, svc.Ports[1].Endpoints)
	got, port, ok := u.New.ClusterTarget("backend_9000")
	require.True(t, ok)
	require.Equal(t, svc, got)
	require.Equal(t, "admin", port.Name)
	require.Len(t, u.New.MeshServices(), 1)
	require.Equal(t, "backend", svc.Identity, "the backing inbounds of port 80 and 9000 carry two services: the name is used")

	// Exclusive mode keeps MeshService resources only.
	e.apply(meshA + "meshServices:\n  mode: Exclusive\n")
	u = e.update("a")
	require.True(t, u.Delta.MeshChanged)
	require.Equal(t, []string{"backend"}, u.New.ServiceNames())
	require.ElementsMatch(t, []string{"backend-admin", "web"}, u.Delta.ServicesRemoved)
}

func TestBurstsAreCoalesced(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA)
	e.update("a")
	var docs string
	for i := range 50 {
		docs += "---" + dpYAML("a", fmt.Sprintf("backend-%d", i), fmt.Sprintf("10.0.1.%d", i+1), "backend", 8080, "")
	}
	before := e.tr.Snapshot("a").Generation()
	e.apply(docs)
	u := e.update("a")
	e.drain()
	snap := e.tr.Snapshot("a")
	require.Len(t, snap.Service("backend").Ports[0].Endpoints, 50)
	// 50 writes in a burst make a handful of snapshots, not 50.
	require.Less(t, snap.Generation()-before, uint64(10))
	require.Equal(t, []string{"backend"}, u.Delta.ServicesAdded)
}

func TestPolicyAndMeshDeletion(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA + "---" + dpYAML("a", "web-1", "10.0.0.3", "web", 80, ""))
	e.update("a")
	e.apply(`
type: MeshTimeout
mesh: a
name: to-backend
spec:
  to:
    - targetRef: {kind: MeshService, name: backend}
      default: {connectionTimeout: 2s}
`)
	u := e.update("a")
	require.Equal(t, map[string][]string{"MeshTimeout": {"to-backend"}}, u.Delta.Policies)
	require.Empty(t, u.Delta.Services)
	require.Len(t, u.New.Policies("MeshTimeout"), 1)
	require.NotEqual(t, u.Old.PolicyTypeHash("MeshTimeout"), u.New.PolicyTypeHash("MeshTimeout"))

	e.delete(resource.MeshType, "", "a")
	u = e.update("a")
	require.Nil(t, u.New)
	require.True(t, u.Delta.Deleted)
	require.Equal(t, []string{"web"}, u.Delta.ServicesRemoved)
	require.Nil(t, e.tr.Snapshot("a"))
}

func TestCAHashFollowsMTLSAndSecrets(t *testing.T) {
	e := newEnv(t, Options{})
	e.apply(meshA)
	first := e.update("a").New
	e.apply(meshA + "mtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n")
	u := e.update("a")
	require.True(t, u.Delta.CAChanged)
	require.Equal(t, ir.MTLSStrict, u.New.MTLSMode())
	require.NotEqual(t, first.CAHash(), u.New.CAHash())

	e.apply("type: Secret\nmesh: a\nname: a.ca-builtin-cert-ca-1\ndata: Y2VydA==\n")
	u = e.update("a")
	require.True(t, u.Delta.CAChanged)
	require.False(t, u.Delta.MeshChanged)

	e.apply("type: Secret\nmesh: a\nname: unrelated\ndata: eA==\n")
	e.drain()
	require.Equal(t, u.New.Hash(), e.tr.Snapshot("a").Hash(), "a secret no CA uses does not change the snapshot")
}

func TestResyncPublishesOnlyChangedMeshes(t *testing.T) {
	// A queue of one event overflows at once: the tracker then gets
	// Resync events and must re-list.
	e := newEnv(t, Options{}, memory.WithEventQueueSize(1))
	e.apply(meshA + "---\ntype: Mesh\nname: b\n---" + dpYAML("a", "web-1", "10.0.0.3", "web", 80, ""))
	e.drain()
	for i := range 20 {
		e.apply(dpYAML("a", "web-1", "10.0.0.3", "web", 80+i, ""))
	}
	e.drain()
	snap := e.tr.Snapshot("a")
	require.Equal(t, uint32(99), snap.Service("web").Ports[0].Endpoints[0].Port, "the last write is seen after re-listing")
	require.NotNil(t, e.tr.Snapshot("b"))
}
