package storetest

import (
	"fmt"
	"strings"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

func listCases() []testCase {
	return []testCase{
		{"ListEmpty", testListEmpty},
		{"ListOrdering", testListOrdering},
		{"ListMeshFilter", testListMeshFilter},
		{"ListLabelFilter", testListLabelFilter},
		{"ListNameContains", testListNameContains},
		{"ListPaging", testListPaging},
		{"ListPagingWithFilters", testListPagingWithFilters},
	}
}

// Names chosen so that byte order differs from locale collation and from
// sorting "mesh/name" strings: '-' (0x2d) < '.' (0x2e) < '/' (0x2f) <
// digits < '_' (0x5f) < letters.
var (
	trickyMeshes = []string{"ab", "a-b", "a", "b"}
	trickyNames  = []string{"y", "x_1", "x1", "x.1", "x-1", "x", "9", "10", "a-c", "ab"}
)

// requireKeys compares listed keys with the expected ones, in order.
func requireKeys(t require.TestingT, want, got []resource.Key, what string) {
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		require.FailNow(t, what+": listed keys differ (-want +got)", d)
	}
}

func testListEmpty(h *harness) {
	for _, opts := range []store.ListOptions{{}, {Mesh: "default"}, {Size: 10}, {Offset: 5, Size: 10}, {Labels: map[string]string{"a": "b"}}} {
		l := h.list(resource.DataplaneType, opts)
		require.Empty(h.t, l.Items, "List %+v of an empty store", opts)
		require.Zero(h.t, l.Total, "List %+v of an empty store: total", opts)
		require.Equal(h.t, -1, l.NextOffset, "List %+v of an empty store: next offset", opts)
	}
}

func testListOrdering(h *harness) {
	var keys []resource.Key
	// Create in an order unrelated to the expected one.
	for i := range trickyNames {
		for j := range trickyMeshes {
			m := trickyMeshes[(j+i)%len(trickyMeshes)]
			n := trickyNames[(i*3+j)%len(trickyNames)]
			k := resource.Key{Mesh: m, Name: n}
			if !containsKey(keys, k) {
				keys = append(keys, k)
				h.create(newDataplane(m, n, nil))
			}
		}
	}
	want := sortedKeys(keys)
	l := h.list(resource.DataplaneType, store.ListOptions{})
	requireKeys(h.t, want, keysOf(l.Items), "List must order by mesh, then name, comparing bytes")
	require.Equal(h.t, len(want), l.Total)
	require.Equal(h.t, -1, l.NextOffset, "a List without Size returns everything: no next page")

	var zones []resource.Key
	for _, n := range trickyNames {
		h.create(newZone(n))
		zones = append(zones, resource.Key{Name: n})
	}
	requireKeys(h.t, sortedKeys(zones), keysOf(h.list(resource.ZoneType, store.ListOptions{}).Items),
		"List of a global type must order by name, comparing bytes")
}

func containsKey(keys []resource.Key, k resource.Key) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func testListMeshFilter(h *harness) {
	var inA []resource.Key
	for _, m := range trickyMeshes {
		for _, n := range []string{"web", "api", "db"} {
			h.create(newDataplane(m, n, nil))
			if m == "a" {
				inA = append(inA, resource.Key{Mesh: m, Name: n})
			}
		}
	}
	l := h.list(resource.DataplaneType, store.ListOptions{Mesh: "a"})
	requireKeys(h.t, sortedKeys(inA), keysOf(l.Items), `List with Mesh "a" (not "a-b" or "ab")`)
	require.Equal(h.t, 3, l.Total, "total of mesh a")

	l = h.list(resource.DataplaneType, store.ListOptions{Mesh: "none"})
	require.Empty(h.t, l.Items, "List of a mesh without dataplanes")
	require.Zero(h.t, l.Total)
	require.Equal(h.t, -1, l.NextOffset)

	require.Equal(h.t, 3*len(trickyMeshes), h.list(resource.DataplaneType, store.ListOptions{}).Total, "List without Mesh covers every mesh")
}

