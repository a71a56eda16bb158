// Package storetest is the contract suite every store.ResourceStore backend
// runs (memory, PostgreSQL, Kubernetes). A backend's test calls Run with a
// constructor; the suite registers the core types plus PolicyType, and each
// subtest gets a fresh, empty store.
//
// What the suite pins down beyond store.go's comments, so that backends
// agree: List orders by mesh then name comparing bytes (PostgreSQL needs
// COLLATE "C"); times come back in UTC and a Get returns exactly the times
// and version the write returned; an Update with an empty version is a
// conflict; re-creating a deleted resource yields a version different from
// the old one; Watch delivers every write that starts after Watch returns;
// failed writes publish nothing.
package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// EventTimeout bounds how long the suite waits for one expected event.
const EventTimeout = 10 * time.Second

// Run checks a backend against the ResourceStore contract. Subtests run one
// after another; each calls newStore once for a new, empty store of the
// types in reg (the backend registers its cleanup with t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T, reg *resource.Registry) store.ResourceStore) {
	reg, err := resource.NewRegistry(Descriptors()...)
	require.NoError(t, err, "building the suite's registry")
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t, reg)
			require.NotNil(t, s, "newStore returned nil")
			c.run(&harness{t: t, s: s, reg: reg, ctx: t.Context()})
		})
	}
}

type testCase struct {
	name string
	run  func(h *harness)
}

func cases() []testCase {
	return slices.Concat(crudCases(), meshCases(), listCases(), watchCases(), concurrencyCases())
}

// harness is one subtest's store with helpers that fail with readable messages.
type harness struct {
	t   *testing.T
	s   store.ResourceStore
	reg *resource.Registry
	ctx context.Context
}

func (h *harness) create(res *resource.Resource) *resource.Resource {
	h.t.Helper()
	out, err := h.s.Create(h.ctx, res)
	require.NoError(h.t, err, "Create %s %q", res.Type, res.Key())
	require.NotNil(h.t, out, "Create %s %q returned no resource", res.Type, res.Key())
	return out
}

func (h *harness) update(res *resource.Resource) *resource.Resource {
	h.t.Helper()
	out, err := h.s.Update(h.ctx, res)
	require.NoError(h.t, err, "Update %s %q at version %q", res.Type, res.Key(), res.Meta.Version)
	require.NotNil(h.t, out, "Update %s %q returned no resource", res.Type, res.Key())
	return out
}

func (h *harness) get(typ string, key resource.Key) *resource.Resource {
	h.t.Helper()
	out, err := h.s.Get(h.ctx, typ, key)
	require.NoError(h.t, err, "Get %s %q", typ, key)
	require.NotNil(h.t, out, "Get %s %q returned no resource", typ, key)
	return out
}

func (h *harness) delete(typ string, key resource.Key) {
	h.t.Helper()
	require.NoError(h.t, h.s.Delete(h.ctx, typ, key, store.DeleteOptions{}), "Delete %s %q", typ, key)
}

func (h *harness) list(typ string, opts store.ListOptions) store.ListResult {
	h.t.Helper()
	out, err := h.s.List(h.ctx, typ, opts)
	require.NoError(h.t, err, "List %s %+v", typ, opts)
	return out
}

// clone returns a copy of a stored resource that the test may change.
func (h *harness) clone(res *resource.Resource) *resource.Resource {
	h.t.Helper()
	c, err := h.reg.Clone(res)
	require.NoError(h.t, err)
	return c
}

// requireErr checks that err matches the sentinel want with errors.Is.
func requireErr(t *testing.T, err, want error, what string) {
	t.Helper()
	require.Error(t, err, "%s: expected an error matching %q, got success", what, want)
	require.True(t, errors.Is(err, want), "%s: expected an error matching %q (errors.Is), got %q", what, want, err)
}

// requireNotFound checks that Get reports ErrNotFound for typ/key.
func (h *harness) requireNotFound(typ string, key resource.Key) {
	h.t.Helper()
	_, err := h.s.Get(h.ctx, typ, key)
	requireErr(h.t, err, store.ErrNotFound, "Get "+typ+" "+key.String())
}

// cmpOpts treat nil and empty maps and slices alike: backends may not keep
// the difference.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

// requireContent checks that got carries what the caller wrote in want:
// type, key, labels, spec and status (server-owned fields are not compared).
func requireContent(t *testing.T, want, got *resource.Resource, what string) {
	t.Helper()
	require.Equal(t, want.Type, got.Type, "%s: type", what)
	require.Equal(t, want.Key(), got.Key(), "%s: key (mesh, name)", what)
	if d := cmp.Diff(want.Meta.Labels, got.Meta.Labels, cmpOpts...); d != "" {
		t.Fatalf("%s: labels differ (-want +got):\n%s", what, d)
	}
	if d := cmp.Diff(want.Spec, got.Spec, cmpOpts...); d != "" {
		t.Fatalf("%s: spec differs (-want +got):\n%s", what, d)
	}
	requireStatus(t, want.Status, got.Status, what)
}

// requireStatus compares statuses, treating a nil status and an empty one
// as equal (a backend may store "no status" either way).
func requireStatus(t *testing.T, want, got any, what string) {
	t.Helper()
	if isEmptyStatus(want) && isEmptyStatus(got) {
		return
	}
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Fatalf("%s: status differs (-want +got):\n%s", what, d)
	}
}

func isEmptyStatus(s any) bool {
	switch s := s.(type) {
	case nil:
		return true
	case *PolicyStatus:
		return s == nil || len(s.Conditions) == 0
	default:
		return false
	}
}

// requireSame checks that got is the same stored state as want, including
// version and times (compared as instants).
func requireSame(t *testing.T, want, got *resource.Resource, what string) {
	t.Helper()
	requireContent(t, want, got, what)
	require.Equal(t, want.Meta.Version, got.Meta.Version, "%s: version", what)
	requireTime(t, want.Meta.CreationTime, got.Meta.CreationTime, what+": creation time")
	requireTime(t, want.Meta.ModificationTime, got.Meta.ModificationTime, what+": modification time")
}

func requireTime(t *testing.T, want, got time.Time, what string) {
	t.Helper()
	require.True(t, want.Equal(got), "%s: expected %s, got %s", what, want.Format(time.RFC3339Nano), got.Format(time.RFC3339Nano))
}

// requireStamped checks the server-owned fields a write must set.
func requireStamped(t *testing.T, res *resource.Resource, what string) {
	t.Helper()
	m := res.Meta
	require.NotEmpty(t, m.Version, "%s: version must be set", what)
	require.False(t, m.CreationTime.IsZero(), "%s: creation time must be set", what)
	require.False(t, m.ModificationTime.IsZero(), "%s: modification time must be set", what)
	require.Equal(t, time.UTC, m.CreationTime.Location(), "%s: creation time must be in UTC", what)
	require.Equal(t, time.UTC, m.ModificationTime.Location(), "%s: modification time must be in UTC", what)
	require.False(t, m.ModificationTime.Before(m.CreationTime),
		"%s: modification time %s is before creation time %s", what, m.ModificationTime, m.CreationTime)
}

// keysOf returns the keys of items, in order.
func keysOf(items []*resource.Resource) []resource.Key {
	out := make([]resource.Key, len(items))
	for i, r := range items {
		out[i] = r.Key()
	}
	return out
}

// sortedKeys returns keys in the order List must use: mesh, then name, by bytes.
func sortedKeys(keys []resource.Key) []resource.Key {
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b resource.Key) int {
		if a.Mesh != b.Mesh {
			if a.Mesh < b.Mesh {
				return -1
			}
			return 1
		}
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}
