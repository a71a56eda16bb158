// Package secretstore adapts a resource store to pki.MutableSecretStore: the
// identity layer's secrets (mesh CAs, dataplane token signing keys and
// revocation lists) become ordinary Secret resources of their mesh, visible
// with `atollctl get secrets -m <mesh>`, synced to zones like any Secret.
package secretstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/atoll-mesh/atoll/api/secret"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
)

// Resources is the part of store.ResourceStore (or of a manager with the
// same methods) the adapter uses.
type Resources interface {
	// Get returns one resource or an error matching store.ErrNotFound.
	Get(ctx context.Context, typ string, key resource.Key) (*resource.Resource, error)
	// Create stores a new resource or returns store.ErrAlreadyExists.
	Create(ctx context.Context, res *resource.Resource) (*resource.Resource, error)
	// Update replaces a resource at the version it carries, or returns
	// store.ErrConflict.
	Update(ctx context.Context, res *resource.Resource) (*resource.Resource, error)
}

// Store keeps pki secrets as Secret resources.
type Store struct {
	res Resources
}

var _ pki.MutableSecretStore = (*Store)(nil)

// New returns a Store over res.
func New(res Resources) *Store { return &Store{res: res} }

// Get returns the data of Secret mesh/name.
func (s *Store) Get(ctx context.Context, mesh, name string) ([]byte, error) {
	r, err := s.res.Get(ctx, resource.SecretType, resource.Key{Mesh: mesh, Name: name})
	if err != nil {
		return nil, mapErr(err)
	}
	spec, ok := r.Spec.(*secret.Spec)
	if !ok {
		return nil, fmt.Errorf("secret %s/%s has unexpected spec type %T", mesh, name, r.Spec)
	}
	return bytes.Clone(spec.Data), nil
}

// Create stores a new Secret mesh/name.
func (s *Store) Create(ctx context.Context, mesh, name string, data []byte) error {
	_, err := s.res.Create(ctx, &resource.Resource{
		Type: resource.SecretType,
		Meta: resource.Meta{Mesh: mesh, Name: name},
		Spec: &secret.Spec{Data: bytes.Clone(data)},
	})
	return mapErr(err)
}

// Update replaces the data of Secret mesh/name when it still equals old. The
// store's version check makes the comparison and the write one atomic step.
func (s *Store) Update(ctx context.Context, mesh, name string, old, data []byte) error {
	r, err := s.res.Get(ctx, resource.SecretType, resource.Key{Mesh: mesh, Name: name})
	if err != nil {
		return mapErr(err)
	}
	spec, ok := r.Spec.(*secret.Spec)
	if !ok {
		return fmt.Errorf("secret %s/%s has unexpected spec type %T", mesh, name, r.Spec)
	}
	if !bytes.Equal(spec.Data, old) {
		return fmt.Errorf("secret %s/%s: %w", mesh, name, pki.ErrSecretConflict)
	}
	_, err = s.res.Update(ctx, &resource.Resource{
		Type: resource.SecretType,
		Meta: resource.Meta{Mesh: mesh, Name: name, Labels: r.Meta.Labels, Version: r.Meta.Version},
		Spec: &secret.Spec{Data: bytes.Clone(data)},
	})
	return mapErr(err)
}

// mapErr turns store sentinels into pki ones, keeping the original error
// in the chain.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w: %w", pki.ErrSecretNotFound, err)
	case errors.Is(err, store.ErrAlreadyExists):
		return fmt.Errorf("%w: %w", pki.ErrSecretExists, err)
	case errors.Is(err, store.ErrConflict):
		return fmt.Errorf("%w: %w", pki.ErrSecretConflict, err)
	}
	return err
}
