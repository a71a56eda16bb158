package server_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// The benchmark mesh: every proxy consumes benchOutbounds of benchServices
// services (always including svc-0, which the convergence step changes)
// and serves one inbound of its own. Outbound resources are shared between
// the proxies that use them, as the reconciler shares them.
const (
	benchServices  = 100
	benchOutbounds = 10
	benchEndpoints = 3
)

type benchMesh struct {
	listeners []*listenerv3.Listener
	routes    []*routev3.RouteConfiguration
	clusters  []*clusterv3.Cluster
	endpoints []*endpointv3.ClusterLoadAssignment
}

func newBenchMesh() *benchMesh {
	m := &benchMesh{}
	for s := range benchServices {
		name := fmt.Sprintf("svc-%d", s)
		m.listeners = append(m.listeners, &listenerv3.Listener{
			Name:    "outbound:" + name,
			Address: socket("127.0.0.1", uint32(20000+s)),
		})
		m.routes = append(m.routes, &routev3.RouteConfiguration{Name: "outbound:" + name, VirtualHosts: []*routev3.VirtualHost{{
			Name: name, Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}, Timeout: durationpb.New(15 * time.Second)}},
			}},
		}}})
		m.clusters = append(m.clusters, benchCluster(name, 5*time.Second))
		cla := &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{LoadBalancingWeight: wrapperspb.UInt32(1)}}}
		for i := range benchEndpoints {
			cla.Endpoints[0].LbEndpoints = append(cla.Endpoints[0].LbEndpoints, &endpointv3.LbEndpoint{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socket(fmt.Sprintf("10.0.%d.%d", s, i+1), 8080)}},
			})
		}
		m.endpoints = append(m.endpoints, cla)
	}
	return m
}

func benchCluster(name string, connectTimeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}},
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
}

// resources returns proxy i's resources: svc-0 and benchOutbounds-1 other
// shared services, plus its own inbound listener.
func (m *benchMesh) resources(i int) *translate.Resources {
	r := &translate.Resources{Listeners: []*listenerv3.Listener{{Name: fmt.Sprintf("inbound:10.1.%d.%d:8080", i/250, i%250), Address: socket("0.0.0.0", 8080)}}}
	for k := range benchOutbounds {
		s := 0
		if k > 0 {
			s = 1 + (i*7+k*13)%(benchServices-1)
		}
		r.Listeners = append(r.Listeners, m.listeners[s])
		r.Routes = append(r.Routes, m.routes[s])
		r.Clusters = append(r.Clusters, m.clusters[s])
		r.Endpoints = append(r.Endpoints, m.endpoints[s])
	}
	return r
}

// ackWatcher records when each proxy ACKed a version of CDS.
type ackWatcher struct {
	mu     sync.Mutex
	target string
	acked  map[atollres.Key]time.Time
	done   chan struct{}
	want   int
}

func (w *ackWatcher) expect(version string, want int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.target, w.want, w.acked, w.done = version, want, map[atollres.Key]time.Time{}, make(chan struct{})
}

