package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/manager"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	xdsboot "github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// publishCluster gives key one cluster named after it, so a stream that
// gets a response can tell whose configuration it is.
func (e *env) publishCluster(key atollres.Key, version string) {
	e.t.Helper()
	require.NoError(e.t, e.cache.Publish(key, &translate.Resources{Clusters: []*clusterv3.Cluster{{
		Name: "config-of-" + key.String(), ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		AltStatName: version, // content differs per version
	}}}, version))
}

// attempt opens a stream (SotW or delta) as node with the token in the
// stream metadata and asks for clusters; it returns the first response's
// cluster names or the error that ended the stream.
func (e *env) attempt(conn grpc.ClientConnInterface, delta bool, node *corev3.Node, token string) ([]string, error) {
	ctx, cancel := context.WithTimeout(withToken(e.ctx, token), 5*time.Second)
	defer cancel()
	if delta {
		cl, err := adstest.NewDelta(ctx, conn, node)
		if err != nil {
			return nil, err
		}
		if err := cl.Subscribe(resource.ClusterType); err != nil {
			return nil, err
		}
		resp, err := cl.Recv()
		if err != nil {
			return nil, err
		}
		var names []string
		for _, r := range resp.GetResources() {
			names = append(names, r.GetName())
		}
		return names, nil
	}
	cl, err := adstest.NewSotW(ctx, conn, node)
	if err != nil {
		return nil, err
	}
	if err := cl.Subscribe(resource.ClusterType); err != nil {
		return nil, err
	}
	resp, err := cl.Recv()
	if err != nil {
		return nil, err
	}
	return clusterNames(resp), nil
}

func clusterNames(resp *discoveryv3.DiscoveryResponse) []string {
	var names []string
	for _, a := range resp.GetResources() {
		var c clusterv3.Cluster
		if a.UnmarshalTo(&c) == nil {
			names = append(names, c.GetName())
		}
	}
	return names
}

func withMetadataToken(node *corev3.Node, token string) *corev3.Node {
	md := node.GetMetadata().AsMap()
	md[xdsboot.MetadataToken] = token
	s, _ := structpb.NewStruct(md)
	return &corev3.Node{Id: node.GetId(), Metadata: s}
}

