package cache_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/stretchr/testify/require"

	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// sharedMesh builds n proxies' resources: each proxy has its own listener
// and ten of 100 shared clusters with their load assignments.
func sharedMesh(n int) []*translate.Resources {
	var clusters []*clusterv3.Cluster
	var clas []*endpointv3.ClusterLoadAssignment
	for s := range 100 {
		clusters = append(clusters, cluster(fmt.Sprintf("svc-%d", s), time.Second))
		clas = append(clas, cla(fmt.Sprintf("svc-%d", s)))
	}
	out := make([]*translate.Resources, n)
	for i := range n {
		r := &translate.Resources{Listeners: []*listenerv3.Listener{listener(fmt.Sprintf("inbound-%d", i))}}
		for k := range 10 {
			s := (i*7 + k*13) % 100
			r.Clusters = append(r.Clusters, clusters[s])
			r.Endpoints = append(r.Endpoints, clas[s])
		}
		out[i] = r
	}
	return out
}

// BenchmarkPublish measures a Publish (snapshot building, sharing, watch
// notification) and the heap a published proxy retains.
func BenchmarkPublish(b *testing.B) {
	const proxies = 1000
	c, err := newCacheB()
	require.NoError(b, err)
	res := sharedMesh(proxies)
	keys := make([]atollres.Key, proxies)
	for i := range keys {
		keys[i] = atollres.Key{Mesh: "default", Name: fmt.Sprintf("dp-%d", i)}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, k := range keys {
		require.NoError(b, c.Publish(k, res[i], "v0"))
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := float64(after.HeapAlloc-before.HeapAlloc) / proxies
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Publish(keys[i%proxies], res[i%proxies], fmt.Sprintf("v%d", i)); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(retained, "retained-B/proxy")
}
