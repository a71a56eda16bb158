package ads

import (
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// TestNonsenseRequestsNeverBreakTheServer: streams sending requests no
// proxy would (random type URLs, nonces, versions, names, wildcards,
// errors, initial versions, unsubscriptions of what was never subscribed)
// either keep being served or end with an InvalidArgument status; the
// server keeps serving a well-behaved proxy throughout.
func TestNonsenseRequestsNeverBreakTheServer(t *testing.T) {
	ctx := ctxT(t)
	h := newHarness(t)
	h.publish(web1, &translate.Resources{
		Clusters: []*clusterv3.Cluster{cluster("a", 1), cluster("b", 1)},
	}, "v1")

	var outcomes outcomes
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	types := []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType, resource.SecretType,
		"", "type.googleapis.com/nonsense", "x", strings.Repeat("t", 300)}
	names := func() []string {
		var out []string
		for range rng.IntN(4) {
			out = append(out, pick("a", "b", "*", "", "zz", strings.Repeat("n", 2000)))
		}
		return out
	}
	for round := range 40 {
		if round%2 == 0 {
			s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).StreamAggregatedResources(ctx)
			require.NoError(t, err)
			for i := range 1 + rng.IntN(12) {
				req := &discoveryv3.DiscoveryRequest{TypeUrl: pick(types...), ResourceNames: names(),
					VersionInfo: pick("", "v1", "garbage"), ResponseNonce: pick("", "1", "2", "999", "x")}
				if i == 0 {
					req.Node = node(web1)
				}
				if rng.IntN(4) == 0 {
					req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "no"}
				}
				if s.Send(req) != nil {
					break
				}
			}
			require.NoError(t, s.CloseSend())
			drain(t, s.Recv, &outcomes)
			continue
		}
		s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn).DeltaAggregatedResources(ctx)
		require.NoError(t, err)
		for i := range 1 + rng.IntN(12) {
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: pick(types...), ResourceNamesSubscribe: names(),
				ResourceNamesUnsubscribe: names(), ResponseNonce: pick("", "1", "2", "999", "x")}
			if i == 0 {
				req.Node = node(web1)
				req.InitialResourceVersions = map[string]string{"a": "stale", "zz": "x", "*": "y"}
			}
			if rng.IntN(4) == 0 {
				req.ErrorDetail = &statuspb.Status{Code: int32(codes.Internal), Message: "no"}
			}
			if s.Send(req) != nil {
				break
			}
		}
		require.NoError(t, s.CloseSend())
		drain(t, s.Recv, &outcomes)
	}

	require.Positive(t, outcomes.responses, "some nonsense streams were answered")
	require.Positive(t, outcomes.refused, "some were ended with InvalidArgument")
	require.Positive(t, outcomes.clean, "some ended when the client closed")
	t.Logf("%+v", outcomes)

	// A proper proxy is still served.
	cl, err := adstest.NewSotW(ctx, h.conn, node(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, sotwNames(t, resp))
}

// outcomes counts how nonsense streams went.
type outcomes struct{ responses, refused, clean int }

// drain reads a stream until it ends; it must end cleanly or with
// InvalidArgument, never another error.
func drain[R any](t *testing.T, recv func() (R, error), o *outcomes) {
	t.Helper()
	for {
		if _, err := recv(); err != nil {
			o.end(t, err)
			return
		}
		o.responses++
	}
}

func (o *outcomes) end(t *testing.T, err error) {
	t.Helper()
	switch {
	case errors.Is(err, io.EOF):
		o.clean++
	case status.Code(err) == codes.InvalidArgument:
		o.refused++
	default:
		require.Failf(t, "unexpected end of stream", "%v", err)
	}
}