func (w *ackWatcher) Acknowledged(key atollres.Key, typeURL, version string) {
	if typeURL != resource.ClusterType {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if version != w.target {
		return
	}
	if _, ok := w.acked[key]; !ok {
		w.acked[key] = now
		if len(w.acked) == w.want {
			close(w.done)
		}
	}
}

func (w *ackWatcher) Rejected(atollres.Key, string, string, string) {}

func (w *ackWatcher) wait(tb testing.TB, d time.Duration) map[atollres.Key]time.Time {
	select {
	case <-w.done:
	case <-time.After(d):
		w.mu.Lock()
		defer w.mu.Unlock()
		tb.Fatalf("only %d of %d proxies acknowledged %s within %s", len(w.acked), w.want, w.target, d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

func liveHeap() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.StackInuse
}

// BenchmarkConnectedProxies connects N proxies (SotW or delta ADS clients,
// each on its own TLS connection, in a second process) to a real data-plane
// server, and reports the control plane's live heap per connected proxy and
// the time from Publish to ACK of a change to a cluster every proxy uses.
// Run it with -benchtime=1x; N comes from ATOLL_BENCH_PROXIES (default
// 1000).
func BenchmarkConnectedProxies(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("ATOLL_BENCH_PROXIES")); err == nil && v > 0 {
		n = v
	}
	for _, protocol := range []string{"sotw", "delta"} {
		b.Run(fmt.Sprintf("%s-%d", protocol, n), func(b *testing.B) {
			for range b.N {
				benchProxies(b, protocol, n)
			}
		})
	}
}

func benchProxies(b *testing.B, protocol string, n int) {
	watch := &ackWatcher{}
	e := newEnv(b, envOptions{mutate: func(o *server.Options) {
		o.Observer = watch
		o.InsightFlushInterval = 10 * time.Second
	}})
	mesh := newBenchMesh()
	keys := make([]atollres.Key, n)
	var tokens strings.Builder
	for i := range n {
		keys[i] = atollres.Key{Mesh: "default", Name: fmt.Sprintf("dp-%d", i)}
		e.createDataplane(keys[i], dataplaneSpec(fmt.Sprintf("app-%d", i), 8080))
		fmt.Fprintf(&tokens, "%s %s\n", keys[i].String(), e.token(keys[i]))
	}
	tokenFile := filepath.Join(b.TempDir(), "tokens")
	require.NoError(b, os.WriteFile(tokenFile, []byte(tokens.String()), 0o600))

	heap0, stack0 := liveHeap()
	for i, k := range keys {
		require.NoError(b, e.cache.Publish(k, mesh.resources(i), "v1"))
	}
	heap1, _ := liveHeap()

	// Connect the proxies from a second process and wait until every one
	// has ACKed its clusters.
	watch.expect("v1."+translate.Revision, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=load", "ADDR="+e.addr, "CA_FILE="+e.caFile, "TOKENS_FILE="+tokenFile, "PROTOCOL="+protocol)
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	require.NoError(b, cmd.Start())
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	watch.wait(b, 2*time.Minute)
	connectAll := time.Since(start)
	time.Sleep(time.Second) // let the ACK of the last types and the insight writes land
	heap2, stack2 := liveHeap()

	// A change to svc-0, used by every proxy: publish it to all, time each
	// proxy's ACK from the start of its Publish.
	changed := benchCluster("svc-0", 3*time.Second)
	mesh.clusters[0] = changed
	watch.expect("v2."+translate.Revision, n)
	published := make(map[atollres.Key]time.Time, n)
	start = time.Now()
	for i, k := range keys {
		published[k] = time.Now()
		require.NoError(b, e.cache.Publish(k, mesh.resources(i), "v2"))
	}
	publishAll := time.Since(start)
	acked := watch.wait(b, 2*time.Minute)
	convergeAll := time.Since(start)
	lat := make([]time.Duration, 0, n)
	for k, t := range acked {
		lat = append(lat, t.Sub(published[k]))
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]

	perProxy := func(a, c uint64) float64 { return float64(int64(a)-int64(c)) / float64(n) }
	b.ReportMetric(perProxy(heap1, heap0), "snapshot-B/proxy")
	b.ReportMetric(perProxy(heap2, heap1), "stream-B/proxy")
	b.ReportMetric(perProxy(heap2, heap0), "heap-B/proxy")
	b.ReportMetric(perProxy(stack2, stack0), "stack-B/proxy")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	st := e.cache.Stats()
	b.Logf("%s, %d proxies on %d CPUs: connect+ACK all %s; publish to all %s, last ACK %s after the first Publish; "+
		"Publish→ACK p50 %s p99 %s; live heap per proxy: snapshot %.0f B + stream %.0f B = %.0f B (+ %.0f B goroutine stacks); "+
		"cache: %d resources, %d distinct",
		protocol, n, runtime.NumCPU(), connectAll.Round(time.Millisecond), publishAll.Round(time.Millisecond), convergeAll.Round(time.Millisecond),
		p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond),
		perProxy(heap1, heap0), perProxy(heap2, heap1), perProxy(heap2, heap0), perProxy(stack2, stack0),
		st.Resources, st.DistinctResources)
}

// loadChild connects one ADS client per line of $TOKENS_FILE ("mesh/name
// token"), each on its own TLS connection, ACKs everything, and runs until
// its standard input closes.
func loadChild() int {
	ca, err := os.ReadFile(os.Getenv("CA_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	f, err := os.Open(os.Getenv("TOKENS_FILE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	delta := os.Getenv("PROTOCOL") == "delta"
	types := []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}
	ctx := context.Background()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, line := range lines {
		id, token, _ := strings.Cut(line, " ")
		mesh, name, _ := strings.Cut(id, "/")
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := grpc.NewClient(os.Getenv("ADDR"), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			sctx := withToken(ctx, token)
			node := envoyNode(atollres.Key{Mesh: mesh, Name: name})
			if delta {
				cl, err := adstest.NewDelta(sctx, conn, node)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				for _, t := range types {
					_ = cl.Subscribe(t)
				}
				go func() {
					for {
						r, err := cl.Recv()
						if err != nil || cl.Ack(r) != nil {
							return
						}
					}
				}()
				return
			}
			cl, err := adstest.NewSotW(sctx, conn, node)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return
			}
			for _, t := range types {
				_ = cl.Subscribe(t)
			}
			go func() {
				for {
					r, err := cl.Recv()
					if err != nil || cl.Ack(r) != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
