package dptoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// maxRevokeAttempts bounds the compare-and-swap retries of Revoke when other
// writers keep changing the list.
const maxRevokeAttempts = 16

// Revoke adds the token id jti (the jti claim, see ParseUnverified) to the
// mesh's revocation list; from then on Verify refuses that token. Revoking
// an id twice is not an error. Concurrent revocations are all kept.
func (m *Manager) Revoke(ctx context.Context, mesh, jti string) error {
	if err := m.revoke(ctx, mesh, strings.TrimSpace(jti)); err != nil {
		return fmt.Errorf("revoking dataplane token %q of mesh %q: %w", jti, mesh, err)
	}
	return nil
}

func (m *Manager) revoke(ctx context.Context, mesh, jti string) error {
	if mesh == "" || jti == "" {
		return errors.New("mesh and token id are required")
	}
	if strings.ContainsAny(jti, ",\n\r") {
		return errors.New("a token id cannot contain commas or line breaks")
	}
	name := RevocationsSecretName(mesh)
	for range maxRevokeAttempts {
		old, err := m.secrets.Get(ctx, mesh, name)
		switch {
		case errors.Is(err, pki.ErrSecretNotFound):
			err = m.secrets.Create(ctx, mesh, name, []byte(jti))
			if errors.Is(err, pki.ErrSecretExists) {
				continue // someone else started the list; add to theirs
			}
			return err
		case err != nil:
			return fmt.Errorf("reading %q: %w", name, err)
		}
		ids := parseRevocations(old)
		if slices.Contains(ids, jti) {
			return nil
		}
		err = m.secrets.Update(ctx, mesh, name, old, []byte(strings.Join(append(ids, jti), ",")))
		if errors.Is(err, pki.ErrSecretConflict) || errors.Is(err, pki.ErrSecretNotFound) {
			continue
		}
		return err
	}
	return fmt.Errorf("%q kept changing; gave up after %d attempts", name, maxRevokeAttempts)
}

// Revoked returns the revoked token ids of a mesh.
func (m *Manager) Revoked(ctx context.Context, mesh string) ([]string, error) {
	ids, err := m.revoked(ctx, mesh)
	if err != nil {
		return nil, fmt.Errorf("listing revoked dataplane tokens of mesh %q: %w", mesh, err)
	}
	return ids, nil
}

func (m *Manager) revoked(ctx context.Context, mesh string) ([]string, error) {
	data, err := m.secrets.Get(ctx, mesh, RevocationsSecretName(mesh))
	if errors.Is(err, pki.ErrSecretNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading revocation list: %w", err)
	}
	return parseRevocations(data), nil
}

// parseRevocations splits a revocation list on commas and line breaks,
// dropping blanks.
func parseRevocations(data []byte) []string {
	fields := strings.FieldsFunc(string(data), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	ids := fields[:0]
	for _, f := range fields {
		if f = strings.TrimSpace(f); f != "" {
			ids = append(ids, f)
		}
	}
	return ids
}
