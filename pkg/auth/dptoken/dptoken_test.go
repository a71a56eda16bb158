package dptoken_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// env is a token manager over a memory store with a movable clock.
type env struct {
	ctx   context.Context
	store *pki.MemorySecretStore
	now   time.Time
	m     *dptoken.Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{ctx: context.Background(), store: newStore(), now: t0}
	e.m = e.manager(dptoken.Options{})
	return e
}

func newStore() *pki.MemorySecretStore { return pki.NewMemorySecretStore() }

func (e *env) manager(o dptoken.Options) *dptoken.Manager {
	o.Now = func() time.Time { return e.now }
	return dptoken.New(e.store, o)
}

func (e *env) issue(t *testing.T, req dptoken.IssueRequest) string {
	t.Helper()
	tok, err := e.m.Issue(e.ctx, req)
	require.NoError(t, err)
	return tok
}

// requireRejected checks that err is a refusal of exactly the given kind.
func requireRejected(t *testing.T, err, kind error, contains string) {
	t.Helper()
	require.ErrorIs(t, err, dptoken.ErrInvalidToken)
	require.ErrorIs(t, err, kind)
	for _, other := range []error{dptoken.ErrMalformed, dptoken.ErrSignatureInvalid, dptoken.ErrExpired,
		dptoken.ErrWrongMesh, dptoken.ErrWrongName, dptoken.ErrTagsNotAllowed, dptoken.ErrRevoked} {
		if other != kind {
			require.NotErrorIs(t, err, other)
		}
	}
	require.ErrorContains(t, err, contains)
}

var webTags = map[string][]string{"kuma.io/service": {"web"}}

func TestIssueAndVerify(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "mesh-a", Name: "dp-1", Tags: map[string][]string{"kuma.io/service": {"web-api", "web", "web"}}})

	claims, err := e.m.Verify(e.ctx, tok+"\n", "mesh-a", "dp-1", webTags)
	require.NoError(t, err)
	require.Equal(t, "mesh-a", claims.Mesh)
	require.Equal(t, "dp-1", claims.Name)
	require.Equal(t, map[string][]string{"kuma.io/service": {"web", "web-api"}}, claims.Tags)
	require.Len(t, claims.ID, 36)
	requireTime(t, t0, claims.IssuedAt.Time)
	requireTime(t, t0.Add(dptoken.DefaultValidFor), claims.ExpiresAt.Time) // 10 years by default

	// Header: ES256 with the key serial as kid.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &dptoken.Claims{})
	require.NoError(t, err)
	require.Equal(t, "ES256", parsed.Header["alg"])
	require.Equal(t, "1", parsed.Header["kid"])

	// The key lives in the mesh under Kuma's name and is reused.
	require.Equal(t, []string{"dataplane-token-signing-key-mesh-a-1"}, e.store.Names("mesh-a"))
	tok2 := e.issue(t, dptoken.IssueRequest{Mesh: "mesh-a", Name: "dp-2"})
	require.NotEqual(t, tok, tok2)
	_, err = e.m.Verify(e.ctx, tok2, "mesh-a", "dp-2", nil)
	require.NoError(t, err)
	require.Len(t, e.store.Names("mesh-a"), 1)

	// A second manager (another control-plane instance) verifies it too.
	_, err = e.manager(dptoken.Options{}).Verify(e.ctx, tok, "mesh-a", "dp-1", webTags)
	require.NoError(t, err)

	u, err := dptoken.ParseUnverified(tok)
	require.NoError(t, err)
	require.Equal(t, claims.ID, u.ID)
}

