package track

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/policies/all"
)

// env is a memory store written through the real manager, with a Tracker
// following it.
type env struct {
	t   *testing.T
	reg *resource.Registry
	st  *memory.Store
	mgr *manager.Manager
	tr  *Tracker
}

func newEnv(t *testing.T, opts Options, storeOpts ...memory.Option) *env {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	st := memory.New(reg, storeOpts...)
	e := &env{t: t, reg: reg, st: st, mgr: manager.New(reg, st, slog.New(slog.DiscardHandler))}
	return e.withTracker(opts)
}

func (e *env) withTracker(opts Options) *env {
	e.tr = New(e.st, e.reg, slog.New(slog.DiscardHandler), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.tr.Start(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		require.NoError(e.t, <-done)
	})
	select {
	case <-e.tr.Ready():
	case <-time.After(5 * time.Second):
		e.t.Fatal("tracker not ready")
	}
	return e
}

// apply writes every document of a YAML stream.
func (e *env) apply(docs string) {
	e.t.Helper()
	for _, d := range resource.SplitYAML([]byte(docs)) {
		res, err := e.reg.DecodeYAML(d.Data)
		require.NoError(e.t, err, "document %d", d.Index)
		_, err = e.mgr.Apply(context.Background(), res, manager.ApplyOptions{System: true})
		require.NoError(e.t, err, "document %d", d.Index)
	}
}

func (e *env) delete(typ, mesh, name string) {
	e.t.Helper()
	require.NoError(e.t, e.mgr.Delete(context.Background(), typ, resource.Key{Mesh: mesh, Name: name}, manager.DeleteOptions{Force: true}))
}

// update waits for the next update of mesh, merging what arrives for it.
func (e *env) update(mesh string) snapshot.Update {
	e.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-e.tr.Changed():
			for _, u := range e.tr.TakeUpdates() {
				if u.Mesh == mesh {
					return u
				}
			}
		case <-deadline:
			e.t.Fatalf("no update of mesh %q", mesh)
		}
	}
}

// drain takes whatever updates are pending.
func (e *env) drain() {
	for {
		select {
		case <-e.tr.Changed():
			e.tr.TakeUpdates()
		case <-time.After(150 * time.Millisecond):
			return
		}
	}
}

func dpYAML(mesh, name, addr, service string, port int, extra string) string {
	return fmt.Sprintf(`
type: Dataplane
mesh: %s
name: %s
networking:
  address: %s
  inbound:
    - port: %d
      tags:
        kuma.io/service: %s
%s
`, mesh, name, addr, port, service, extra)
}
