package dptoken

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// DefaultValidFor is how long a token is valid when the request does not
// say: 10 years, Kuma's documented default.
const DefaultValidFor = 10 * 365 * 24 * time.Hour

// Claims are the contents of a dataplane token.
type Claims struct {
	// Mesh the token is valid in.
	Mesh string `json:"mesh"`
	// Name of the dataplane the token is bound to; empty means any
	// dataplane of the mesh.
	Name string `json:"name,omitempty"`
	// Tags restrict the tag values the dataplane may carry, per tag key.
	Tags map[string][]string `json:"tags,omitempty"`
	// RegisteredClaims carry jti (ID), iat and exp.
	jwt.RegisteredClaims
}

// IssueRequest says what a new token is bound to.
type IssueRequest struct {
	// Mesh the token is valid in; required.
	Mesh string
	// Name binds the token to one dataplane; empty allows any dataplane of
	// the mesh.
	Name string
	// Tags, when set, restrict the dataplane's tag values, e.g.
	// {"kuma.io/service": ["web", "web-api"]}.
	Tags map[string][]string
	// ValidFor is the token lifetime; 0 means the Manager's default.
	ValidFor time.Duration
}

// Options configure a Manager.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// DefaultValidFor is the lifetime of tokens whose request gives none;
	// 0 means DefaultValidFor.
	DefaultValidFor time.Duration
	// LoadOnly forbids creating signing keys (zone control planes of a
	// multi-zone deployment, which receive keys from the global one):
	// Issue then fails until the key exists.
	LoadOnly bool
}

// Manager issues, verifies and revokes dataplane tokens. It is safe for
// concurrent use; several Managers may share one store.
type Manager struct {
	secrets  pki.MutableSecretStore
	now      func() time.Time
	validFor time.Duration
	loadOnly bool

	mu   sync.Mutex
	keys map[keyID]*signingKey
}

// New returns a Manager keeping signing keys and revocation lists in
// secrets.
func New(secrets pki.MutableSecretStore, opts Options) *Manager {
	m := &Manager{
		secrets:  secrets,
		now:      opts.Now,
		validFor: opts.DefaultValidFor,
		loadOnly: opts.LoadOnly,
		keys:     map[keyID]*signingKey{},
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.validFor == 0 {
		m.validFor = DefaultValidFor
	}
	return m
}

// Issue returns a signed token for req, creating the mesh's signing key on
// first use.
func (m *Manager) Issue(ctx context.Context, req IssueRequest) (string, error) {
	tok, err := m.issue(ctx, req)
	if err != nil {
		return "", fmt.Errorf("issuing dataplane token for mesh %q: %w", req.Mesh, err)
	}
	return tok, nil
}

func (m *Manager) issue(ctx context.Context, req IssueRequest) (string, error) {
	if req.Mesh == "" {
		return "", errors.New("mesh is required")
	}
	validFor := req.ValidFor
	if validFor == 0 {
		validFor = m.validFor
	}
	if validFor < 0 {
		return "", fmt.Errorf("validity %s must be positive", validFor)
	}
	tags, err := normalizeTags(req.Tags)
	if err != nil {
		return "", err
	}
	key, err := m.signingKey(ctx, req.Mesh, currentKeySerial, true)
	if err != nil {
		return "", err
	}
	jti, err := newID()
	if err != nil {
		return "", err
	}
	now := m.now()
	claims := &Claims{
		Mesh: req.Mesh,
		Name: req.Name,
		Tags: tags,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        jti,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(validFor)),
		},
	}
	t := jwt.NewWithClaims(key.method, claims)
	t.Header["kid"] = strconv.Itoa(currentKeySerial)
	s, err := t.SignedString(key.signer)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return s, nil
}

