package dptoken

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// currentKeySerial is the serial of the key new tokens are signed with.
// Rotation will pick the highest serial present instead.
const currentKeySerial = 1

// errNoSigningKey: the mesh has no signing key with the requested serial.
var errNoSigningKey = errors.New("signing key not found")

// SigningKeySecretName is the secret holding a mesh's token signing key with
// the given serial: "dataplane-token-signing-key-<mesh>-<serial>", as Kuma
// names it.
func SigningKeySecretName(mesh string, serial int) string {
	return "dataplane-token-signing-key-" + mesh + "-" + strconv.Itoa(serial)
}

// RevocationsSecretName is the secret listing a mesh's revoked token ids:
// "dataplane-token-revocations-<mesh>", as Kuma names it.
func RevocationsSecretName(mesh string) string {
	return "dataplane-token-revocations-" + mesh
}

// signingKey is a parsed signing key and the JWT algorithm it implies.
type signingKey struct {
	raw    []byte
	signer crypto.Signer
	method jwt.SigningMethod
}

type keyID struct {
	mesh   string
	serial int
}

// parseKID reads a kid header: a decimal serial number. Anything else is
// refused before it can reach a secret name.
func parseKID(kid any) (int, bool) {
	s, ok := kid.(string)
	if !ok || s == "" || len(s) > 9 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && strconv.Itoa(n) == s
}

// methodFor returns the JWT algorithm of a key: RS256 for RSA, ES256/384/512
// by curve for ECDSA.
func methodFor(k crypto.Signer) (jwt.SigningMethod, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jwt.SigningMethodES256, nil
		case elliptic.P384():
			return jwt.SigningMethodES384, nil
		case elliptic.P521():
			return jwt.SigningMethodES512, nil
		}
		return nil, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	}
	return nil, fmt.Errorf("unsupported signing key type %T", k)
}

// signingKey returns a mesh's signing key with the given serial, creating it
// when create is set and it is absent. When several writers create it at
// once, the first stored key wins and everyone uses it.
func (m *Manager) signingKey(ctx context.Context, mesh string, serial int, create bool) (*signingKey, error) {
	name := SigningKeySecretName(mesh, serial)
	raw, err := m.secrets.Get(ctx, mesh, name)
	if errors.Is(err, pki.ErrSecretNotFound) && create && !m.loadOnly {
		raw, err = m.createKey(ctx, mesh, name)
	}
	if errors.Is(err, pki.ErrSecretNotFound) {
		return nil, fmt.Errorf("%w: mesh %q has no secret %q", errNoSigningKey, mesh, name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading signing key %q of mesh %q: %w", name, mesh, err)
	}

	id := keyID{mesh, serial}
	m.mu.Lock()
	cached := m.keys[id]
	m.mu.Unlock()
	if cached != nil && bytes.Equal(cached.raw, raw) {
		return cached, nil
	}
	signer, err := pki.ParseKeyPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("reading signing key %q of mesh %q: %w", name, mesh, err)
	}
	method, err := methodFor(signer)
	if err != nil {
		return nil, fmt.Errorf("reading signing key %q of mesh %q: %w", name, mesh, err)
	}
	k := &signingKey{raw: raw, signer: signer, method: method}
	m.mu.Lock()
	m.keys[id] = k
	m.mu.Unlock()
	return k, nil
}

func (m *Manager) createKey(ctx context.Context, mesh, name string) ([]byte, error) {
	k, err := pki.GenerateKey(pki.KeyECDSAP256)
	if err != nil {
		return nil, err
	}
	raw, err := pki.EncodeKeyPEM(k)
	if err != nil {
		return nil, err
	}
	err = m.secrets.Create(ctx, mesh, name, raw)
	if errors.Is(err, pki.ErrSecretExists) {
		return m.secrets.Get(ctx, mesh, name)
	}
	if err != nil {
		return nil, fmt.Errorf("creating signing key %q of mesh %q: %w", name, mesh, err)
	}
	return raw, nil
}
