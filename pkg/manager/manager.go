// Package manager is the single write path into a store: every writer (REST,
// Kubernetes controllers, multi-zone sync, defaults) goes through it, so
// validation, mesh existence, read-only rules and conditional updates are
// applied the same way everywhere.
package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Errors the manager adds to the store's; match them with errors.Is.
var (
	// ErrUnknownType: the registry does not know the type.
	ErrUnknownType = errors.New("unknown resource type")
	// ErrMeshNotFound: a mesh-scoped resource names a mesh that does not exist.
	ErrMeshNotFound = errors.New("mesh not found")
	// ErrReadOnly: the type is written by the control plane only.
	ErrReadOnly = errors.New("resource type is read-only")
	// ErrMeshInUse: a mesh still has online dataplanes and deletion was not forced.
	ErrMeshInUse = errors.New("mesh has online dataplanes")
)

// ValidationError carries every problem of a rejected resource.
type ValidationError struct {
	// Type of the resource.
	Type string
	// Key of the resource.
	Key resource.Key
	// Errors lists the problems with field paths.
	Errors validate.Errors
}

// Error lists the problems.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s %q is not valid: %s", e.Type, e.Key.String(), e.Errors.Error())
}

// Manager validates and writes resources through a store.
type Manager struct {
	reg        *resource.Registry
	store      store.ResourceStore
	log        *slog.Logger
	validators map[string][]Validator
	afterWrite map[string][]AfterWrite
}

// AfterWrite runs after a resource of its type was stored (not on dry
// runs), before Apply returns: work that should be in place when the write
// is acknowledged, such as a new mesh's CA. A failure is logged, not
// returned: the write itself succeeded, and the hook's owner must also
// catch up from store events.
type AfterWrite func(ctx context.Context, res *resource.Resource) error

// Validator checks a resource against the state of the system (for example
// that a provided CA's secrets exist and hold a usable CA), after its own
// validation passed. It returns problems with field paths, or an error when
// it could not check (the write then fails with that error).
type Validator func(ctx context.Context, res *resource.Resource) (validate.Errors, error)

// Option configures a Manager.
type Option func(*Manager)

// WithValidator runs v on every write of type typ, dry runs included.
func WithValidator(typ string, v Validator) Option {
	return func(m *Manager) { m.validators[typ] = append(m.validators[typ], v) }
}

// WithAfterWrite runs fn after every stored write of type typ.
func WithAfterWrite(typ string, fn AfterWrite) Option {
	return func(m *Manager) { m.afterWrite[typ] = append(m.afterWrite[typ], fn) }
}

