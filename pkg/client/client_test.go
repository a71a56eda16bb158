package client_test

import (
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

func registry(t *testing.T) *resource.Registry {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	return reg
}

// recorder keeps the headers of every request a server received.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// startAPI serves a real Atoll REST API (manager + memory store) over HTTP.
func startAPI(t *testing.T, rec *recorder) (string, http.Handler) {
	t.Helper()
	reg := registry(t)
	mgr := manager.New(reg, memory.New(reg), slog.New(slog.DiscardHandler))
	require.NoError(t, mgr.EnsureDefaultMesh(t.Context()))
	srv, err := apiserver.New(apiserver.Options{Manager: mgr, Index: apiserver.Index{Product: "Atoll", Version: "9.9.9", BasedOnKuma: "2.14.3"}})
	require.NoError(t, err)
	h := srv.Handler()
	if rec != nil {
		h = rec.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL, h
}

func timeout(name, mesh string, idle time.Duration) *resource.Resource {
	return &resource.Resource{
		Type: "MeshTimeout",
		Meta: resource.Meta{Name: name, Mesh: mesh, Labels: map[string]string{"team": "core"}},
		Spec: &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.Mesh},
			Rules:     []targetref.Rule[meshtimeout.Conf]{{Default: meshtimeout.Conf{IdleTimeout: duration.Of(idle)}}},
		},
	}
}

func TestCRUDAgainstARealServer(t *testing.T) {
	rec := &recorder{}
	url, _ := startAPI(t, rec)
	reg := registry(t)
	c, err := client.New(reg, client.Options{Address: url + "/", Auth: client.BearerToken("tok"), Headers: map[string]string{"X-Team": "core"}, UserAgent: "test/1"})
	require.NoError(t, err)
	ctx := t.Context()
	mt, _ := reg.Get("MeshTimeout")
	meshType, _ := reg.Get("Mesh")

	idx, err := c.Index(ctx)
	require.NoError(t, err)
	require.Equal(t, "Atoll", idx.Product)
	require.Equal(t, "9.9.9", idx.Version)
	require.Contains(t, string(idx.Raw), `"basedOnKuma":"2.14.3"`)

	types, err := c.Types(ctx)
	require.NoError(t, err)
	require.Len(t, types, len(reg.All()))

	put, err := c.Put(ctx, timeout("t1", "default", time.Minute), client.PutOptions{})
	require.NoError(t, err)
	require.True(t, put.Created)
	require.NotEmpty(t, put.Resource.Meta.Version)
	require.False(t, put.Resource.Meta.CreationTime.IsZero())

	got, err := c.Get(ctx, mt, resource.Key{Mesh: "default", Name: "t1"})
	require.NoError(t, err)
	require.Equal(t, put.Resource.Meta.Version, got.Meta.Version)
	require.Empty(t, cmp.Diff(timeout("t1", "default", time.Minute).Spec, got.Spec))

	// Conditional update: the current version wins, a stale one conflicts.
	put2, err := c.Put(ctx, timeout("t1", "default", 2*time.Minute), client.PutOptions{IfVersion: got.Meta.Version})
	require.NoError(t, err)
	require.False(t, put2.Created)
	_, err = c.Put(ctx, timeout("t1", "default", 3*time.Minute), client.PutOptions{IfVersion: got.Meta.Version})
	require.True(t, client.IsConflict(err), "%v", err)

	// Dry run stores nothing.
	dry, err := c.Put(ctx, timeout("t2", "default", time.Minute), client.PutOptions{DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.Created)
	_, err = c.Get(ctx, mt, resource.Key{Mesh: "default", Name: "t2"})
	require.True(t, client.IsNotFound(err), "%v", err)

	// Paging, label filters, across meshes.
	_, err = c.Put(ctx, &resource.Resource{Type: "Mesh", Meta: resource.Meta{Name: "other"}, Spec: meshType.NewSpec()}, client.PutOptions{})
	require.NoError(t, err)
	for _, n := range []string{"t2", "t3"} {
		_, err = c.Put(ctx, timeout(n, "other", time.Minute), client.PutOptions{})
		require.NoError(t, err)
	}
	page, err := c.List(ctx, mt, "", client.ListOptions{Size: 2})
	require.NoError(t, err)
	require.Equal(t, 3, page.Total)
	require.Equal(t, []string{"default/t1", "other/t2"}, keys(page.Items))
	require.Equal(t, 2, page.NextOffset)
	require.Equal(t, url+"/meshtimeouts?offset=2&size=2", page.Next)
	page, err = c.List(ctx, mt, "", client.ListOptions{Size: 2, Offset: page.NextOffset})
	require.NoError(t, err)
	require.Equal(t, []string{"other/t3"}, keys(page.Items))
	require.Equal(t, -1, page.NextOffset)
	page, err = c.List(ctx, mt, "other", client.ListOptions{Labels: map[string]string{"team": "core"}, NameContains: "3"})
	require.NoError(t, err)
	require.Equal(t, []string{"other/t3"}, keys(page.Items))
	page, err = c.List(ctx, mt, "other", client.ListOptions{Labels: map[string]string{"team": "nobody"}})
	require.NoError(t, err)
	require.Empty(t, page.Items)
	meshes, err := c.List(ctx, meshType, "", client.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"default", "other"}, keys(meshes.Items))

	require.NoError(t, c.Delete(ctx, mt, resource.Key{Mesh: "other", Name: "t3"}, client.DeleteOptions{}))
	err = c.Delete(ctx, mt, resource.Key{Mesh: "other", Name: "t3"}, client.DeleteOptions{})
	require.True(t, client.IsNotFound(err))
	require.Equal(t, `deleting MeshTimeout "other/t3": Could not delete a resource (Not found: MeshTimeout "other/t3": resource not found)`, err.Error())

	// Every request carried the credentials and headers.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.headers {
		require.Equal(t, "Bearer tok", h.Get("Authorization"))
		require.Equal(t, "core", h.Get("X-Team"))
		require.Equal(t, "test/1", h.Get("User-Agent"))
	}
}

