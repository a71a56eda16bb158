package memory_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, reg *resource.Registry) store.ResourceStore {
		return memory.New(reg)
	})
}

func registry(t testing.TB) *resource.Registry {
	t.Helper()
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(t, err)
	return reg
}

func newDataplane(mesh, name string, labels map[string]string) *resource.Resource {
	return &resource.Resource{
		Type: resource.DataplaneType,
		Meta: resource.Meta{Name: name, Mesh: mesh, Labels: labels},
		Spec: &dataplane.Spec{Networking: dataplane.Networking{
			Address: "10.0.0.1",
			Inbound: []dataplane.Inbound{{
				Port: 8080, ServicePort: 80,
				Tags: map[string]string{dataplane.ServiceTag: "backend", dataplane.ProtocolTag: "http"},
			}},
		}},
	}
}

func TestClockStampsTimesInUTC(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, zone)
	s := memory.New(registry(t), memory.WithClock(func() time.Time { return now }))

	created, err := s.Create(t.Context(), newDataplane("default", "dp-1", nil))
	require.NoError(t, err)
	require.Equal(t, now.UTC(), created.Meta.CreationTime, "creation time comes from the clock, in UTC")
	require.Equal(t, now.UTC(), created.Meta.ModificationTime)

	first := now
	now = now.Add(time.Minute)
	next, err := registry(t).Clone(created)
	require.NoError(t, err)
	updated, err := s.Update(t.Context(), next)
	require.NoError(t, err)
	require.Equal(t, first.UTC(), updated.Meta.CreationTime, "Update keeps the creation time")
	require.Equal(t, now.UTC(), updated.Meta.ModificationTime, "Update stamps the modification time")
}

func TestVersionsAreIncreasingDecimals(t *testing.T) {
	s := memory.New(registry(t))
	last := uint64(0)
	for i := range 20 {
		r, err := s.Create(t.Context(), newDataplane("default", fmt.Sprintf("dp-%d", i), nil))
		require.NoError(t, err)
		v, err := strconv.ParseUint(r.Meta.Version, 10, 64)
		require.NoError(t, err, "version %q is a decimal number", r.Meta.Version)
		require.Greater(t, v, last, "versions increase with every write")
		last = v
	}
}

func TestNegativePagingIsRejected(t *testing.T) {
	s := memory.New(registry(t))
	_, err := s.List(t.Context(), resource.DataplaneType, store.ListOptions{Offset: -1})
	require.ErrorContains(t, err, "must not be negative")
	_, err = s.List(t.Context(), resource.DataplaneType, store.ListOptions{Size: -1})
	require.ErrorContains(t, err, "must not be negative")
}

func TestKeyMustFitScope(t *testing.T) {
	s := memory.New(registry(t))
	_, err := s.Create(t.Context(), newDataplane("", "dp-1", nil))
	require.ErrorContains(t, err, "mesh must be set")
	_, err = s.Create(t.Context(), newDataplane("default", "", nil))
	require.ErrorContains(t, err, "name must not be empty")
	m := newDataplane("default", "m", nil)
	m.Type, m.Spec = resource.ZoneType, nil
	_, err = s.Create(t.Context(), m)
	require.ErrorContains(t, err, "mesh must be empty")
}

