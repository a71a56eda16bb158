package ads

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

var web1 = resource.Key{Mesh: "default", Name: "web-1"}

func node(key resource.Key) *corev3.Node { return &corev3.Node{Id: key.String()} }

// harness is the ADS server over a cache on loopback, with hooks that
// record what streams do and the responses they sent, decoded.
type harness struct {
	t     *testing.T
	cache *cache.Cache
	rec   *recorder
	conn  *grpc.ClientConn
	addr  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	c, err := cache.New(cache.Options{})
	require.NoError(t, err)
	rec := &recorder{refuse: map[string]error{}}
	srv, err := New(Options{Cache: c, Hooks: rec})
	require.NoError(t, err)
	gs := grpc.NewServer(ServerOption(), grpc.StreamInterceptor(rec.intercept))
	srv.Register(gs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &harness{t: t, cache: c, rec: rec, conn: conn, addr: lis.Addr().String()}
}

func (h *harness) publish(key resource.Key, res *translate.Resources, version string) {
	h.t.Helper()
	require.NoError(h.t, h.cache.Publish(key, res, version))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recorder implements Hooks: it admits streams for the node they name
// (unless refuse says otherwise) and records events.
type recorder struct {
	mu     sync.Mutex
	events []string
	sotw   []*discoveryv3.DiscoveryResponse
	delta  []*discoveryv3.DeltaDiscoveryResponse
	refuse map[string]error
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

// Events returns the recorded events that start with prefix.
func (r *recorder) Events(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) SotW() []*discoveryv3.DiscoveryResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sotw)
}

func (r *recorder) Delta() []*discoveryv3.DeltaDiscoveryResponse {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.delta)
}

func (r *recorder) Open(_ context.Context, info StreamInfo) StreamHooks {
	return &recStream{r: r, info: info}
}

// intercept decodes every response the server sends, as a client would.
func (r *recorder) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &capture{ServerStream: ss, r: r, delta: strings.HasSuffix(info.FullMethod, "DeltaAggregatedResources")})
}

type capture struct {
	grpc.ServerStream
	r     *recorder
	delta bool
}

func (c *capture) SendMsg(m any) error {
	if resp, ok := m.(*response); ok {
		b := resp.bufs.Materialize()
		c.r.mu.Lock()
		if c.delta {
			var d discoveryv3.DeltaDiscoveryResponse
			if err := proto.Unmarshal(b, &d); err != nil {
				panic(err)
			}
			c.r.delta = append(c.r.delta, &d)
		} else {
			var s discoveryv3.DiscoveryResponse
			if err := proto.Unmarshal(b, &s); err != nil {
				panic(err)
			}
			c.r.sotw = append(c.r.sotw, &s)
		}
		c.r.mu.Unlock()
	}
	return c.ServerStream.SendMsg(m)
}

type recStream struct {
	r    *recorder
	info StreamInfo
	id   string
}

func (s *recStream) Admit(n *corev3.Node) (string, error) {
	s.r.mu.Lock()
	err := s.r.refuse[n.GetId()]
	s.r.mu.Unlock()
	if err != nil {
		s.r.add("refused %s", n.GetId())
		return "", err
	}
	s.id = n.GetId()
	s.r.add("admitted %s", s.id)
	return s.id, nil
}

func (s *recStream) Check(n *corev3.Node) error {
	if n.GetId() != "" && n.GetId() != s.id {
		return fmt.Errorf("node %q switched to %q", s.id, n.GetId())
	}
	return nil
}

func (s *recStream) Sent(typeURL, version string) {
	s.r.add("sent %s %s %s", s.id, short(typeURL), version)
}

func (s *recStream) Acknowledged(typeURL, version string) {
	s.r.add("ack %s %s %s", s.id, short(typeURL), version)
}

func (s *recStream) Rejected(typeURL, version, message string) {
	s.r.add("nack %s %s %s: %s", s.id, short(typeURL), version, message)
}

func (s *recStream) Closed() { s.r.add("closed %s", s.id) }

func short(typeURL string) string {
	i := strings.LastIndex(typeURL, ".")
	return typeURL[i+1:]
}

// Resources for tests.

func cluster(name string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		ConnectTimeout:       durationpb.New(timeout),
	}
}

func cla(name string, port uint32) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
		LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
			}}},
		}}}},
	}}}
}

func listener(name string) *listenerv3.Listener { return &listenerv3.Listener{Name: name} }

func route(name, clusterName string) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: clusterName}}},
		}},
	}}}
}

func secret(name string) *tlsv3.Secret { return &tlsv3.Secret{Name: name} }

// sotwNames returns the names of a SotW response's resources.
func sotwNames(t testing.TB, resp *discoveryv3.DiscoveryResponse) []string {
	t.Helper()
	var out []string
	for _, a := range resp.GetResources() {
		m, err := a.UnmarshalNew()
		require.NoError(t, err)
		out = append(out, resourceName(m))
	}
	return out
}

// deltaNames returns the names of a delta response's resources.
func deltaNames(resp *discoveryv3.DeltaDiscoveryResponse) []string {
	var out []string
	for _, r := range resp.GetResources() {
		out = append(out, r.GetName())
	}
	return out
}

func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case *clusterv3.Cluster:
		return r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return r.GetClusterName()
	case *listenerv3.Listener:
		return r.GetName()
	case *routev3.RouteConfiguration:
		return r.GetName()
	case *tlsv3.Secret:
		return r.GetName()
	}
	return ""
}

// materialize is mem.BufferSlice.Materialize, for tests of encodings.
func materialize(b mem.Buffer) []byte { return append([]byte(nil), b.ReadOnlyData()...) }

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