// TestStreamAuthentication: every kind of bad token is refused on SotW and
// delta streams with a code and a message saying what is wrong, before any
// configuration is sent; a good token gets the proxy its own configuration.
func TestStreamAuthentication(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.createDataplane(otherDP, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	e.publishCluster(otherDP, "v1")
	conn := e.grpcConn()

	good := e.token(web1)
	tampered := good[:len(good)-4] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, good[len(good)-4:])
	past := dptoken.New(e.secrets, dptoken.Options{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	expired, err := past.Issue(e.ctx, dptoken.IssueRequest{Mesh: "default", Name: "web-1", ValidFor: time.Hour})
	require.NoError(t, err)
	revoked := e.token(web1)
	claims, err := dptoken.ParseUnverified(revoked)
	require.NoError(t, err)
	require.NoError(t, e.tokens.Revoke(e.ctx, "default", claims.ID))
	restricted, err := e.tokens.Issue(e.ctx, dptoken.IssueRequest{Mesh: "default", Name: "web-1", Tags: map[string][]string{dataplane.ServiceTag: {"backend"}}})
	require.NoError(t, err)
	meshWide, err := e.tokens.Issue(e.ctx, dptoken.IssueRequest{Mesh: "default"})
	require.NoError(t, err)

	cases := []struct {
		name  string
		node  *corev3.Node
		token string
		code  codes.Code
		msg   string
	}{
		{"no token", envoyNode(web1), "", codes.Unauthenticated, "no dataplane token"},
		{"malformed", envoyNode(web1), "garbage", codes.Unauthenticated, "not a valid JWT"},
		{"bad signature", envoyNode(web1), tampered, codes.Unauthenticated, "not signed by mesh"},
		{"expired", envoyNode(web1), expired, codes.Unauthenticated, "expired"},
		{"revoked", envoyNode(web1), revoked, codes.Unauthenticated, "revoked"},
		{"token of another mesh", envoyNode(web1), e.token(otherDP), codes.PermissionDenied, `issued for mesh "other"`},
		{"claims another mesh", envoyNode(otherDP), good, codes.PermissionDenied, `issued for mesh "default", but the dataplane is in mesh "other"`},
		{"claims another dataplane", envoyNode(atollres.Key{Mesh: "default", Name: "web-2"}), good, codes.PermissionDenied, `issued for dataplane "web-1", not "web-2"`},
		{"tags not allowed", envoyNode(web1), restricted, codes.PermissionDenied, "only with values"},
		{"no such dataplane", envoyNode(atollres.Key{Mesh: "default", Name: "nobody"}), meshWide, codes.NotFound, "default/nobody does not exist"},
		{"no node", &corev3.Node{}, good, codes.InvalidArgument, "must carry the node"},
		{"node id without mesh", &corev3.Node{Id: "web-1"}, good, codes.InvalidArgument, "<mesh>/<name>"},
		{"bad header beats good metadata", withMetadataToken(envoyNode(web1), good), "garbage", codes.Unauthenticated, "not a valid JWT"},
	}
	for _, delta := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name + map[bool]string{false: "/sotw", true: "/delta"}[delta]
			t.Run(name, func(t *testing.T) {
				got, err := e.attempt(conn, delta, tc.node, tc.token)
				require.Empty(t, got, "nothing was sent before authentication")
				require.Equal(t, tc.code, status.Code(err), "%v", err)
				require.Contains(t, status.Convert(err).Message(), tc.msg)
			})
		}
	}
	require.Equal(t, float64(2*len(cases)), e.counter("atoll_xds_streams_refused_total"))

	// Good tokens get the proxy its own configuration, and nothing else.
	for _, delta := range []bool{false, true} {
		got, err := e.attempt(conn, delta, envoyNode(web1), good)
		require.NoError(t, err)
		require.Equal(t, []string{"config-of-default/web-1"}, got)
		got, err = e.attempt(conn, delta, envoyNode(web1), meshWide)
		require.NoError(t, err, "a mesh-wide token admits any dataplane of its mesh")
		require.Equal(t, []string{"config-of-default/web-1"}, got)
		// Proxyless gRPC sends the token in its node metadata.
		got, err = e.attempt(conn, delta, withMetadataToken(envoyNode(web1), good), "")
		require.NoError(t, err)
		require.Equal(t, []string{"config-of-default/web-1"}, got)
		got, err = e.attempt(conn, delta, envoyNode(otherDP), e.token(otherDP))
		require.NoError(t, err)
		require.Equal(t, []string{"config-of-other/web-1"}, got)
	}
}

// TestStreamCannotSwitchNode: an admitted stream that names another node
// later is cut off, and never receives that node's configuration.
func TestStreamCannotSwitchNode(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.createDataplane(otherDP, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	e.publishCluster(otherDP, "v1")
	conn := e.grpcConn()
	ctx := withToken(e.ctx, e.token(web1))

	// SotW: node on a later request.
	cl, err := adstest.NewSotW(ctx, conn, envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"config-of-default/web-1"}, clusterNames(resp))
	sw, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, sw.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(web1), TypeUrl: resource.ClusterType}))
	_, err = sw.Recv()
	require.NoError(t, err)
	require.NoError(t, sw.Send(&discoveryv3.DiscoveryRequest{Node: envoyNode(otherDP), TypeUrl: resource.ListenerType}))
	_, err = sw.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), `cannot switch to node "other/web-1"`)

	// Delta: same.
	dl, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, dl.Send(&discoveryv3.DeltaDiscoveryRequest{Node: envoyNode(web1), TypeUrl: resource.ClusterType}))
	dresp, err := dl.Recv()
	require.NoError(t, err)
	require.Equal(t, "config-of-default/web-1", dresp.GetResources()[0].GetName())
	require.NoError(t, dl.Send(&discoveryv3.DeltaDiscoveryRequest{Node: envoyNode(otherDP), TypeUrl: resource.ListenerType}))
	_, err = dl.Recv()
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
}