func TestCancelledContextFailsFast(t *testing.T) {
	s := memory.New(registry(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Create(ctx, newDataplane("default", "dp-1", nil))
	require.ErrorIs(t, err, ctx.Err())
	_, err = s.Get(t.Context(), resource.DataplaneType, resource.Key{Mesh: "default", Name: "dp-1"})
	require.ErrorIs(t, err, store.ErrNotFound, "a cancelled Create writes nothing")
}

func TestSlowWatcherGetsResync(t *testing.T) {
	s := memory.New(registry(t), memory.WithEventQueueSize(2))
	ch := s.Watch(t.Context())
	for i := range 10 {
		_, err := s.Create(t.Context(), newDataplane("default", fmt.Sprintf("dp-%d", i), nil))
		require.NoError(t, err, "writes never wait for watchers")
	}
	var got []store.Event
	for quiet := false; !quiet; {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-time.After(200 * time.Millisecond):
			quiet = true
		}
	}
	require.Contains(t, got, store.Event{Kind: store.Resync}, "an overflowing watcher is told to resync")
	last := got[len(got)-1]
	require.True(t, last.Kind == store.Resync || last.Key.Name == "dp-9",
		"the last write is either delivered or covered by a trailing Resync; got %v", got)
}

// TestLargeListsMatchBruteForce checks List's fast paths (offset skipping,
// per-mesh totals) and filtered scans on enough resources to span many index
// chunks, against filtering and sorting everything by hand.
func TestLargeListsMatchBruteForce(t *testing.T) {
	s := memory.New(registry(t))
	rng := rand.New(rand.NewPCG(7, 7))
	var all []*resource.Resource
	for i := range 6000 {
		mesh := fmt.Sprintf("mesh-%d", rng.IntN(5))
		labels := map[string]string{"app": fmt.Sprintf("app-%d", rng.IntN(4)), "env": []string{"dev", "prod"}[rng.IntN(2)]}
		r, err := s.Create(t.Context(), newDataplane(mesh, fmt.Sprintf("dp-%05d", rng.IntN(1_000_000)*10+i%10), labels))
		if err != nil {
			require.ErrorIs(t, err, store.ErrAlreadyExists)
			continue
		}
		all = append(all, r)
	}
	for _, r := range all[:1000] { // deletions leave partly empty chunks behind
		require.NoError(t, s.Delete(t.Context(), r.Type, r.Key(), store.DeleteOptions{}))
	}
	require.NoError(t, s.Delete(t.Context(), resource.DataplaneType, all[1000].Key(), store.DeleteOptions{}))
	all = all[1001:]
	slices.SortFunc(all, func(a, b *resource.Resource) int {
		return strings.Compare(a.Meta.Mesh+"\x00"+a.Meta.Name, b.Meta.Mesh+"\x00"+b.Meta.Name)
	})

	for _, opts := range []store.ListOptions{
		{}, {Size: 100}, {Offset: 777, Size: 100}, {Offset: 4990, Size: 100}, {Offset: 2500},
		{Mesh: "mesh-3"}, {Mesh: "mesh-3", Offset: 513, Size: 50}, {Mesh: "mesh-0", Offset: 900, Size: 200},
		{Mesh: "mesh-9", Size: 10},
		{Labels: map[string]string{"app": "app-1"}, Offset: 100, Size: 100},
		{Mesh: "mesh-2", Labels: map[string]string{"app": "app-2", "env": "prod"}, Size: 20},
		{NameContains: "7", Offset: 50, Size: 25},
	} {
		var match []*resource.Resource
		for _, r := range all {
			if opts.Mesh != "" && r.Meta.Mesh != opts.Mesh {
				continue
			}
			if opts.NameContains != "" && !strings.Contains(r.Meta.Name, opts.NameContains) {
				continue
			}
			ok := true
			for k, v := range opts.Labels {
				ok = ok && r.Meta.Labels[k] == v
			}
			if ok {
				match = append(match, r)
			}
		}
		want := match[min(opts.Offset, len(match)):]
		if opts.Size > 0 {
			want = want[:min(opts.Size, len(want))]
		}
		got, err := s.List(t.Context(), resource.DataplaneType, opts)
		require.NoError(t, err)
		require.Equal(t, len(match), got.Total, "List %+v: total", opts)
		require.Empty(t, cmp.Diff(keys(want), keys(got.Items)), "List %+v: items (-want +got)", opts)
	}
}

func keys(rs []*resource.Resource) []resource.Key {
	out := make([]resource.Key, len(rs))
	for i, r := range rs {
		out[i] = r.Key()
	}
	return out
}
