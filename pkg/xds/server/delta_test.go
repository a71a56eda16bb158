package server_test

import (
	"context"
	"sort"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

func edsCluster(name string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout: durationpb.New(timeout),
	}
}

func names(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var out []string
	for _, r := range resp.GetResources() {
		out = append(out, r.GetName())
	}
	sort.Strings(out)
	return out
}

// TestDeltaClient drives the server as Envoy does: delta ADS over TLS with
// the token as stream metadata, wildcard CDS and named EDS. Each update
// carries only what changed; removals are announced; the insight counts it.
func TestDeltaClient(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	a, b := edsCluster("a", time.Second), edsCluster("b", time.Second)
	claA, claB := &endpointv3.ClusterLoadAssignment{ClusterName: "a"}, &endpointv3.ClusterLoadAssignment{ClusterName: "b"}
	require.NoError(t, e.cache.Publish(web1, &translate.Resources{
		Clusters: []*clusterv3.Cluster{a, b}, Endpoints: []*endpointv3.ClusterLoadAssignment{claA, claB},
	}, "v1"))

	ctx, cancel := context.WithTimeout(withToken(e.ctx, e.token(web1)), 10*time.Second)
	defer cancel()
	cl, err := adstest.NewDelta(ctx, e.grpcConn(), envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, names(resp))
	require.NoError(t, cl.Ack(resp))
	require.NoError(t, cl.Subscribe(resource.EndpointType, "a", "b"))
	resp, err = cl.Recv()
	require.NoError(t, err)
	require.Equal(t, resource.EndpointType, resp.GetTypeUrl())
	require.Equal(t, []string{"a", "b"}, names(resp))
	require.NoError(t, cl.Ack(resp))

	// Only b changes.
	require.NoError(t, e.cache.Publish(web1, &translate.Resources{
		Clusters: []*clusterv3.Cluster{a, edsCluster("b", 2*time.Second)}, Endpoints: []*endpointv3.ClusterLoadAssignment{claA, claB},
	}, "v2"))
	resp, err = cl.Recv()
	require.NoError(t, err)
	require.Equal(t, resource.ClusterType, resp.GetTypeUrl())
	require.Equal(t, []string{"b"}, names(resp), "only the changed cluster is sent")
	require.NoError(t, cl.Ack(resp))

	// a goes away.
	require.NoError(t, e.cache.Publish(web1, &translate.Resources{
		Clusters: []*clusterv3.Cluster{edsCluster("b", 2*time.Second)}, Endpoints: []*endpointv3.ClusterLoadAssignment{claB},
	}, "v3"))
	removed := map[string][]string{}
	for range 2 {
		resp, err = cl.Recv()
		require.NoError(t, err)
		require.Empty(t, resp.GetResources())
		removed[resp.GetTypeUrl()] = resp.GetRemovedResources()
		require.NoError(t, cl.Ack(resp))
	}
	require.Equal(t, map[string][]string{resource.ClusterType: {"a"}, resource.EndpointType: {"a"}}, removed)

	require.Eventually(t, func() bool {
		in := e.insight(web1)
		if in == nil || len(in.Subscriptions) != 1 {
			return false
		}
		st := in.Subscriptions[0].Status
		return st.CDS.ResponsesSent == 3 && st.CDS.ResponsesAcknowledged == 3 && st.EDS.ResponsesAcknowledged == 2 && st.Total.ResponsesSent == 5
	}, 5*time.Second, 20*time.Millisecond)
	sub := e.insight(web1).Subscriptions[0]
	require.Equal(t, "1.36.2", sub.Version.Envoy.Version)
	require.Equal(t, "0.1.0", sub.Version.KumaDp.Version)
	require.Contains(t, sub.ID, "delta")
	require.Equal(t, 3.0, e.counter("atoll_xds_responses_sent_total", "type", "cds", "protocol", "delta"))
	require.Equal(t, 1.0, e.counter("atoll_xds_streams", "protocol", "delta"))
	require.Equal(t, []string{"connected default/web-1 envoy"}, e.tracker.Events())
}

// sdsCertificates is a CertificateIssuer that also reports the certificate
// it delivered over SDS, as the identity cache does.
type sdsCertificates struct{ notAfter, issued time.Time }

func (s sdsCertificates) WorkloadCertificate(context.Context, atollres.Key) (dpapi.CertificateResponse, error) {
	return dpapi.CertificateResponse{}, server.ErrNoIdentity
}

func (s sdsCertificates) CurrentCertificate(atollres.Key) (time.Time, time.Time, string, bool) {
	return s.notAfter, s.issued, "ca-1", true
}

// TestInsightShowsTheCertificateOfAnEnvoyProxy: an Envoy proxy gets its
// certificate over SDS, not from /certificate; its insight still says when
// that certificate expires and which backend issued it.
func TestInsightShowsTheCertificateOfAnEnvoyProxy(t *testing.T) {
	certs := sdsCertificates{notAfter: time.Now().Add(24 * time.Hour).Truncate(time.Second).UTC(), issued: time.Now().Truncate(time.Second).UTC()}
	e := newEnv(t, envOptions{mutate: func(o *server.Options) { o.Certificates = certs }})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	require.NoError(t, e.cache.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{edsCluster("a", time.Second)}}, "v1"))
	ctx, cancel := context.WithTimeout(withToken(e.ctx, e.token(web1)), 10*time.Second)
	defer cancel()
	cl, err := adstest.NewDelta(ctx, e.grpcConn(), envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	resp, err := cl.Recv()
	require.NoError(t, err)
	require.NoError(t, cl.Ack(resp))
	require.Eventually(t, func() bool {
		in := e.insight(web1)
		return in != nil && in.MTLS != nil && in.MTLS.CertificateExpirationTime != nil
	}, 5*time.Second, 20*time.Millisecond)
	in := e.insight(web1)
	require.True(t, certs.notAfter.Equal(*in.MTLS.CertificateExpirationTime))
	require.True(t, certs.issued.Equal(*in.MTLS.LastCertificateRegeneration))
	require.Equal(t, "ca-1", in.MTLS.IssuedBackend)
}