// TestRevokingATokenEndsItsOpenStreams: a proxy already connected with a
// token that gets revoked loses its stream when the control plane rechecks
// the mesh, and cannot come back; proxies with valid tokens, and other
// meshes, are left alone.
func TestRevokingATokenEndsItsOpenStreams(t *testing.T) {
	e := newEnv(t, envOptions{})
	web2 := atollres.Key{Mesh: "default", Name: "web-2"}
	for _, k := range []atollres.Key{web1, web2, otherDP} {
		e.createDataplane(k, dataplaneSpec("web", 8080))
		e.publishCluster(k, "v1")
	}
	tokens := map[atollres.Key]string{web1: e.token(web1), web2: e.token(web2), otherDP: e.token(otherDP)}
	open := map[atollres.Key]*adstest.SotW{}
	for k, tok := range tokens {
		cl, err := adstest.NewSotW(withToken(e.ctx, tok), e.grpcConn(), envoyNode(k))
		require.NoError(t, err)
		require.NoError(t, cl.Subscribe(resource.ClusterType))
		resp, err := cl.Recv()
		require.NoError(t, err)
		require.NoError(t, cl.Ack(resp))
		open[k] = cl
	}
	require.Zero(t, e.srv.Recheck(e.ctx, ""), "valid tokens keep their streams")

	claims, err := dptoken.ParseUnverified(tokens[web1])
	require.NoError(t, err)
	require.NoError(t, e.tokens.Revoke(e.ctx, "default", claims.ID))
	require.Zero(t, e.srv.Recheck(e.ctx, "other"), "a recheck of another mesh ends nothing")
	require.Equal(t, 1, e.srv.Recheck(e.ctx, "default"))

	_, err = open[web1].Recv()
	require.Error(t, err, "the revoked proxy's stream ends")
	_, err = e.attempt(e.grpcConn(), false, envoyNode(web1), tokens[web1])
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "revoked")

	// The others still get their configuration on their open streams.
	for _, k := range []atollres.Key{web2, otherDP} {
		e.publishCluster(k, "v2")
		resp, err := open[k].Recv()
		require.NoError(t, err, "%s", k)
		require.Equal(t, []string{"config-of-" + k.String()}, clusterNames(resp))
	}
	require.Equal(t, 2.0, e.counter("atoll_xds_streams_refused_total", "code", "Unauthenticated"), "the ended stream and the refused reconnection")

	// Removing a mesh's signing key invalidates every token it signed.
	require.NoError(t, e.mgr.Delete(e.ctx, atollres.SecretType, atollres.Key{Mesh: "other", Name: dptoken.SigningKeySecretName("other", 1)}, manager.DeleteOptions{System: true}))
	require.Equal(t, 1, e.srv.Recheck(e.ctx, ""))
	_, err = open[otherDP].Recv()
	require.Error(t, err)
}

// TestDeletingADataplaneEndsItsStreams: a proxy whose (pre-created)
// dataplane is deleted loses its stream and is told, on reconnecting, to
// create it first; while the dataplane exists nothing happens.
func TestDeletingADataplaneEndsItsStreams(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.publishCluster(web1, "v1")
	tok := e.token(web1)
	cl, err := adstest.NewSotW(withToken(e.ctx, tok), e.grpcConn(), envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	_, err = cl.Recv()
	require.NoError(t, err)
	require.Zero(t, e.srv.DataplaneDeleted(e.ctx, web1), "the dataplane still exists")

	require.NoError(t, e.mgr.Delete(e.ctx, atollres.DataplaneType, web1, manager.DeleteOptions{}))
	require.Equal(t, 1, e.srv.DataplaneDeleted(e.ctx, web1))
	_, err = cl.Recv()
	require.Error(t, err, "the stream ended")
	_, err = e.attempt(e.grpcConn(), false, envoyNode(web1), tok)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "create it first")

	// A proxy that registers its dataplane would register it again at once:
	// its stream stays.
	web2 := atollres.Key{Mesh: "default", Name: "web-2"}
	registering := envoyNode(web2)
	md := registering.GetMetadata().AsMap()
	md[xdsboot.MetadataDataplane] = dataplaneJSON(t, web2, dataplaneSpec("web", 8080))
	registering.Metadata, err = structpb.NewStruct(md)
	require.NoError(t, err)
	e.publishCluster(web2, "v1")
	reg, err := adstest.NewSotW(withToken(e.ctx, e.token(web2)), e.grpcConn(), registering)
	require.NoError(t, err)
	require.NoError(t, reg.Subscribe(resource.ClusterType))
	_, err = reg.Recv()
	require.NoError(t, err)
	require.NoError(t, e.mgr.Delete(e.ctx, atollres.DataplaneType, web2, manager.DeleteOptions{}))
	require.Zero(t, e.srv.DataplaneDeleted(e.ctx, web2))
}