// New returns a manager writing to st the types of reg.
func New(reg *resource.Registry, st store.ResourceStore, log *slog.Logger, opts ...Option) *Manager {
	m := &Manager{reg: reg, store: st, log: log, validators: map[string][]Validator{}, afterWrite: map[string][]AfterWrite{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Registry returns the types the manager knows.
func (m *Manager) Registry() *resource.Registry { return m.reg }

// Store returns the underlying store, for readers that need its events.
func (m *Manager) Store() store.ResourceStore { return m.store }

// ApplyOptions refine Apply.
type ApplyOptions struct {
	// IfVersion, when set, makes the write conditional: it fails with
	// store.ErrConflict unless the stored resource has this version.
	IfVersion string
	// DryRun validates and checks preconditions without writing.
	DryRun bool
	// System marks a control-plane writer, allowed to write read-only types
	// and status.
	System bool
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	// Resource is the stored resource (or, on a dry run, what would be stored).
	Resource *resource.Resource
	// Created is true when the resource did not exist before.
	Created bool
}

// maxRetries bounds how often an unconditional Apply retries after losing a
// race with another writer.
const maxRetries = 5

// Apply creates or replaces res (create-or-update, as REST PUT). Without
// IfVersion it is last-writer-wins but never loses an update to a race: a
// concurrent write makes it re-read and retry.
func (m *Manager) Apply(ctx context.Context, res *resource.Resource, opts ApplyOptions) (ApplyResult, error) {
	d, err := m.descriptor(res.Type)
	if err != nil {
		return ApplyResult{}, err
	}
	if d.ReadOnly && !opts.System {
		return ApplyResult{}, &store.Error{Err: ErrReadOnly, Type: d.Name, Key: res.Key()}
	}
	if errs := resource.Validate(d, res); len(errs) > 0 {
		return ApplyResult{}, &ValidationError{Type: d.Name, Key: res.Key(), Errors: errs}
	}
	if d.Scope == resource.ScopeMesh {
		if err := m.meshExists(ctx, res.Meta.Mesh); err != nil {
			return ApplyResult{}, err
		}
	}
	for _, v := range m.validators[d.Name] {
		errs, err := v(ctx, res)
		if err != nil {
			return ApplyResult{}, err
		}
		if len(errs) > 0 {
			return ApplyResult{}, &ValidationError{Type: d.Name, Key: res.Key(), Errors: errs}
		}
	}
	for attempt := 0; ; attempt++ {
		out, err := m.applyOnce(ctx, d, res, opts)
		if err == nil && !opts.DryRun {
			for _, fn := range m.afterWrite[d.Name] {
				if herr := fn(ctx, out.Resource); herr != nil {
					m.log.Error("follow-up of a write failed; it will be retried from store events",
						"type", d.Name, "key", res.Key().String(), "error", herr)
				}
			}
		}
		if err == nil || opts.IfVersion != "" || attempt >= maxRetries ||
			!(errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrNotFound)) {
			return out, err
		}
	}
}

func (m *Manager) applyOnce(ctx context.Context, d *resource.Descriptor, res *resource.Resource, opts ApplyOptions) (ApplyResult, error) {
	current, err := m.store.Get(ctx, d.Name, res.Key())
	switch {
	case errors.Is(err, store.ErrNotFound):
		if opts.IfVersion != "" {
			return ApplyResult{}, &store.Error{Err: store.ErrConflict, Type: d.Name, Key: res.Key(),
				Cause: fmt.Errorf("version %q was required but the resource does not exist", opts.IfVersion)}
		}
		next := *res
		next.Meta.Version = ""
		if !opts.System {
			next.Status = nil
		}
		if opts.DryRun {
			now := time.Now().UTC()
			next.Meta.CreationTime, next.Meta.ModificationTime = now, now
			return ApplyResult{Resource: &next, Created: true}, nil
		}
		stored, err := m.store.Create(ctx, &next)
		if err != nil {
			return ApplyResult{}, err
		}
		m.log.Debug("resource created", "type", d.Name, "key", res.Key().String(), "version", stored.Meta.Version)
		return ApplyResult{Resource: stored, Created: true}, nil
	case err != nil:
		return ApplyResult{}, err
	}
	if opts.IfVersion != "" && opts.IfVersion != current.Meta.Version {
		return ApplyResult{}, &store.Error{Err: store.ErrConflict, Type: d.Name, Key: res.Key(),
			Cause: fmt.Errorf("version %q was required but the stored version is %q", opts.IfVersion, current.Meta.Version)}
	}
	next := *res
	next.Meta.Version = current.Meta.Version
	next.Meta.CreationTime = current.Meta.CreationTime
	if !opts.System {
		next.Status = current.Status
	}
	if opts.DryRun {
		next.Meta.ModificationTime = time.Now().UTC()
		return ApplyResult{Resource: &next}, nil
	}
	stored, err := m.store.Update(ctx, &next)
	if err != nil {
		return ApplyResult{}, err
	}
	m.log.Debug("resource updated", "type", d.Name, "key", res.Key().String(), "version", stored.Meta.Version)
	return ApplyResult{Resource: stored}, nil
}

// DeleteOptions refine Delete.
type DeleteOptions struct {
	// IfVersion, when set, makes the delete conditional on the stored version.
	IfVersion string
	// Force deletes a mesh even while dataplanes are online.
	Force bool
	// System marks a control-plane writer, allowed to delete read-only types.
	System bool
}

// Delete removes one resource. Deleting a Mesh removes everything in it; it
// is refused with ErrMeshInUse while dataplanes of the mesh are online,
// unless forced.
func (m *Manager) Delete(ctx context.Context, typ string, key resource.Key, opts DeleteOptions) error {
	d, err := m.descriptor(typ)
	if err != nil {
		return err
	}
	if d.ReadOnly && !opts.System {
		return &store.Error{Err: ErrReadOnly, Type: d.Name, Key: key}
	}
	if d.Name == resource.MeshType && !opts.Force {
		online, err := m.onlineDataplanes(ctx, key.Name)
		if err != nil {
			return err
		}
		if online > 0 {
			return &store.Error{Err: ErrMeshInUse, Type: d.Name, Key: key,
				Cause: fmt.Errorf("%d dataplane(s) are online; stop them or delete with force", online)}
		}
	}
	if err := m.store.Delete(ctx, d.Name, key, store.DeleteOptions{Version: opts.IfVersion}); err != nil {
		return err
	}
	m.log.Debug("resource deleted", "type", d.Name, "key", key.String())
	if d.Name == resource.DataplaneType {
		m.deleteInsight(ctx, key)
	}
	return nil
}

// deleteInsight removes the DataplaneInsight of a deleted dataplane, so
// that listings and mesh insights do not count a dataplane that is gone. It
// is best effort: the dataplane is already deleted.
func (m *Manager) deleteInsight(ctx context.Context, key resource.Key) {
	if _, ok := m.reg.Get(resource.DataplaneInsightType); !ok {
		return
	}
	err := m.store.Delete(ctx, resource.DataplaneInsightType, key, store.DeleteOptions{})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("deleting the insight of a deleted dataplane failed; it stays until the dataplane connects again", "dataplane", key.String(), "error", err)
	}
}

// Get returns one resource.
func (m *Manager) Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error) {
	d, err := m.descriptor(typ)
	if err != nil {
		return nil, err
	}
	return m.store.Get(ctx, d.Name, key)
}

// List returns one page of resources of a type.
func (m *Manager) List(ctx context.Context, typ string, opts store.ListOptions) (store.ListResult, error) {
	d, err := m.descriptor(typ)
	if err != nil {
		return store.ListResult{}, err
	}
	return m.store.List(ctx, d.Name, opts)
}

func (m *Manager) descriptor(typ string) (*resource.Descriptor, error) {
	d, ok := m.reg.Get(typ)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	return d, nil
}

func (m *Manager) meshExists(ctx context.Context, mesh string) error {
	_, err := m.store.Get(ctx, resource.MeshType, resource.Key{Name: mesh})
	if errors.Is(err, store.ErrNotFound) {
		return &store.Error{Err: ErrMeshNotFound, Type: resource.MeshType, Key: resource.Key{Name: mesh}}
	}
	return err
}

func (m *Manager) onlineDataplanes(ctx context.Context, mesh string) (int, error) {
	if _, ok := m.reg.Get(resource.DataplaneInsightType); !ok {
		return 0, nil
	}
	list, err := m.store.List(ctx, resource.DataplaneInsightType, store.ListOptions{Mesh: mesh})
	if err != nil {
		return 0, fmt.Errorf("checking online dataplanes of mesh %q: %w", mesh, err)
	}
	n := 0
	for _, r := range list.Items {
		if in, ok := r.Spec.(*insight.DataplaneInsight); ok && in.IsOnline() {
			n++
		}
	}
	return n, nil
}
