// Package store defines how resources are kept: the ResourceStore contract
// every backend (memory, postgres, kubernetes) implements, its errors, list
// options and change events. The storetest package checks a backend against
// this contract.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// ResourceStore keeps resources of every registered type.
//
// Resources passed in are not retained: the store keeps its own copy.
// Resources returned are shared between callers and must be treated as
// read-only (see resource.Clone).
type ResourceStore interface {
	// Create stores a new resource. It sets Version, CreationTime and
	// ModificationTime and returns the stored resource. ErrAlreadyExists when
	// the key is taken.
	Create(ctx context.Context, res *resource.Resource) (*resource.Resource, error)
	// Update replaces an existing resource. res.Meta.Version must equal the
	// stored version (ErrConflict otherwise), so concurrent writers never
	// silently overwrite each other. CreationTime is kept; Version and
	// ModificationTime are renewed. ErrNotFound when it does not exist.
	Update(ctx context.Context, res *resource.Resource) (*resource.Resource, error)
	// Delete removes a resource. With opts.Version set, the stored version
	// must match (ErrConflict otherwise). Deleting a Mesh also deletes every
	// resource in that mesh, atomically. ErrNotFound when it does not exist.
	Delete(ctx context.Context, typ string, key resource.Key, opts DeleteOptions) error
	// Get returns one resource or ErrNotFound.
	Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error)
	// List returns resources of one type ordered by mesh, then name.
	List(ctx context.Context, typ string, opts ListOptions) (ListResult, error)
	// Watch streams change events until ctx ends; see Event.
	Watch(ctx context.Context) <-chan Event
}

// DeleteOptions refine Delete.
type DeleteOptions struct {
	// Version, when set, must equal the stored version.
	Version string
}

// ListOptions select and page a List.
type ListOptions struct {
	// Mesh limits the list to one mesh; empty lists every mesh.
	Mesh string
	// Labels keeps resources carrying all these labels with equal values.
	Labels map[string]string
	// NameContains keeps resources whose name contains this text.
	NameContains string
	// Offset skips this many matching resources.
	Offset int
	// Size is the page size; 0 returns every match from Offset on.
	Size int
}

// ListResult is one page of a List.
type ListResult struct {
	// Items on this page.
	Items []*resource.Resource
	// Total counts every match, across pages.
	Total int
	// NextOffset is the Offset of the next page, or -1 on the last one.
	NextOffset int
}

// Errors a store returns; match them with errors.Is.
var (
	// ErrNotFound: no resource has that type and key.
	ErrNotFound = errors.New("resource not found")
	// ErrAlreadyExists: Create found the key taken.
	ErrAlreadyExists = errors.New("resource already exists")
	// ErrConflict: the version given is not the stored one (someone else wrote first).
	ErrConflict = errors.New("resource was changed by another writer")
	// ErrUnavailable: the backend cannot be reached; the write did not happen.
	ErrUnavailable = errors.New("store unavailable")
)

// Error wraps a sentinel with the type and key it concerns.
type Error struct {
	// Err is one of the sentinels above.
	Err error
	// Type of the resource.
	Type string
	// Key of the resource.
	Key resource.Key
	// Cause is the backend error behind it, if any.
	Cause error
}

// Error says what happened to which resource.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %q: %s", e.Type, e.Key.String(), e.Err)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap lets errors.Is match the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// NotFound returns ErrNotFound for typ/key.
func NotFound(typ string, key resource.Key) error {
	return &Error{Err: ErrNotFound, Type: typ, Key: key}
}

// AlreadyExists returns ErrAlreadyExists for typ/key.
func AlreadyExists(typ string, key resource.Key) error {
	return &Error{Err: ErrAlreadyExists, Type: typ, Key: key}
}

// Conflict returns ErrConflict for typ/key.
func Conflict(typ string, key resource.Key) error {
	return &Error{Err: ErrConflict, Type: typ, Key: key}
}

// EventKind says what happened.
type EventKind uint8

const (
	// Created: a resource was created.
	Created EventKind = iota + 1
	// Updated: a resource was replaced.
	Updated
	// Deleted: a resource was removed.
	Deleted
	// Resync: events may have been lost (a slow subscriber overflowed, or
	// the backend reconnected). The subscriber must re-read what it needs;
	// Type, Key and Version are empty.
	Resync
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case Created:
		return "Created"
	case Updated:
		return "Updated"
	case Deleted:
		return "Deleted"
	case Resync:
		return "Resync"
	}
	return fmt.Sprintf("EventKind(%d)", k)
}

// Event reports one change. Events carry keys, not resources: a subscriber
// reads what it needs, so events stay small and backends can send them
// through narrow channels (PostgreSQL NOTIFY).
type Event struct {
	// Kind of change.
	Kind EventKind
	// Type of the changed resource.
	Type string
	// Key of the changed resource.
	Key resource.Key
	// Version after the change (empty for Deleted and Resync).
	Version string
}

// CheckKey rejects a key that does not fit its type's scope: a name is
// required, mesh-scoped types need a mesh and global types must have none.
// Backends call it before writing.
func CheckKey(d *resource.Descriptor, key resource.Key) error {
	switch {
	case key.Name == "":
		return fmt.Errorf("%s: name must not be empty", d.Name)
	case d.Scope == resource.ScopeMesh && key.Mesh == "":
		return fmt.Errorf("%s %q: mesh must be set, the type is mesh-scoped", d.Name, key.Name)
	case d.Scope == resource.ScopeGlobal && key.Mesh != "":
		return fmt.Errorf("%s %q: mesh must be empty, the type is global", d.Name, key.String())
	}
	return nil
}
