package apiserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

type testAPI struct {
	t     *testing.T
	url   string
	store store.ResourceStore
	srv   *apiserver.Server
}

func newAPI(t *testing.T) *testAPI {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	st := memory.New(reg)
	mgr := manager.New(reg, st, slog.New(slog.DiscardHandler))
	require.NoError(t, mgr.EnsureDefaultMesh(t.Context()))
	srv, err := apiserver.New(apiserver.Options{
		Manager: mgr,
		Index:   apiserver.Index{Product: "Atoll", Version: "test", BasedOnKuma: "2.14.3", InstanceID: "i-1", Mode: "standalone", Environment: "universal"},
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testAPI{t: t, url: hs.URL, store: st, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// apiError decodes an error body and checks its Kuma shape.
func (r response) apiError(t *testing.T) apiserver.Error {
	t.Helper()
	var e apiserver.Error
	require.NoError(t, json.Unmarshal(r.body, &e), "body: %s", r.body)
	require.Equal(t, r.status, e.Status, "status in body")
	require.NotEmpty(t, e.Title)
	require.Equal(t, e.Detail, e.Details)
	require.Len(t, e.Causes, len(e.InvalidParameters))
	return e
}

func (a *testAPI) do(method, path string, body []byte, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.url+path, bytes.NewReader(body))
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(a.t, err)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// kumaDocs returns the universal-format documents of testdata as JSON, with
// the server-owned fields kumactl adds to every PUT.
func kumaDocs(t *testing.T) []map[string]any {
	t.Helper()
	data, err := os.ReadFile("testdata/kuma-universal.yaml")
	require.NoError(t, err)
	var out []map[string]any
	for _, doc := range resource.SplitYAML(data) {
		j, err := resource.YAMLToJSON(doc.Data)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(j, &m))
		out = append(out, m)
	}
	require.Len(t, out, 3)
	return out
}

func pathOf(doc map[string]any) string {
	switch doc["type"] {
	case "Mesh":
		return "/meshes/" + doc["name"].(string)
	case "Dataplane":
		return fmt.Sprintf("/meshes/%s/dataplanes/%s", doc["mesh"], doc["name"])
	default:
		return fmt.Sprintf("/meshes/%s/meshtimeouts/%s", doc["mesh"], doc["name"])
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func withoutServerFields(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != "creationTime" && k != "modificationTime" && k != "kri" {
			out[k] = v
		}
	}
	return out
}

func TestKumaUniversalDocumentsApplyUnchangedAndReadBackEqual(t *testing.T) {
	api := newAPI(t)
	for _, doc := range kumaDocs(t) {
		// What the real kumactl sends: the document plus zero times and a kri.
		sent := map[string]any{"creationTime": "0001-01-01T00:00:00Z", "modificationTime": "0001-01-01T00:00:00Z", "kri": "kri_x"}
		for k, v := range doc {
			sent[k] = v
		}
		put := api.do(http.MethodPut, pathOf(doc), mustJSON(t, sent))
		require.Equal(t, http.StatusCreated, put.status, "PUT %s: %s", pathOf(doc), put.body)
		require.NotEmpty(t, put.header.Get("ETag"))

		got := api.do(http.MethodGet, pathOf(doc), nil)
		require.Equal(t, http.StatusOK, got.status, "%s", got.body)
		body := got.json(t)
		require.Empty(t, cmp.Diff(doc, withoutServerFields(body)), "read back differs from what was applied")
		created, err := time.Parse(time.RFC3339Nano, body["creationTime"].(string))
		require.NoError(t, err, "creationTime must be RFC 3339")
		require.WithinDuration(t, time.Now(), created, time.Minute)

		// The same PUT again is an idempotent update.
		again := api.do(http.MethodPut, pathOf(doc), mustJSON(t, sent))
		require.Equal(t, http.StatusOK, again.status, "%s", again.body)
		require.Empty(t, cmp.Diff(doc, withoutServerFields(again.json(t))))
	}
}

func TestPutAcceptsYAMLAndFillsNameAndMeshFromURL(t *testing.T) {
	api := newAPI(t)
	body := []byte("type: MeshTimeout\nspec:\n  to:\n  - targetRef: {kind: Mesh}\n    default: {idleTimeout: 5s}\n")
	res := api.do(http.MethodPut, "/meshes/default/meshtimeouts/from-yaml", body, "Content-Type", "application/yaml")
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	m := res.json(t)
	require.Equal(t, "from-yaml", m["name"])
	require.Equal(t, "default", m["mesh"])
}

func TestBadInputIsRejectedWithFieldPaths(t *testing.T) {
	api := newAPI(t)
	tests := []struct {
		name       string
		path       string
		body       string
		status     int
		wantFields []string
		wantDetail string
	}{
		{name: "malformed JSON", path: "/meshes/default/meshtimeouts/a", body: `{"type":`, status: 400, wantDetail: "Resource is not valid", wantFields: []string{""}},
		{name: "unknown spec field", path: "/meshes/default/meshtimeouts/a",
			body:   `{"type":"MeshTimeout","name":"a","mesh":"default","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s","bogusField":1}}]}}`,
			status: 400, wantFields: []string{"spec.to[0].default.bogusField"}},
		{name: "unknown top-level field of an inline type", path: "/meshes/default/dataplanes/dp",
			body:   `{"type":"Dataplane","name":"dp","mesh":"default","networking":{"address":"1.1.1.1","inbound":[{"port":1,"tags":{"kuma.io/service":"a"}}]},"bogus":true}`,
			status: 400, wantFields: []string{"bogus"}},
		{name: "bad duration", path: "/meshes/default/meshtimeouts/a",
			body:   `{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"http":{"requestTimeout":"3 parsecs"}}}]}}`,
			status: 400, wantFields: []string{"spec.to[0].default.http.requestTimeout"}},
		{name: "every problem at once", path: "/meshes/default/dataplanes/dp",
			body:   `{"type":"Dataplane","networking":{"address":"not an address!","inbound":[{"port":70000,"tags":{}}]}}`,
			status: 400, wantFields: []string{"networking.address", `networking.inbound[0].port`, `networking.inbound[0].tags["kuma.io/service"]`}},
		{name: "wrong type", path: "/meshes/default/meshtimeouts/a", body: `{"type":"Dataplane","name":"a"}`, status: 400, wantFields: []string{"type"}},
		{name: "unknown type", path: "/meshes/default/meshtimeouts/a", body: `{"type":"FooPolicy","name":"a"}`, status: 400, wantFields: []string{"type"}},
		{name: "name mismatch", path: "/meshes/default/meshtimeouts/a",
			body: `{"type":"MeshTimeout","name":"b","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`, status: 400, wantFields: []string{"name"}},
		{name: "mesh mismatch", path: "/meshes/default/meshtimeouts/a",
			body: `{"type":"MeshTimeout","mesh":"other","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`, status: 400, wantFields: []string{"mesh"}},
		{name: "invalid name", path: "/meshes/default/meshtimeouts/Bad_Name!",
			body: `{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`, status: 400, wantFields: []string{"name"}},
		{name: "mesh does not exist", path: "/meshes/nope/meshtimeouts/a",
			body: `{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`, status: 404, wantDetail: `mesh "nope" does not exist`},
		{name: "empty body", path: "/meshes/default/meshtimeouts/a", body: ``, status: 400, wantDetail: "empty"},
		{name: "mesh key on a global type", path: "/zones/z1", body: `{"type":"Zone","mesh":"default"}`, status: 400, wantFields: []string{"mesh"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := api.do(http.MethodPut, tc.path, []byte(tc.body))
			require.Equal(t, tc.status, res.status, "%s", res.body)
			e := res.apiError(t)
			var fields []string
			for _, p := range e.InvalidParameters {
				fields = append(fields, p.Field)
				require.NotEmpty(t, p.Reason)
			}
			for _, f := range tc.wantFields {
				require.Contains(t, fields, f, "fields: %v (body %s)", fields, res.body)
			}
			require.Contains(t, e.Detail, tc.wantDetail)
		})
	}
	// Nothing of the above was stored.
	list := api.do(http.MethodGet, "/meshes/default/meshtimeouts", nil)
	require.EqualValues(t, 0, list.json(t)["total"])
}

func TestBodyOver4MiBIs413(t *testing.T) {
	api := newAPI(t)
	big := `{"type":"Secret","data":"` + strings.Repeat("A", 5<<20) + `"}`
	res := api.do(http.MethodPut, "/meshes/default/secrets/big", []byte(big))
	require.Equal(t, http.StatusRequestEntityTooLarge, res.status)
	require.Contains(t, res.apiError(t).Detail, "4 MiB")
}

func TestConditionalUpdatesWithETag(t *testing.T) {
	api := newAPI(t)
	body := []byte(`{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`)
	first := api.do(http.MethodPut, "/meshes/default/meshtimeouts/t", body)
	require.Equal(t, http.StatusCreated, first.status)
	v1 := first.header.Get("ETag")

	second := api.do(http.MethodPut, "/meshes/default/meshtimeouts/t", body, "If-Match", v1)
	require.Equal(t, http.StatusOK, second.status, "%s", second.body)
	v2 := second.header.Get("ETag")
	require.NotEqual(t, v1, v2, "every write changes the version")

	stale := api.do(http.MethodPut, "/meshes/default/meshtimeouts/t", body, "If-Match", v1)
	require.Equal(t, http.StatusConflict, stale.status, "%s", stale.body)
	stale.apiError(t)

	staleDelete := api.do(http.MethodDelete, "/meshes/default/meshtimeouts/t", nil, "If-Match", v1)
	require.Equal(t, http.StatusConflict, staleDelete.status)
	require.Equal(t, http.StatusOK, api.do(http.MethodDelete, "/meshes/default/meshtimeouts/t", nil, "If-Match", v2).status)
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/default/meshtimeouts/t", nil).status)
}

func TestNotFoundAnswers(t *testing.T) {
	api := newAPI(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/meshes/default/meshtimeouts/missing"},
		{http.MethodDelete, "/meshes/default/meshtimeouts/missing"},
		{http.MethodGet, "/meshes/missing"},
		{http.MethodGet, "/meshes/missing/dataplanes"},
		{http.MethodGet, "/zones/missing"},
		{http.MethodGet, "/meshes/default/foopolicies"},
		{http.MethodGet, "/nothing-here"},
	} {
		res := api.do(tc.method, tc.path, nil)
		require.Equal(t, http.StatusNotFound, res.status, "%s %s: %s", tc.method, tc.path, res.body)
		res.apiError(t)
	}
}

func TestDryRunValidatesWithoutStoring(t *testing.T) {
	api := newAPI(t)
	body := []byte(`{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`)
	res := api.do(http.MethodPut, "/meshes/default/meshtimeouts/dry?dryRun=true", body)
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/default/meshtimeouts/dry", nil).status)

	bad := api.do(http.MethodPut, "/meshes/default/meshtimeouts/dry?dryRun=true", []byte(`{"type":"MeshTimeout","spec":{}}`))
	require.Equal(t, http.StatusBadRequest, bad.status)
}

func TestReadOnlyTypesRefuseWrites(t *testing.T) {
	api := newAPI(t)
	res := api.do(http.MethodPut, "/meshes/default/dataplane-insights/dp", []byte(`{"type":"DataplaneInsight"}`))
	require.Equal(t, http.StatusMethodNotAllowed, res.status)
	res.apiError(t)
}

func TestMeshDeletionCascadesAndIsRefusedWhileDataplanesAreOnline(t *testing.T) {
	api := newAPI(t)
	require.Equal(t, http.StatusCreated, api.do(http.MethodPut, "/meshes/m1", []byte(`{"type":"Mesh"}`)).status)
	require.Equal(t, http.StatusCreated, api.do(http.MethodPut, "/meshes/m1/meshtimeouts/t",
		[]byte(`{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`)).status)
	require.Equal(t, http.StatusCreated, api.do(http.MethodPut, "/meshes/m1/dataplanes/dp-1",
		[]byte(`{"type":"Dataplane","networking":{"address":"10.0.0.1","inbound":[{"port":80,"tags":{"kuma.io/service":"web"}}]}}`)).status)

	// The control plane records that dp-1 is connected.
	now := time.Now()
	_, err := api.store.Create(t.Context(), &resource.Resource{
		Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "m1", Name: "dp-1"},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{ID: "s1", ControlPlaneInstanceID: "cp", ConnectTime: &now}}},
	})
	require.NoError(t, err)

	refused := api.do(http.MethodDelete, "/meshes/m1", nil)
	require.Equal(t, http.StatusConflict, refused.status, "%s", refused.body)
	require.Contains(t, refused.apiError(t).Detail, "online")
	require.Equal(t, http.StatusOK, api.do(http.MethodGet, "/meshes/m1/meshtimeouts/t", nil).status, "nothing deleted")

	require.Equal(t, http.StatusOK, api.do(http.MethodDelete, "/meshes/m1?force=true", nil).status)
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/m1/meshtimeouts/t", nil).status)
	all := api.do(http.MethodGet, "/dataplanes", nil).json(t)
	require.EqualValues(t, 0, all["total"], "the mesh's dataplanes went with it")
	require.Equal(t, http.StatusOK, api.do(http.MethodGet, "/meshes/default", nil).status, "other meshes stay")
}

func TestListPaginationAndFilters(t *testing.T) {
	api := newAPI(t)
	for i := range 250 {
		team := "a"
		if i%5 == 0 {
			team = "b"
		}
		body := fmt.Sprintf(`{"type":"MeshTimeout","labels":{"team":%q},"spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`, team)
		res := api.do(http.MethodPut, fmt.Sprintf("/meshes/default/meshtimeouts/t-%03d", i), []byte(body))
		require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
	}

	first := api.do(http.MethodGet, "/meshes/default/meshtimeouts", nil).json(t)
	require.EqualValues(t, 250, first["total"])
	require.Len(t, first["items"], 100, "default page size")
	require.Equal(t, api.url+"/meshes/default/meshtimeouts?offset=100", first["next"])

	// Walk every page through next links.
	seen := map[string]bool{}
	next := api.url + "/meshes/default/meshtimeouts?size=70"
	pages := 0
	for next != "" {
		res := api.do(http.MethodGet, strings.TrimPrefix(next, api.url), nil).json(t)
		for _, it := range res["items"].([]any) {
			name := it.(map[string]any)["name"].(string)
			require.False(t, seen[name], "%s returned twice", name)
			seen[name] = true
		}
		pages++
		next, _ = res["next"].(string)
	}
	require.Len(t, seen, 250)
	require.Equal(t, 4, pages)

	filtered := api.do(http.MethodGet, "/meshes/default/meshtimeouts?filter%5Blabels.team%5D=b&size=1000", nil).json(t)
	require.EqualValues(t, 50, filtered["total"])
	byName := api.do(http.MethodGet, "/meshtimeouts?filter[name]=t-24", nil).json(t)
	require.EqualValues(t, 10, byName["total"], "t-240..t-249 across meshes")

	for _, q := range []string{"size=2000", "size=0", "size=x", "offset=-1", "filter[bogus]=1"} {
		res := api.do(http.MethodGet, "/meshes/default/meshtimeouts?"+q, nil)
		require.Equal(t, http.StatusBadRequest, res.status, q)
		require.NotEmpty(t, res.apiError(t).InvalidParameters, q)
	}
	tooBig := api.do(http.MethodGet, "/meshes/default/meshtimeouts?size=2000", nil).apiError(t)
	require.Equal(t, "size", tooBig.InvalidParameters[0].Field)
	require.Contains(t, tooBig.InvalidParameters[0].Reason, "Maximum page size is 1000")
}

func TestIndexAndTypeMetadata(t *testing.T) {
	api := newAPI(t)
	idx := api.do(http.MethodGet, "/", nil).json(t)
	require.Equal(t, "Atoll", idx["product"])
	require.Equal(t, "2.14.3", idx["basedOnKuma"])
	require.Equal(t, "standalone", idx["mode"])

	var types struct {
		Resources []apiserver.TypeInfo `json:"resources"`
	}
	require.NoError(t, json.Unmarshal(api.do(http.MethodGet, "/_resources", nil).body, &types))
	byName := map[string]apiserver.TypeInfo{}
	for _, ti := range types.Resources {
		byName[ti.Name] = ti
	}
	require.Equal(t, "meshtimeouts", byName["MeshTimeout"].Path)
	require.Equal(t, "Mesh", byName["MeshTimeout"].Scope)
	require.NotNil(t, byName["MeshTimeout"].Policy)
	require.Equal(t, "Global", byName["Zone"].Scope)
	require.True(t, byName["DataplaneInsight"].ReadOnly)
}

func TestGlobalControlPlaneRefusesZoneOnlyTypes(t *testing.T) {
	reg, err := all.Registry()
	require.NoError(t, err)
	mgr := manager.New(reg, memory.New(reg), slog.New(slog.DiscardHandler))
	require.NoError(t, mgr.EnsureDefaultMesh(t.Context()))
	srv, err := apiserver.New(apiserver.Options{Manager: mgr, Global: true, Index: apiserver.Index{Product: "Atoll", Mode: "global"}})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	api := &testAPI{t: t, url: hs.URL, srv: srv}

	res := api.do(http.MethodPut, "/meshes/default/dataplanes/dp-1",
		[]byte(`{"type":"Dataplane","networking":{"address":"10.0.0.1","inbound":[{"port":80,"tags":{"kuma.io/service":"web"}}]}}`))
	require.Equal(t, http.StatusBadRequest, res.status)
	require.Contains(t, res.apiError(t).Detail, "apply it to a zone control plane")
	require.Equal(t, http.StatusBadRequest, api.do(http.MethodDelete, "/meshes/default/dataplanes/dp-1", nil).status)

	// Global-originated types are written here as usual.
	ok := api.do(http.MethodPut, "/meshes/default/meshtimeouts/t",
		[]byte(`{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`))
	require.Equal(t, http.StatusCreated, ok.status, "%s", ok.body)
}