func TestIssueValidity(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", ValidFor: time.Hour})
	c, err := dptoken.ParseUnverified(tok)
	require.NoError(t, err)
	requireTime(t, t0.Add(time.Hour), c.ExpiresAt.Time)

	m := e.manager(dptoken.Options{DefaultValidFor: 24 * time.Hour})
	tok, err = m.Issue(e.ctx, dptoken.IssueRequest{Mesh: "m"})
	require.NoError(t, err)
	c, err = dptoken.ParseUnverified(tok)
	require.NoError(t, err)
	requireTime(t, t0.Add(24*time.Hour), c.ExpiresAt.Time)

	for name, req := range map[string]dptoken.IssueRequest{
		"no mesh":       {Name: "dp"},
		"negative":      {Mesh: "m", ValidFor: -time.Second},
		"empty tag":     {Mesh: "m", Tags: map[string][]string{"kuma.io/service": {""}}},
		"no tag values": {Mesh: "m", Tags: map[string][]string{"kuma.io/service": nil}},
	} {
		_, err := e.m.Issue(e.ctx, req)
		require.Error(t, err, name)
	}
}

func TestVerifyExpired(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp-1", ValidFor: time.Hour})
	e.now = t0.Add(59 * time.Minute)
	_, err := e.m.Verify(e.ctx, tok, "m", "dp-1", nil)
	require.NoError(t, err)
	e.now = t0.Add(61 * time.Minute)
	_, err = e.m.Verify(e.ctx, tok, "m", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrExpired, "the token expired at 2030-06-01T13:00:00Z")
}

// A token of mesh B never verifies for mesh A, whether it says mesh B or
// was forged to say mesh A.
func TestVerifyOtherMesh(t *testing.T) {
	e := newEnv(t)
	e.issue(t, dptoken.IssueRequest{Mesh: "mesh-a"}) // mesh A has a key too
	tokB := e.issue(t, dptoken.IssueRequest{Mesh: "mesh-b", Name: "dp-1"})

	_, err := e.m.Verify(e.ctx, tokB, "mesh-a", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrWrongMesh, `the token was issued for mesh "mesh-b", but the dataplane is in mesh "mesh-a"`)

	// Signed with mesh B's key but claiming mesh A.
	forged := signWith(t, e.signingKey(t, "mesh-b"), "1", jwt.MapClaims{
		"mesh": "mesh-a", "name": "dp-1", "jti": "x", "exp": t0.Add(time.Hour).Unix(),
	})
	_, err = e.m.Verify(e.ctx, forged, "mesh-a", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, `not signed by mesh "mesh-a"`)

	// Mesh C has no key at all.
	_, err = e.m.Verify(e.ctx, forged, "mesh-c", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrWrongMesh, `mesh "mesh-a"`)
	forgedC := signWith(t, e.signingKey(t, "mesh-b"), "1", jwt.MapClaims{
		"mesh": "mesh-c", "jti": "x", "exp": t0.Add(time.Hour).Unix(),
	})
	_, err = e.m.Verify(e.ctx, forgedC, "mesh-c", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, `mesh "mesh-c" does not have`)
}

func TestVerifyWrongName(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp-1"})
	_, err := e.m.Verify(e.ctx, tok, "m", "dp-2", nil)
	requireRejected(t, err, dptoken.ErrWrongName, `the token was issued for dataplane "dp-1", not "dp-2"`)

	// A token without a name is bound to the mesh only.
	meshWide := e.issue(t, dptoken.IssueRequest{Mesh: "m"})
	for _, name := range []string{"dp-1", "dp-2"} {
		_, err := e.m.Verify(e.ctx, meshWide, "m", name, nil)
		require.NoError(t, err)
	}
}

