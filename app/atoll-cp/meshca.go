package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// providedCAValidator refuses a Mesh whose provided CA backends cannot be
// loaded (missing secret, not a CA, key mismatch, expired), naming the
// backend's conf, unless mtls.skipValidation is set.
func providedCAValidator(cas *pki.Manager) func(context.Context, *resource.Resource) (validate.Errors, error) {
	return func(ctx context.Context, res *resource.Resource) (validate.Errors, error) {
		spec, ok := res.Spec.(*mesh.Spec)
		if !ok || spec.MTLS == nil || spec.MTLS.SkipValidation {
			return nil, nil
		}
		var errs validate.Errors
		for i := range spec.MTLS.Backends {
			b := &spec.MTLS.Backends[i]
			if b.Type != mesh.BackendProvided {
				continue
			}
			if _, err := cas.EnsureCA(ctx, res.Meta.Name, b); err != nil {
				if errors.Is(err, store.ErrUnavailable) {
					return nil, err
				}
				errs.Add(validate.Path("mtls").Field("backends").Index(i).Field("conf"), "the provided CA cannot be used: %v", err)
			}
		}
		return errs, nil
	}
}

// meshCAs creates the CA of every builtin backend of every mesh as soon as
// the mesh is saved (leader only), so CA secrets exist before the first
// proxy asks for a certificate and can be backed up.
type meshCAs struct {
	st  store.ResourceStore
	cas *pki.Manager
	log *slog.Logger
}

// Start ensures the CAs of all meshes, then of each mesh written, until ctx ends.
func (m *meshCAs) Start(ctx context.Context) error {
	events := m.st.Watch(ctx)
	m.ensureAll(ctx)
	return forEachEvent(ctx, events, func(ev store.Event) {
		switch {
		case ev.Kind == store.Resync:
			m.ensureAll(ctx)
		case ev.Type == resource.MeshType && (ev.Kind == store.Created || ev.Kind == store.Updated):
			m.ensure(ctx, ev.Key.Name)
		case ev.Type == resource.MeshType && ev.Kind == store.Deleted:
			m.cas.Forget(ev.Key.Name)
		}
	})
}

// forEachEvent calls handle with each event until ctx ends or events
// closes.
func forEachEvent(ctx context.Context, events <-chan store.Event, handle func(store.Event)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			handle(ev)
		}
	}
}

func (m *meshCAs) ensureAll(ctx context.Context) {
	page, err := m.st.List(ctx, resource.MeshType, store.ListOptions{})
	if err != nil {
		m.log.Warn("listing meshes to create their CAs failed; will retry on the next change", "error", err)
		return
	}
	for _, r := range page.Items {
		m.ensure(ctx, r.Meta.Name)
	}
}

func (m *meshCAs) ensure(ctx context.Context, name string) {
	res, err := m.st.Get(ctx, resource.MeshType, resource.Key{Name: name})
	if err != nil {
		return
	}
	if err := ensureBuiltinCAs(ctx, m.cas, res); err != nil {
		m.log.Error("creating the mesh CA failed", "mesh", name, "error", err)
	}
}

// ensureBuiltinCAs creates (or loads) the CA of every builtin backend of a
// Mesh resource. The manager runs it right after a mesh is stored, so the
// CA exists when the write is acknowledged.
func ensureBuiltinCAs(ctx context.Context, cas *pki.Manager, res *resource.Resource) error {
	spec, ok := res.Spec.(*mesh.Spec)
	if !ok || spec.MTLS == nil {
		return nil
	}
	var errs []error
	for i := range spec.MTLS.Backends {
		b := &spec.MTLS.Backends[i]
		if b.Type != mesh.BackendBuiltin {
			continue
		}
		if _, err := cas.EnsureCA(ctx, res.Meta.Name, b); err != nil {
			errs = append(errs, fmt.Errorf("backend %q: %w", b.Name, err))
		}
	}
	return errors.Join(errs...)
}
