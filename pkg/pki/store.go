package pki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
)

// Errors a SecretStore returns; callers match them with errors.Is, so an
// implementation may wrap them with more context.
var (
	// ErrSecretNotFound: no secret has that mesh and name.
	ErrSecretNotFound = errors.New("secret not found")
	// ErrSecretExists: Create found the name taken.
	ErrSecretExists = errors.New("secret already exists")
	// ErrSecretConflict: Update found data other than the expected old data.
	ErrSecretConflict = errors.New("secret was changed by another writer")
)

// SecretStore keeps opaque mesh-scoped secrets. It is all the identity layer
// needs from the resource store: the control plane adapts its Secret type to
// it (package secretstore does so for any store.ResourceStore).
//
// Create must be atomic: when two callers create the same name, exactly one
// succeeds and the other gets ErrSecretExists. Manager relies on this to stay
// consistent when several goroutines or control-plane instances race.
type SecretStore interface {
	// Get returns the secret's data, or an error matching ErrSecretNotFound.
	Get(ctx context.Context, mesh, name string) ([]byte, error)
	// Create stores a new secret, or returns an error matching
	// ErrSecretExists when the name is taken.
	Create(ctx context.Context, mesh, name string, data []byte) error
}

// MutableSecretStore is a SecretStore whose secrets can also be replaced.
// Update is a compare-and-swap: it replaces the data only if the stored data
// still equals old, and returns an error matching ErrSecretConflict
// otherwise, so read-modify-write cycles (token revocation lists) never lose a
// concurrent change. It returns ErrSecretNotFound when the secret is absent.
type MutableSecretStore interface {
	SecretStore
	// Update replaces old with data.
	Update(ctx context.Context, mesh, name string, old, data []byte) error
}

// MemorySecretStore is a MutableSecretStore held in memory, safe for
// concurrent use. It suits tests and single-instance development setups.
type MemorySecretStore struct {
	mu      sync.Mutex
	secrets map[memoryKey][]byte
}

type memoryKey struct{ mesh, name string }

var _ MutableSecretStore = (*MemorySecretStore)(nil)

// NewMemorySecretStore returns an empty store.
func NewMemorySecretStore() *MemorySecretStore {
	return &MemorySecretStore{secrets: map[memoryKey][]byte{}}
}

// Get returns a copy of the secret's data.
func (s *MemorySecretStore) Get(_ context.Context, mesh, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.secrets[memoryKey{mesh, name}]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: %w", mesh, name, ErrSecretNotFound)
	}
	return bytes.Clone(data), nil
}

// Create stores a copy of data under a new name.
func (s *MemorySecretStore) Create(_ context.Context, mesh, name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memoryKey{mesh, name}
	if _, ok := s.secrets[k]; ok {
		return fmt.Errorf("secret %s/%s: %w", mesh, name, ErrSecretExists)
	}
	s.secrets[k] = bytes.Clone(data)
	return nil
}

// Update replaces the secret's data when it still equals old.
func (s *MemorySecretStore) Update(_ context.Context, mesh, name string, old, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memoryKey{mesh, name}
	cur, ok := s.secrets[k]
	if !ok {
		return fmt.Errorf("secret %s/%s: %w", mesh, name, ErrSecretNotFound)
	}
	if !bytes.Equal(cur, old) {
		return fmt.Errorf("secret %s/%s: %w", mesh, name, ErrSecretConflict)
	}
	s.secrets[k] = bytes.Clone(data)
	return nil
}

// Delete removes a secret, as deleting a mesh does; it reports whether the
// secret existed.
func (s *MemorySecretStore) Delete(mesh, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memoryKey{mesh, name}
	_, ok := s.secrets[k]
	delete(s.secrets, k)
	return ok
}

// Names lists the names of a mesh's secrets, in no particular order.
func (s *MemorySecretStore) Names(mesh string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k := range s.secrets {
		if k.mesh == mesh {
			names = append(names, k.name)
		}
	}
	return names
}
