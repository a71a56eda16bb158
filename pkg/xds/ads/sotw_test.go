package ads

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

type sotwResponse = discoveryv3.DiscoveryResponse

// TestSotWAnswersTheNamesAsked: a SotW client gets exactly the resources it
// names (gRPC names only what its routes use); asking for more names at the
// same version gets them; dropping a name and asking for it again gets it
// again; a change of a resource it did not ask for still moves the type's
// version, as with go-control-plane; "*" gets everything.
func TestSotWAnswersTheNamesAsked(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	a, b, c := cla("a", 1), cla("b", 1), cla("c", 1)
	h.publish(web1, &translate.Resources{Endpoints: []*endpointv3.ClusterLoadAssignment{a, b, c}}, "v1")

	cl, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	got := adstest.Collect(cl.Recv, nil)
	step := func(n int, want ...string) *sotwResponse {
		t.Helper()
		all, err := got.Wait(ctx, n)
		require.NoError(t, err)
		require.Len(t, all, n)
		resp := all[n-1]
		require.Equal(t, want, sotwNames(t, resp))
		return resp
	}

	require.NoError(t, cl.Subscribe(resource.EndpointType, "b"))
	require.NoError(t, cl.Ack(step(1, "b")))
	require.NoError(t, cl.Subscribe(resource.EndpointType, "c", "b")) // any order
	resp := step(2, "b", "c")
	require.Equal(t, "v1."+translate.Revision, resp.GetVersionInfo())
	require.NoError(t, cl.Ack(resp))

	require.NoError(t, cl.Subscribe(resource.EndpointType, "c"))
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 2, "dropping a name sends nothing")
	require.NoError(t, cl.Subscribe(resource.EndpointType, "b", "c"))
	require.NoError(t, cl.Ack(step(3, "b", "c")))

	h.publish(web1, &translate.Resources{Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a", 2), b, c}}, "v2")
	resp = step(4, "b", "c")
	require.Equal(t, "v2."+translate.Revision, resp.GetVersionInfo())
	require.NoError(t, cl.Ack(resp))

	require.NoError(t, cl.Subscribe(resource.EndpointType, "*"))
	step(5, "a", "b", "c")
	require.Len(t, h.rec.Events("ack"), 4)
}

// envoyLike drives a SotW stream in Envoy's order: clusters and secrets
// first (wildcard), then the load assignments the clusters name, then
// listeners (wildcard) and the route configurations named after them. It
// ACKs every response after the subscription changes it causes.
type envoyLike struct {
	cl   *adstest.SotW
	eds  []string
	rds  []string
	lds  bool
	seen []*sotwResponse
}

func (e *envoyLike) start() error {
	if err := e.cl.Subscribe(resource.ClusterType); err != nil {
		return err
	}
	return e.cl.Subscribe(resource.SecretType)
}

func (e *envoyLike) handle(resp *sotwResponse) error {
	follow := func(cur *[]string, typeURL string, names []string) error {
		slices.Sort(names)
		if slices.Equal(names, *cur) {
			return nil
		}
		*cur = names
		return e.cl.Subscribe(typeURL, names...)
	}
	var err error
	switch resp.GetTypeUrl() {
	case resource.ClusterType:
		var names []string
		for _, a := range resp.GetResources() {
			var c clusterv3.Cluster
			if err := a.UnmarshalTo(&c); err != nil {
				return err
			}
			if c.GetType() == clusterv3.Cluster_EDS {
				names = append(names, c.GetName())
			}
		}
		err = follow(&e.eds, resource.EndpointType, names)
		if err == nil && !e.lds {
			e.lds = true
			err = e.cl.Subscribe(resource.ListenerType)
		}
	case resource.ListenerType:
		var names []string
		for _, a := range resp.GetResources() {
			var l listenerv3.Listener
			if err := a.UnmarshalTo(&l); err != nil {
				return err
			}
			names = append(names, l.GetName())
		}
		err = follow(&e.rds, resource.RouteType, names)
	}
	if err != nil {
		return err
	}
	return e.cl.Ack(resp)
}

func envoyMesh(timeout time.Duration, endpointPort uint32, secretName string) *translate.Resources {
	return &translate.Resources{
		Secrets:   []*tlsv3.Secret{secret(secretName)},
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", timeout)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a", 1), cla("b", endpointPort)},
		Listeners: []*listenerv3.Listener{listener("la"), listener("lb")},
		Routes:    []*routev3.RouteConfiguration{route("la", "a"), route("lb", "b")},
	}
}