func TestVerifyTags(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Tags: map[string][]string{"kuma.io/service": {"web", "web-api"}}})

	ok := []map[string][]string{
		{"kuma.io/service": {"web"}},
		{"kuma.io/service": {"web", "web-api"}, "version": {"v1"}}, // other tag keys are free
	}
	for _, tags := range ok {
		_, err := e.m.Verify(e.ctx, tok, "m", "dp", tags)
		require.NoError(t, err, tags)
	}
	_, err := e.m.Verify(e.ctx, tok, "m", "dp", map[string][]string{"kuma.io/service": {"web", "billing"}})
	requireRejected(t, err, dptoken.ErrTagsNotAllowed, `allows tag "kuma.io/service" only with values ["web" "web-api"], but the dataplane has "billing"`)
	_, err = e.m.Verify(e.ctx, tok, "m", "dp", map[string][]string{"version": {"v1"}})
	requireRejected(t, err, dptoken.ErrTagsNotAllowed, "the dataplane has no such tag")

	// A token without tags allows any.
	free := e.issue(t, dptoken.IssueRequest{Mesh: "m"})
	_, err = e.m.Verify(e.ctx, free, "m", "dp", map[string][]string{"kuma.io/service": {"billing"}})
	require.NoError(t, err)
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp-1"})
	other := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp-1"})
	c, err := dptoken.ParseUnverified(tok)
	require.NoError(t, err)

	require.NoError(t, e.m.Revoke(e.ctx, "m", c.ID))
	require.NoError(t, e.m.Revoke(e.ctx, "m", c.ID), "revoking twice is fine")
	_, err = e.m.Verify(e.ctx, tok, "m", "dp-1", nil)
	requireRejected(t, err, dptoken.ErrRevoked, "has been revoked")
	_, err = e.m.Verify(e.ctx, other, "m", "dp-1", nil)
	require.NoError(t, err, "other tokens stay valid")

	data, err := e.store.Get(e.ctx, "m", "dataplane-token-revocations-m")
	require.NoError(t, err)
	require.Equal(t, c.ID, string(data))

	// Revocations are per mesh.
	ids, err := e.m.Revoked(e.ctx, "other")
	require.NoError(t, err)
	require.Empty(t, ids)

	require.Error(t, e.m.Revoke(e.ctx, "m", ""))
	require.Error(t, e.m.Revoke(e.ctx, "m", "a,b"))
}

// Operators may edit the list by hand, separating ids by commas or lines.
func TestRevocationListFormat(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m"})
	c, err := dptoken.ParseUnverified(tok)
	require.NoError(t, err)
	require.NoError(t, e.store.Create(e.ctx, "m", dptoken.RevocationsSecretName("m"), []byte("aaa,\r\n bbb \n"+c.ID+"\n")))
	_, err = e.m.Verify(e.ctx, tok, "m", "dp", nil)
	requireRejected(t, err, dptoken.ErrRevoked, c.ID)

	require.NoError(t, e.m.Revoke(e.ctx, "m", "ccc"))
	ids, err := e.m.Revoked(e.ctx, "m")
	require.NoError(t, err)
	require.Equal(t, []string{"aaa", "bbb", c.ID, "ccc"}, ids)
}

func TestRevokeConcurrent(t *testing.T) {
	e := newEnv(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		m := e.manager(dptoken.Options{}) // separate instances sharing the store
		wg.Go(func() { errs <- m.Revoke(e.ctx, "m", "id-"+string(rune('a'+i))) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	ids, err := e.m.Revoked(e.ctx, "m")
	require.NoError(t, err)
	require.Len(t, ids, n, "no revocation is lost")
}

func TestVerifyMalformed(t *testing.T) {
	e := newEnv(t)
	good := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	key := e.signingKey(t, "m")
	exp := t0.Add(time.Hour).Unix()

	cases := map[string]struct {
		token    string
		contains string
	}{
		"empty":        {"", "not a valid JWT"},
		"garbage":      {"hello", "not a valid JWT"},
		"two parts":    {strings.Join(strings.Split(good, ".")[:2], "."), "not a valid JWT"},
		"bad base64":   {"!!!." + strings.Split(good, ".")[1] + ".x", "not a valid JWT"},
		"no kid":       {signWith(t, key, "", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp}), "no valid key id"},
		"path kid":     {signWith(t, key, "../x", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp}), "no valid key id"},
		"no mesh":      {signWith(t, key, "1", jwt.MapClaims{"jti": "x", "exp": exp}), "no mesh claim"},
		"no jti":       {signWith(t, key, "1", jwt.MapClaims{"mesh": "m", "exp": exp}), "no id (jti)"},
		"no exp":       {signWith(t, key, "1", jwt.MapClaims{"mesh": "m", "jti": "x"}), "no expiry (exp)"},
		"bad tags":     {signWith(t, key, "1", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp, "tags": "web"}), "not a valid JWT"},
		"exp as text":  {signWith(t, key, "1", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": "soon"}), "not a valid JWT"},
		"not before":   {signWith(t, key, "1", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp, "nbf": exp}), "not valid yet"},
		"not a string": {signWith(t, key, "1", jwt.MapClaims{"mesh": 7, "jti": "x", "exp": exp}), "not a valid JWT"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.m.Verify(e.ctx, tc.token, "m", "dp", nil)
			requireRejected(t, err, dptoken.ErrMalformed, tc.contains)
		})
	}
	_, err := dptoken.ParseUnverified("nope")
	require.ErrorIs(t, err, dptoken.ErrMalformed)
}