// Verify checks that token lets the dataplane mesh/name with the given tags
// (see pki.DataplaneTags) connect, and returns its claims. The token must be
// well-formed, signed by a key of mesh (and only mesh), unexpired, not
// revoked, bound to mesh, bound to name or to no name, and allow every tag
// value the dataplane carries for the tag keys it restricts. A refusal
// matches ErrInvalidToken and the specific error; any other error (the
// store failed) is not the token's fault.
func (m *Manager) Verify(ctx context.Context, token, mesh, name string, tags map[string][]string) (*Claims, error) {
	token = strings.TrimSpace(token)
	unverified, kid, err := parseUnverified(token)
	if err != nil {
		return nil, err
	}
	if unverified.Mesh != mesh {
		return nil, reject(ErrWrongMesh, "the token was issued for mesh %q, but the dataplane is in mesh %q", unverified.Mesh, mesh)
	}
	key, err := m.signingKey(ctx, mesh, kid, false)
	if errors.Is(err, errNoSigningKey) {
		return nil, reject(ErrSignatureInvalid, "the token is signed with key %d, which mesh %q does not have (was the mesh re-created or the key removed?)", kid, mesh)
	}
	if err != nil {
		return nil, fmt.Errorf("verifying dataplane token: %w", err)
	}
	claims := &Claims{}
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{key.method.Alg()}),
		jwt.WithTimeFunc(m.now),
		jwt.WithExpirationRequired(),
	).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key.signer.Public(), nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, reject(ErrSignatureInvalid, "the token was not signed by mesh %q (%v)", mesh, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, reject(ErrExpired, "the token expired at %s; generate a new one", claims.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		return nil, reject(ErrMalformed, "the token is not usable: %v", err)
	}

	revoked, err := m.revoked(ctx, mesh)
	if err != nil {
		return nil, fmt.Errorf("verifying dataplane token: %w", err)
	}
	if slices.Contains(revoked, claims.ID) {
		return nil, reject(ErrRevoked, "the token %q of mesh %q has been revoked", claims.ID, mesh)
	}
	if claims.Name != "" && claims.Name != name {
		return nil, reject(ErrWrongName, "the token was issued for dataplane %q, not %q", claims.Name, name)
	}
	if err := checkTags(claims.Tags, tags); err != nil {
		return nil, err
	}
	return claims, nil
}

// parseUnverified reads a token without checking its signature, so that a
// refusal can say what is wrong; nothing read here is trusted to accept a
// token.
func parseUnverified(token string) (*Claims, int, error) {
	claims := &Claims{}
	t, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		return nil, 0, reject(ErrMalformed, "the token is not a valid JWT: %v", err)
	}
	kid, ok := parseKID(t.Header["kid"])
	switch {
	case !ok:
		return nil, 0, reject(ErrMalformed, "the token header has no valid key id (kid)")
	case claims.Mesh == "":
		return nil, 0, reject(ErrMalformed, "the token has no mesh claim")
	case claims.ID == "":
		return nil, 0, reject(ErrMalformed, "the token has no id (jti) claim")
	case claims.ExpiresAt == nil:
		return nil, 0, reject(ErrMalformed, "the token has no expiry (exp) claim")
	}
	return claims, kid, nil
}

// ParseUnverified returns a token's claims WITHOUT verifying it, for display
// (for example to find the id to revoke). Never use its result to accept a
// token; use Verify.
func ParseUnverified(token string) (*Claims, error) {
	c, _, err := parseUnverified(strings.TrimSpace(token))
	return c, err
}

// checkTags verifies that, for every tag key the token restricts, the
// dataplane carries the tag and only allowed values.
func checkTags(allowed, have map[string][]string) error {
	for _, k := range slices.Sorted(maps.Keys(allowed)) {
		vals := have[k]
		if len(vals) == 0 {
			return reject(ErrTagsNotAllowed, "the token requires tag %q with a value in %q, but the dataplane has no such tag", k, allowed[k])
		}
		for _, v := range vals {
			if !slices.Contains(allowed[k], v) {
				return reject(ErrTagsNotAllowed, "the token allows tag %q only with values %q, but the dataplane has %q", k, allowed[k], v)
			}
		}
	}
	return nil
}

// normalizeTags sorts and de-duplicates tag values and refuses empty ones.
func normalizeTags(tags map[string][]string) (map[string][]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := make(map[string][]string, len(tags))
	for k, vs := range tags {
		if k == "" {
			return nil, errors.New("a tag key is empty")
		}
		if len(vs) == 0 {
			return nil, fmt.Errorf("tag %q has no values", k)
		}
		vs = slices.Clone(vs)
		for _, v := range vs {
			if v == "" {
				return nil, fmt.Errorf("tag %q has an empty value", k)
			}
		}
		slices.Sort(vs)
		out[k] = slices.Compact(vs)
	}
	return out, nil
}

// newID returns a random (version 4) UUID.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating token id: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