// TestSotWEnvoyOrder: an Envoy-like client initialises type by type; a
// publish that changes every type is sent in make-before-break order
// (secrets, clusters, load assignments, listeners, routes); a change of one
// cluster sends the clusters again and nothing else.
func TestSotWEnvoyOrder(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, envoyMesh(time.Second, 1, "s1"), "v1")

	cl, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	e := &envoyLike{cl: cl}
	got := adstest.Collect(cl.Recv, e.handle)
	require.NoError(t, e.start())
	all, err := got.Wait(ctx, 5)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(h.rec.Events("ack")) == 5 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"a", "b"}, e.eds)
	require.Equal(t, []string{"la", "lb"}, e.rds)

	// Every type changes.
	h.publish(web1, &translate.Resources{
		Secrets:   []*tlsv3.Secret{secret("s2")},
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", 2*time.Second)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a", 1), cla("b", 2)},
		Listeners: []*listenerv3.Listener{listener("la"), {Name: "lb", StatPrefix: "changed"}},
		Routes:    []*routev3.RouteConfiguration{route("la", "a"), route("lb", "a")},
	}, "v2")
	all, err = got.Wait(ctx, 10)
	require.NoError(t, err)
	var order []string
	for _, r := range all[5:] {
		order = append(order, short(r.GetTypeUrl()))
		require.Equal(t, "v2."+translate.Revision, r.GetVersionInfo())
	}
	require.Equal(t, []string{"Secret", "Cluster", "ClusterLoadAssignment", "Listener", "RouteConfiguration"}, order)
	require.Eventually(t, func() bool { return len(h.rec.Events("ack")) == 10 }, 5*time.Second, 10*time.Millisecond)

	// One cluster changes: the clusters are sent again, whole.
	h.publish(web1, &translate.Resources{
		Secrets:   []*tlsv3.Secret{secret("s2")},
		Clusters:  []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", 3*time.Second)},
		Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a", 1), cla("b", 2)},
		Listeners: []*listenerv3.Listener{listener("la"), {Name: "lb", StatPrefix: "changed"}},
		Routes:    []*routev3.RouteConfiguration{route("la", "a"), route("lb", "a")},
	}, "v3")
	all, err = got.Wait(ctx, 11)
	require.NoError(t, err)
	require.Equal(t, resource.ClusterType, all[10].GetTypeUrl())
	require.Equal(t, []string{"a", "b"}, sotwNames(t, all[10]))
	time.Sleep(300 * time.Millisecond)
	all, _ = got.All()
	require.Len(t, all, 11, "the other types were not sent again")
	require.Equal(t, "v2."+translate.Revision, h.cache.Version(web1, resource.EndpointType))
}

// TestSotWNackIsNotResent: a NACK is reported once, with the rejected
// version, and that version is not sent again (go-control-plane #962); the
// next change is.
func TestSotWNackIsNotResent(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "good")
	cl, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.NoError(t, cl.Ack(resp))

	got := adstest.Collect(cl.Recv, func(r *sotwResponse) error { return cl.Nack(r, "no thanks") })
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 5*time.Second)}}, "bad")
	_, err = got.Wait(ctx, 1)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Len(t, all, 1)
	require.Equal(t, []string{"nack default/web-1 Cluster bad." + translate.Revision + ": no thanks"}, h.rec.Events("nack"))
	require.Equal(t, []string{"ack default/web-1 Cluster good." + translate.Revision}, h.rec.Events("ack"))

	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", 3*time.Second)}}, "fixed")
	all, err = got.Wait(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, "fixed."+translate.Revision, all[1].GetVersionInfo())
}

// TestSotWStaleNonceIsIgnored: a request answering an older response is
// ignored — no ACK, no subscription change, no response; the answer to the
// latest response counts.
func TestSotWStaleNonceIsIgnored(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Endpoints: []*endpointv3.ClusterLoadAssignment{cla("a", 1), cla("b", 1)}}, "v1")
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(web1), TypeUrl: resource.EndpointType, ResourceNames: []string{"a"}}))
	first, err := s.Recv()
	require.NoError(t, err)

	got := adstest.Collect(s.Recv, nil)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{"a", "b"}, ResponseNonce: "stale", VersionInfo: first.GetVersionInfo()}))
	time.Sleep(300 * time.Millisecond)
	all, _ := got.All()
	require.Empty(t, all)
	require.Empty(t, h.rec.Events("ack"))

	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{"a", "b"}, ResponseNonce: first.GetNonce(), VersionInfo: first.GetVersionInfo()}))
	all, err = got.Wait(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, sotwNames(t, all[0]))
	require.NotEqual(t, first.GetNonce(), all[0].GetNonce())
	require.Len(t, h.rec.Events("ack"), 1)
}

