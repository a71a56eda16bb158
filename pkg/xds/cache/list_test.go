package cache_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// clusterList returns the clusters of key's snapshot: names and versions.
func clusterList(t *testing.T, c *cache.Cache, key atollres.Key) (*cache.List, map[string]string) {
	t.Helper()
	w := c.Watch(key.String(), func() {})
	defer w.Close()
	l := w.Snapshot().List(cache.Clusters)
	out := map[string]string{}
	for i := range l.Len() {
		e := l.Entry(i)
		require.NotNil(t, e)
		require.Equal(t, l.Name(i), e.Name())
		out[l.Name(i)] = e.Version()
	}
	return l, out
}

// TestPublishRecordsTheDifference publishes random changes — resources
// added, removed, changed, carried over as the same message or as an equal
// copy, in or out of order — and checks each list against what was
// published: sorted names, the versions of their content, the recorded
// difference from the previous list, and the type's version moving exactly
// when the content does. Forgetting the proxy releases everything.
func TestPublishRecordsTheDifference(t *testing.T) {
	c := newCache(t)
	rng := rand.New(rand.NewPCG(7, 7))
	cur := map[string]*clusterv3.Cluster{}
	variants := map[string]*clusterv3.Cluster{}
	var prevList *cache.List
	prevVersions := map[string]string{}
	for step := range 300 {
		for i := range 40 {
			n := fmt.Sprintf("c%02d", i)
			switch rng.IntN(10) {
			case 0:
				delete(cur, n)
			case 1, 2:
				v := rng.IntN(3)
				key := fmt.Sprint(n, v)
				if variants[key] == nil || rng.IntN(2) == 0 {
					variants[key] = cluster(n, time.Duration(v+1)*time.Second) // an equal copy
				}
				cur[n] = variants[key]
			}
		}
		list := slices.Collect(maps.Values(cur))
		if rng.IntN(4) > 0 { // mostly sorted, as translate publishes
			slices.SortFunc(list, func(a, b *clusterv3.Cluster) int { return cmpString(a.GetName(), b.GetName()) })
		}
		require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: list}, fmt.Sprint("v", step)))

		l, versions := clusterList(t, c, web1)
		var names []string
		for i := range l.Len() {
			names = append(names, l.Name(i))
		}
		require.Equal(t, slices.Sorted(maps.Keys(cur)), names, "step %d: the list is sorted by name", step)
		if prevList == nil {
			prevList, prevVersions = l, versions
			continue
		}
		var wantChanged, wantRemoved []string
		for _, n := range slices.Sorted(maps.Keys(versions)) {
			if prevVersions[n] != versions[n] {
				wantChanged = append(wantChanged, n)
			}
		}
		for _, n := range slices.Sorted(maps.Keys(prevVersions)) {
			if _, ok := versions[n]; !ok {
				wantRemoved = append(wantRemoved, n)
			}
		}
		if l == prevList {
			require.Empty(t, wantChanged, "step %d", step)
			require.Empty(t, wantRemoved, "step %d", step)
		} else {
			changed, removed, ok := l.Changes(prevList)
			require.True(t, ok, "step %d: a publish records its difference", step)
			var gotChanged []string
			for i := range changed {
				gotChanged = append(gotChanged, l.Name(i))
			}
			require.Equal(t, wantChanged, gotChanged, "step %d", step)
			require.Equal(t, wantRemoved, removed, "step %d", step)
			_, _, ok = l.Changes(l)
			require.False(t, ok, "a list records its difference from its predecessor only")
		}
		contentChanged := len(wantChanged)+len(wantRemoved) > 0
		require.Equal(t, contentChanged, l.Version() != prevList.Version(), "step %d: the version moves with the content", step)
		prevList, prevVersions = l, versions
	}
	c.Forget(web1)
	require.Equal(t, cache.Stats{}, c.Stats())
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestPublishChecksNames: resources need a name, unique per type; lists out
// of order are sorted.
func TestPublishChecksNames(t *testing.T) {
	c := newCache(t)
	err := c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("a", time.Second), {}}}, "v")
	require.ErrorContains(t, err, "a type.googleapis.com/envoy.config.cluster.v3.Cluster resource has no name")
	require.Equal(t, cache.Stats{}, c.Stats(), "a rejected publish holds nothing")

	require.NoError(t, c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("b", time.Second), cluster("a", time.Second)}}, "v1"))
	l, _ := clusterList(t, c, web1)
	require.Equal(t, []string{"a", "b"}, []string{l.Name(0), l.Name(1)})
	require.Equal(t, "v1."+translate.Revision, c.Version(web1, resource.ClusterType))

	// A failing publish leaves the last good snapshot in place.
	err = c.Publish(web1, &translate.Resources{Clusters: []*clusterv3.Cluster{cluster("c", time.Second), cluster("c", 2*time.Second)}}, "v2")
	require.ErrorContains(t, err, `two type.googleapis.com/envoy.config.cluster.v3.Cluster resources are named "c"`)
	require.Equal(t, "v1."+translate.Revision, c.Version(web1, resource.ClusterType))
	require.Equal(t, cache.Stats{Proxies: 1, Resources: 2, DistinctResources: 2}, c.Stats())
}

// TestPublishesInParallel: proxies publish at once, sharing messages, while
// streams watch; every proxy ends up with its own last publish and every
// watcher heard of it.
func TestPublishesInParallel(t *testing.T) {
	c := newCache(t)
	shared := []*clusterv3.Cluster{cluster("a", time.Second), cluster("b", time.Second)}
	keys := make([]atollres.Key, 16)
	notified := make([]chan struct{}, len(keys))
	for i := range keys {
		keys[i] = atollres.Key{Mesh: "default", Name: fmt.Sprint("dp-", i)}
		notified[i] = make(chan struct{}, 1)
		w := c.Watch(keys[i].String(), func() {
			select {
			case notified[i] <- struct{}{}:
			default:
			}
		})
		t.Cleanup(w.Close)
	}
	done := make(chan error)
	for i, k := range keys {
		go func() {
			var err error
			for v := range 50 {
				own := cluster(fmt.Sprint("own-", i), time.Duration(v+1)*time.Millisecond)
				err = c.Publish(k, &translate.Resources{Clusters: []*clusterv3.Cluster{shared[0], shared[1], own}}, fmt.Sprint("v", v))
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range keys {
		require.NoError(t, <-done)
	}
	for i, k := range keys {
		require.Equal(t, "v49."+translate.Revision, c.Version(k, resource.ClusterType))
		select {
		case <-notified[i]:
		default:
			t.Fatalf("%s was not notified", k)
		}
	}
	require.Equal(t, cache.Stats{Proxies: 16, Resources: 48, DistinctResources: 18}, c.Stats())
}