func testListLabelFilter(h *harness) {
	type dp struct {
		mesh, name string
		labels     map[string]string
	}
	all := []dp{
		{"m1", "both", map[string]string{"app": "web", "env": "prod"}},
		{"m1", "app-only", map[string]string{"app": "web"}},
		{"m1", "env-only", map[string]string{"env": "prod"}},
		{"m1", "other-app", map[string]string{"app": "db", "env": "prod"}},
		{"m1", "no-labels", nil},
		{"m1", "extra", map[string]string{"app": "web", "env": "prod", "zone": "z1"}},
		{"m2", "both", map[string]string{"app": "web", "env": "prod"}},
		{"m1", "empty-value", map[string]string{"app": "web", "env": ""}},
	}
	for _, d := range all {
		h.create(newDataplane(d.mesh, d.name, d.labels))
	}
	k := func(m, n string) resource.Key { return resource.Key{Mesh: m, Name: n} }
	tests := []struct {
		opts store.ListOptions
		want []resource.Key
	}{
		{store.ListOptions{Labels: map[string]string{"app": "web"}},
			[]resource.Key{k("m1", "app-only"), k("m1", "both"), k("m1", "empty-value"), k("m1", "extra"), k("m2", "both")}},
		{store.ListOptions{Labels: map[string]string{"app": "web", "env": "prod"}},
			[]resource.Key{k("m1", "both"), k("m1", "extra"), k("m2", "both")}},
		{store.ListOptions{Mesh: "m1", Labels: map[string]string{"app": "web", "env": "prod"}},
			[]resource.Key{k("m1", "both"), k("m1", "extra")}},
		{store.ListOptions{Labels: map[string]string{"env": ""}},
			[]resource.Key{k("m1", "empty-value")}},
		{store.ListOptions{Labels: map[string]string{"app": "none"}}, nil},
		{store.ListOptions{Labels: map[string]string{"missing": "x"}}, nil},
		{store.ListOptions{Labels: map[string]string{}},
			sortedKeys([]resource.Key{k("m1", "both"), k("m1", "app-only"), k("m1", "env-only"), k("m1", "other-app"),
				k("m1", "no-labels"), k("m1", "extra"), k("m2", "both"), k("m1", "empty-value")})},
	}
	for _, tc := range tests {
		l := h.list(resource.DataplaneType, tc.opts)
		what := fmt.Sprintf("List with labels %v mesh %q (every label must be present with an equal value)", tc.opts.Labels, tc.opts.Mesh)
		requireKeys(h.t, tc.want, keysOf(l.Items), what)
		require.Equal(h.t, len(tc.want), l.Total, "%s: total", what)
	}
}

func testListNameContains(h *harness) {
	names := []string{"web-1", "web-2", "api-web", "api", "db", "webhook"}
	for _, n := range names {
		h.create(newDataplane("m1", n, map[string]string{"kind": strings.SplitN(n, "-", 2)[0]}))
	}
	h.create(newDataplane("m2", "web-1", nil))
	k := func(m, n string) resource.Key { return resource.Key{Mesh: m, Name: n} }

	l := h.list(resource.DataplaneType, store.ListOptions{NameContains: "web"})
	requireKeys(h.t, []resource.Key{k("m1", "api-web"), k("m1", "web-1"), k("m1", "web-2"), k("m1", "webhook"), k("m2", "web-1")},
		keysOf(l.Items), `List with NameContains "web"`)
	require.Equal(h.t, 5, l.Total)

	l = h.list(resource.DataplaneType, store.ListOptions{Mesh: "m1", NameContains: "web-", Labels: map[string]string{"kind": "web"}})
	requireKeys(h.t, []resource.Key{k("m1", "web-1"), k("m1", "web-2")}, keysOf(l.Items),
		`List with NameContains "web-", label kind=web and mesh m1`)

	l = h.list(resource.DataplaneType, store.ListOptions{NameContains: "%"})
	require.Zero(h.t, l.Total, `NameContains is literal text: "%%" must match nothing`)
	l = h.list(resource.DataplaneType, store.ListOptions{NameContains: "_"})
	require.Zero(h.t, l.Total, `NameContains is literal text: "_" must match nothing`)
}