// TestSotWNewStreamIsAnswered: a proxy that reconnects announcing the
// version it holds still gets the resources on its new stream (it may have
// lost them), and a type with no resources is answered with an empty
// response once, so the proxy can finish initialising.
func TestSotWNewStreamIsAnswered(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1")
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(web1), TypeUrl: resource.ClusterType, VersionInfo: "v1." + translate.Revision}))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, sotwNames(t, resp))
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ListenerType}))
	resp, err = s.Recv()
	require.NoError(t, err)
	require.Equal(t, resource.ListenerType, resp.GetTypeUrl())
	require.Empty(t, resp.GetResources())
}

// TestAdmission: nothing happens on a stream before the hooks admitted its
// first request; a refusal ends it with the hooks' status; a type URL is
// required; a node cannot change; types snapshots do not hold are never
// answered but do not disturb the others.
func TestAdmission(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	bad := web1
	bad.Name = "intruder"
	h.rec.refuse[bad.String()] = status.Error(codes.PermissionDenied, "not you")
	h.publish(bad, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("secret", time.Second)}}, "v1")
	h.publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second)}}, "v1")
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn)

	for _, delta := range []bool{false, true} {
		var err error
		if delta {
			var s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
			s, err = client.DeltaAggregatedResources(ctx)
			require.NoError(t, err)
			require.NoError(t, s.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node(bad), TypeUrl: resource.ClusterType}))
			_, err = s.Recv()
		} else {
			var s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
			s, err = client.StreamAggregatedResources(ctx)
			require.NoError(t, err)
			require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(bad), TypeUrl: resource.ClusterType}))
			_, err = s.Recv()
		}
		require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		require.Equal(t, "not you", status.Convert(err).Message())
	}
	require.Empty(t, h.rec.Events("sent"))

	s, err := client.StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(web1)}))
	_, err = s.Recv()
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)

	s, err = client.StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(web1), TypeUrl: "type.googleapis.com/envoy.service.runtime.v3.Runtime"}))
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{TypeUrl: resource.ClusterType}))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.Equal(t, resource.ClusterType, resp.GetTypeUrl(), "the unknown type got no response")
	require.NoError(t, s.Send(&discoveryv3.DiscoveryRequest{Node: node(bad), TypeUrl: resource.ClusterType, ResponseNonce: resp.GetNonce(),
		ErrorDetail: &statuspb.Status{Message: "switching"}}))
	_, err = s.Recv()
	require.ErrorContains(t, err, `switched to "default/intruder"`)
	require.Empty(t, h.rec.Events("nack"), "the request of another node was not taken as a NACK")
}

// TestLargeResponses: responses of many resources, large and small (the
// small ones are copied into one buffer, the large ones sent as they are),
// reach SotW and delta clients intact.
func TestLargeResponses(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	res := &translate.Resources{}
	var names []string
	for i := range 300 {
		n := fmt.Sprintf("svc-%03d", i)
		names = append(names, n)
		res.Clusters = append(res.Clusters, cluster(n, time.Duration(i+1)*time.Millisecond))
		res.Endpoints = append(res.Endpoints, &endpointv3.ClusterLoadAssignment{ClusterName: n})
		res.Listeners = append(res.Listeners, &listenerv3.Listener{Name: n, StatPrefix: strings.Repeat("x", 100*(i%40))})
	}
	h.publish(web1, res, "v1")
	want := map[string]proto.Message{}
	for i, n := range names {
		want["c/"+n], want["e/"+n], want["l/"+n] = res.Clusters[i], res.Endpoints[i], res.Listeners[i]
	}

	s, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, s.Subscribe(resource.ClusterType))
	require.NoError(t, s.Subscribe(resource.EndpointType, names...))
	require.NoError(t, s.Subscribe(resource.ListenerType))
	for range 3 {
		resp, err := s.Recv()
		require.NoError(t, err)
		prefix := map[string]string{resource.ClusterType: "c/", resource.EndpointType: "e/", resource.ListenerType: "l/"}[resp.GetTypeUrl()]
		require.Len(t, resp.GetResources(), 300)
		for _, a := range resp.GetResources() {
			m, err := a.UnmarshalNew()
			require.NoError(t, err)
			require.True(t, proto.Equal(want[prefix+resourceName(m)], m))
		}
	}

	d, err := adstest.NewDelta(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, d.Subscribe(resource.ClusterType))
	require.NoError(t, d.Subscribe(resource.EndpointType))
	require.NoError(t, d.Subscribe(resource.ListenerType))
	for range 3 {
		resp, err := d.Recv()
		require.NoError(t, err)
		prefix := map[string]string{resource.ClusterType: "c/", resource.EndpointType: "e/", resource.ListenerType: "l/"}[resp.GetTypeUrl()]
		require.Len(t, resp.GetResources(), 300)
		for _, r := range resp.GetResources() {
			m, err := r.GetResource().UnmarshalNew()
			require.NoError(t, err)
			require.Equal(t, r.GetName(), resourceName(m))
			require.True(t, proto.Equal(want[prefix+r.GetName()], m))
		}
	}
}