func keys(items []*resource.Resource) []string {
	out := make([]string, len(items))
	for i, r := range items {
		out[i] = r.Key().String()
	}
	return out
}

func TestValidationErrorsAreTyped(t *testing.T) {
	url, _ := startAPI(t, nil)
	c, err := client.New(registry(t), client.Options{Address: url})
	require.NoError(t, err)
	bad := timeout("Bad_Name", "default", -time.Second)
	_, err = c.Put(t.Context(), bad, client.PutOptions{})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, http.StatusBadRequest, ae.Status)
	require.Equal(t, "Could not process a resource", ae.Title)
	require.NotEmpty(t, ae.InvalidParameters)
	require.True(t, strings.HasPrefix(ae.Error(), "Could not process a resource (Resource is not valid)\n  name: "), ae.Error())

	_, err = c.Put(t.Context(), timeout("x", "nope", time.Second), client.PutOptions{})
	require.True(t, client.IsNotFound(err))
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "Mesh not found (mesh \"nope\" does not exist; create it first)", ae.Error())

	// Client-side checks need no server.
	mt, _ := registry(t).Get("MeshTimeout")
	_, err = c.Get(t.Context(), mt, resource.Key{Name: "x"})
	require.EqualError(t, err, `MeshTimeout "x": a mesh is required: MeshTimeout is mesh-scoped`)
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		want                    string
	}{
		{"kuma 2.x", "application/json", `{"type":"/std-errors","status":400,"title":"Could not process a resource","detail":"Resource is not valid","invalid_parameters":[{"field":"spec.to[0].default.connectionTimeout","reason":"must be greater than zero when defined"},{"field":"spec.targetRef","reason":"other reason"}]}`,
			400, "Could not process a resource (Resource is not valid)\n  spec.to[0].default.connectionTimeout: must be greater than zero when defined\n  spec.targetRef: other reason"},
		{"older shape", "application/json", `{"title":"Could not process a resource","details":"Resource is not valid","causes":[{"field":"name","message":"bad"}]}`,
			400, "Could not process a resource (Resource is not valid)\n  name: bad"},
		{"causes only", "application/json", `{"causes":[{"field":"name","message":"bad"}]}`, 400, "Bad Request ()\n  name: bad"},
		{"empty object", "application/json", `{}`, 500, "(500): {}"},
		{"plain text", "text/plain", "404: Page Not Found", 404, "(404): 404: Page Not Found"},
		{"forbidden", "application/json", `{"title":"Access Denied","detail":"user \"bob\" cannot access the resource"}`, 403, `Access Denied (user "bob" cannot access the resource)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(srv.Close)
			reg := registry(t)
			c, err := client.New(reg, client.Options{Address: srv.URL})
			require.NoError(t, err)
			d, _ := reg.Get("Mesh")
			_, err = c.Get(t.Context(), d, resource.Key{Name: "m"})
			var ae *client.APIError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, tc.status, ae.Status)
			require.Equal(t, tc.want, ae.Error())
			require.Equal(t, srv.URL+"/meshes/m", ae.URL)
			require.Equal(t, tc.status == 404, client.IsNotFound(err))
		})
	}
}

func TestKumaStylePutAnswers(t *testing.T) {
	for _, tc := range []struct {
		status   int
		body     string
		created  bool
		warnings []string
		err      string
	}{
		{status: 201, body: `{}`, created: true},
		{status: 200, body: ``},
		{status: 201, body: `{"warnings":["field x is deprecated"]}`, created: true, warnings: []string{"field x is deprecated"}},
		{status: 204, err: "unexpected answer (204)"},
		{status: 201, body: `not json`, err: "the body is not a JSON object"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "/meshes/default/meshtimeouts/t", r.URL.Path)
			require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		c, err := client.New(registry(t), client.Options{Address: srv.URL})
		require.NoError(t, err)
		in := timeout("t", "default", time.Second)
		res, err := c.Put(t.Context(), in, client.PutOptions{})
		srv.Close()
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err)
			continue
		}
		require.NoError(t, err, "%d %s", tc.status, tc.body)
		require.Equal(t, tc.created, res.Created)
		require.Equal(t, tc.warnings, res.Warnings)
		require.Empty(t, cmp.Diff(in.Spec, res.Resource.Spec), "without a body, the stored resource is what was sent")
	}
}

func TestConnectionErrorsNameTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := client.New(registry(t), client.Options{Address: addr + "/api"})
	require.NoError(t, err)
	_, err = c.Index(t.Context())
	var ce *client.ConnectionError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, addr+"/api", ce.Address)
	require.Contains(t, err.Error(), "could not reach the control plane at "+addr+"/api: ")
	require.Contains(t, err.Error(), "connection refused")

	// A slow server hits the timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	c, err = client.New(registry(t), client.Options{Address: slow.URL, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = c.Index(t.Context())
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "Client.Timeout exceeded")
}

func TestAddressPrefixAndValidation(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		_, _ = w.Write([]byte(`{"product":"Atoll","total":0,"items":[],"next":null}`))
	}))
	t.Cleanup(srv.Close)
	reg := registry(t)
	c, err := client.New(reg, client.Options{Address: srv.URL + "/cp/"})
	require.NoError(t, err)
	_, err = c.Index(t.Context())
	require.NoError(t, err)
	zone, _ := reg.Get("Zone")
	_, err = c.List(t.Context(), zone, "", client.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"/cp", "/cp/zones"}, paths)

	for _, bad := range []string{"localhost:5681", "ftp://x", "http://", "http://h/?a=b"} {
		_, err := client.New(reg, client.Options{Address: bad})
		require.Error(t, err, bad)
	}
	_, err = client.New(reg, client.Options{CACert: []byte("not pem")})
	require.EqualError(t, err, "client: the CA certificate holds no PEM certificate")
}

func TestTLS(t *testing.T) {
	_, h := startAPI(t, nil)
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	reg := registry(t)

	c, err := client.New(reg, client.Options{Address: srv.URL})
	require.NoError(t, err)
	_, err = c.Index(t.Context())
	var ce *client.ConnectionError
	require.True(t, errors.As(err, &ce), "an unknown CA is refused: %v", err)
	require.Contains(t, err.Error(), "certificate")

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err = client.New(reg, client.Options{Address: srv.URL, CACert: caPEM})
	require.NoError(t, err)
	idx, err := c.Index(t.Context())
	require.NoError(t, err)
	require.Equal(t, "Atoll", idx.Product)

	c, err = client.New(reg, client.Options{Address: srv.URL, InsecureSkipVerify: true})
	require.NoError(t, err)
	_, err = c.Index(t.Context())
	require.NoError(t, err)
}