// walk lists every page of size from offset 0, following NextOffset, and
// checks Total and NextOffset on each page.
func walk(h *harness, typ string, opts store.ListOptions, wantTotal int) []resource.Key {
	h.t.Helper()
	var got []resource.Key
	opts.Offset = 0
	for page := 0; ; page++ {
		require.Less(h.t, page, wantTotal+2, "paging does not end: NextOffset keeps pointing to more pages")
		l := h.list(typ, opts)
		require.Equal(h.t, wantTotal, l.Total, "page at offset %d: Total must count every match across pages", opts.Offset)
		require.LessOrEqual(h.t, len(l.Items), opts.Size, "page at offset %d holds more than Size items", opts.Offset)
		got = append(got, keysOf(l.Items)...)
		if l.NextOffset != -1 {
			require.Less(h.t, l.NextOffset, wantTotal, "page at offset %d ends at the last item, so NextOffset must be -1", opts.Offset)
		}
		if l.NextOffset == -1 {
			require.Equal(h.t, wantTotal, opts.Offset+len(l.Items), "NextOffset is -1 before the last item (offset %d)", opts.Offset)
			return got
		}
		require.Len(h.t, l.Items, opts.Size, "a page before the last one (offset %d) must be full", opts.Offset)
		require.Equal(h.t, opts.Offset+opts.Size, l.NextOffset, "NextOffset of the page at offset %d", opts.Offset)
		opts.Offset = l.NextOffset
	}
}

func testListPaging(h *harness) {
	var keys []resource.Key
	for i := range 23 {
		m := []string{"m1", "m2", "m3"}[i%3]
		n := fmt.Sprintf("dp-%02d", (i*7)%23)
		h.create(newDataplane(m, n, nil))
		keys = append(keys, resource.Key{Mesh: m, Name: n})
	}
	all := sortedKeys(keys)

	for _, size := range []int{1, 5, 7, 22, 23, 24, 100} {
		got := walk(h, resource.DataplaneType, store.ListOptions{Size: size}, len(all))
		requireKeys(h.t, all, got, fmt.Sprintf("walking pages of %d must yield every item once, in order", size))
	}

	l := h.list(resource.DataplaneType, store.ListOptions{Offset: 20})
	requireKeys(h.t, all[20:], keysOf(l.Items), "Size 0 returns everything from Offset")
	require.Equal(h.t, 23, l.Total)
	require.Equal(h.t, -1, l.NextOffset)

	l = h.list(resource.DataplaneType, store.ListOptions{Offset: 20, Size: 3})
	requireKeys(h.t, all[20:], keysOf(l.Items), "page Offset 20 Size 3 (exactly the last items)")
	require.Equal(h.t, -1, l.NextOffset, "a page ending exactly at the last item has no next page")

	l = h.list(resource.DataplaneType, store.ListOptions{Offset: 10, Size: 5})
	requireKeys(h.t, all[10:15], keysOf(l.Items), "page Offset 10 Size 5")
	require.Equal(h.t, 15, l.NextOffset)

	for _, off := range []int{23, 24, 1000} {
		l = h.list(resource.DataplaneType, store.ListOptions{Offset: off, Size: 5})
		require.Empty(h.t, l.Items, "Offset %d is past the end", off)
		require.Equal(h.t, 23, l.Total, "Offset %d past the end still reports the total", off)
		require.Equal(h.t, -1, l.NextOffset, "Offset %d past the end has no next page", off)
	}
}

func testListPagingWithFilters(h *harness) {
	var want []resource.Key
	for i := range 30 {
		m := []string{"m1", "m2"}[i%2]
		n := fmt.Sprintf("svc-%02d", i)
		// Alternate meshes on i and labels on i/2, so both meshes get both labels.
		labels := map[string]string{"parity": "even"}
		if (i/2)%2 == 1 {
			labels["parity"] = "odd"
		}
		h.create(newDataplane(m, n, labels))
		if m == "m1" && labels["parity"] == "odd" {
			want = append(want, resource.Key{Mesh: m, Name: n})
		}
	}
	opts := store.ListOptions{Mesh: "m1", Labels: map[string]string{"parity": "odd"}, Size: 4}
	got := walk(h, resource.DataplaneType, opts, len(want))
	requireKeys(h.t, sortedKeys(want), got, "walking filtered pages must yield every match once, in order")

	got = walk(h, resource.DataplaneType, store.ListOptions{Mesh: "m2", Size: 4}, 15)
	require.Len(h.t, got, 15)
	for _, k := range got {
		require.Equal(h.t, "m2", k.Mesh, "paging with a mesh filter must stay in the mesh")
	}
}