func TestVerifySignatureInvalid(t *testing.T) {
	e := newEnv(t)
	good := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	parts := strings.Split(good, ".")
	exp := t0.Add(time.Hour).Unix()

	// Tampered payload: claim another name with the original signature.
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"dp"`, `"dq"`, 1))) + "." + parts[2]

	// alg=none, and HMAC keyed with something public.
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	none = withKID(t, none)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp})
	hs.Header["kid"] = "1"
	hmac, err := hs.SignedString([]byte("public"))
	require.NoError(t, err)

	// Signed by an unrelated key, and with a key id the mesh does not have.
	stranger, err := pki.GenerateKey(pki.KeyECDSAP256)
	require.NoError(t, err)
	foreign := signWith(t, stranger, "1", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp})
	unknownKID := signWith(t, e.signingKey(t, "m"), "2", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": exp})

	cases := map[string]struct{ token, contains string }{
		"tampered":    {tampered, `not signed by mesh "m"`},
		"alg none":    {none, `not signed by mesh "m"`},
		"hmac":        {hmac, `not signed by mesh "m"`},
		"foreign key": {foreign, `not signed by mesh "m"`},
		"unknown kid": {unknownKID, `signed with key 2, which mesh "m" does not have`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.m.Verify(e.ctx, tc.token, "m", "dp", nil)
			requireRejected(t, err, dptoken.ErrSignatureInvalid, tc.contains)
		})
	}

	// An expired token with a bad signature is reported as a bad signature.
	e.now = t0.Add(2 * time.Hour)
	_, err = e.m.Verify(e.ctx, foreign, "m", "dp", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, "not signed")
}

// A mesh deleted and re-created gets a new signing key: old tokens stop
// verifying, new ones work, with no restart.
func TestVerifyAfterMeshRecreated(t *testing.T) {
	e := newEnv(t)
	old := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	_, err := e.m.Verify(e.ctx, old, "m", "dp", nil)
	require.NoError(t, err)
	require.True(t, e.store.Delete("m", dptoken.SigningKeySecretName("m", 1)))

	_, err = e.m.Verify(e.ctx, old, "m", "dp", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, "does not have")
	fresh := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	_, err = e.m.Verify(e.ctx, old, "m", "dp", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, "not signed")
	_, err = e.m.Verify(e.ctx, fresh, "m", "dp", nil)
	require.NoError(t, err)
}

// A Kuma-style RSA signing key placed in the secret is used with RS256.
func TestRSASigningKey(t *testing.T) {
	e := newEnv(t)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	kuma := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	require.NoError(t, e.store.Create(e.ctx, "m", dptoken.SigningKeySecretName("m", 1), kuma))

	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &dptoken.Claims{})
	require.NoError(t, err)
	require.Equal(t, "RS256", parsed.Header["alg"])
	_, err = e.m.Verify(e.ctx, tok, "m", "dp", nil)
	require.NoError(t, err)

	// An ES256 token cannot pass where the key is RSA (no algorithm confusion).
	ec, err := pki.GenerateKey(pki.KeyECDSAP256)
	require.NoError(t, err)
	_, err = e.m.Verify(e.ctx, signWith(t, ec, "1", jwt.MapClaims{"mesh": "m", "jti": "x", "exp": t0.Add(time.Hour).Unix()}), "m", "dp", nil)
	requireRejected(t, err, dptoken.ErrSignatureInvalid, "signing method ES256 is invalid")
}

func TestLoadOnly(t *testing.T) {
	e := newEnv(t)
	zone := e.manager(dptoken.Options{LoadOnly: true})
	_, err := zone.Issue(e.ctx, dptoken.IssueRequest{Mesh: "m"})
	require.ErrorContains(t, err, `mesh "m" has no secret "dataplane-token-signing-key-m-1"`)
	require.Empty(t, e.store.Names("m"))

	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"}) // the global creates the key
	_, err = zone.Verify(e.ctx, tok, "m", "dp", nil)
	require.NoError(t, err)
}

// Concurrent first use by several managers creates one signing key, and
// every token verifies.
func TestIssueConcurrent(t *testing.T) {
	e := newEnv(t)
	const n = 16
	toks := make(chan string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		m := e.manager(dptoken.Options{})
		wg.Go(func() {
			tok, err := m.Issue(e.ctx, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
			errs <- err
			toks <- tok
		})
	}
	wg.Wait()
	close(errs)
	close(toks)
	for err := range errs {
		require.NoError(t, err)
	}
	for tok := range toks {
		_, err := e.m.Verify(e.ctx, tok, "m", "dp", nil)
		require.NoError(t, err)
	}
	require.Len(t, e.store.Names("m"), 1)
}

// A store failure is not the token's fault: it matches no refusal.
func TestVerifyStoreFailure(t *testing.T) {
	e := newEnv(t)
	tok := e.issue(t, dptoken.IssueRequest{Mesh: "m", Name: "dp"})
	broken := dptoken.New(failingStore{}, dptoken.Options{Now: func() time.Time { return t0 }})
	_, err := broken.Verify(e.ctx, tok, "m", "dp", nil)
	require.ErrorIs(t, err, errDown)
	require.NotErrorIs(t, err, dptoken.ErrInvalidToken)
	_, err = broken.Issue(e.ctx, dptoken.IssueRequest{Mesh: "m"})
	require.ErrorIs(t, err, errDown)
}

// requireTime compares instants, ignoring locations.
func requireTime(t *testing.T, want, got time.Time) {
	t.Helper()
	require.True(t, want.Equal(got), "want %s, got %s", want, got)
}

// signingKey reads a mesh's stored signing key.
func (e *env) signingKey(t *testing.T, mesh string) crypto.Signer {
	t.Helper()
	raw, err := e.store.Get(e.ctx, mesh, dptoken.SigningKeySecretName(mesh, 1))
	require.NoError(t, err)
	k, err := pki.ParseKeyPEM(raw)
	require.NoError(t, err)
	return k
}

// signWith signs claims with an ECDSA P-256 key (ES256), setting kid unless empty.
func signWith(t *testing.T, key crypto.Signer, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// withKID adds kid "1" to an unsigned (alg none) token's header.
func withKID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"1"}`))
	require.Len(t, parts, 3)
	return hdr + "." + parts[1] + "." + parts[2]
}

type failingStore struct{}

var errDown = errors.New("database is down")

func (failingStore) Get(context.Context, string, string) ([]byte, error) { return nil, errDown }
func (failingStore) Create(context.Context, string, string, []byte) error {
	return errDown
}
func (failingStore) Update(context.Context, string, string, []byte, []byte) error {
	return errDown
}
