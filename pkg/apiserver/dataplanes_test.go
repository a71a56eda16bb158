package apiserver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/policies/all"
)

type fakeInspector struct{ calls []resource.Key }

func (f *fakeInspector) InspectConfig(_ context.Context, key resource.Key) ([]byte, []byte, error) {
	f.calls = append(f.calls, key)
	if key.Name == "broken" {
		return nil, nil, errors.New("boom")
	}
	return []byte(`{"listeners":[{"name":"inbound:10.0.0.1:80"}]}`), []byte(`{"identity":{"mesh":"default"}}`), nil
}

func (f *fakeInspector) InspectRules(_ context.Context, key resource.Key) ([]byte, error) {
	f.calls = append(f.calls, key)
	if key.Name == "broken" {
		return nil, errors.New("boom")
	}
	return []byte(`{"mesh":"` + key.Mesh + `","dataplane":"` + key.Name + `","items":[{"type":"MeshTimeout","policies":[]}]}`), nil
}

func newDataplaneAPI(t *testing.T, inspector apiserver.Inspector, tokens *dptoken.Manager) *testAPI {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	st := memory.New(reg)
	mgr := manager.New(reg, st, slog.New(slog.DiscardHandler))
	require.NoError(t, mgr.EnsureDefaultMesh(t.Context()))
	opts := apiserver.Options{Manager: mgr, Inspector: inspector, Index: apiserver.Index{Product: "Atoll", Mode: "standalone"}}
	if tokens != nil {
		opts.Tokens = apiserver.DataplaneTokens(tokens)
	}
	srv, err := apiserver.New(opts)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testAPI{t: t, url: hs.URL, store: st, srv: srv}
}

func putDataplane(t *testing.T, api *testAPI, name, service string) {
	t.Helper()
	res := api.do(http.MethodPut, "/meshes/default/dataplanes/"+name,
		[]byte(`{"type":"Dataplane","networking":{"address":"10.0.0.1","inbound":[{"port":80,"tags":{"kuma.io/service":"`+service+`"}}]}}`))
	require.Equal(t, http.StatusCreated, res.status, "%s", res.body)
}

func TestDataplaneOverviewsJoinInsights(t *testing.T) {
	api := newDataplaneAPI(t, nil, nil)
	putDataplane(t, api, "web-1", "web")
	putDataplane(t, api, "db-1", "db")
	now := time.Now().UTC()
	_, err := api.store.Create(t.Context(), &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "default", Name: "web-1"},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{ID: "s", ControlPlaneInstanceID: "cp-1", ConnectTime: &now}}}})
	require.NoError(t, err)

	one := api.do(http.MethodGet, "/meshes/default/dataplanes/web-1/_overview", nil).json(t)
	require.Equal(t, "DataplaneOverview", one["type"])
	require.Equal(t, "10.0.0.1", one["dataplane"].(map[string]any)["networking"].(map[string]any)["address"])
	sub := one["dataplaneInsight"].(map[string]any)["subscriptions"].([]any)[0].(map[string]any)
	require.Equal(t, "cp-1", sub["controlPlaneInstanceId"])

	list := api.do(http.MethodGet, "/meshes/default/dataplanes/_overview", nil).json(t)
	require.EqualValues(t, 2, list["total"])
	db := list["items"].([]any)[0].(map[string]any)
	require.Equal(t, "db-1", db["name"])
	require.NotContains(t, db, "dataplaneInsight", "never connected")

	byTag := api.do(http.MethodGet, "/meshes/default/dataplanes/_overview?tag=kuma.io/service:web", nil).json(t)
	require.EqualValues(t, 1, byTag["total"])
	require.Equal(t, "web-1", byTag["items"].([]any)[0].(map[string]any)["name"])
	require.Equal(t, http.StatusBadRequest, api.do(http.MethodGet, "/meshes/default/dataplanes/_overview?tag=nocolon", nil).status)
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/default/dataplanes/nope/_overview", nil).status)
}

func TestDataplaneConfigInspection(t *testing.T) {
	insp := &fakeInspector{}
	api := newDataplaneAPI(t, insp, nil)
	putDataplane(t, api, "web-1", "web")
	putDataplane(t, api, "broken", "x")

	res := api.do(http.MethodGet, "/meshes/default/dataplanes/web-1/_config", nil)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, string(res.body), "inbound:10.0.0.1:80")
	require.Equal(t, []resource.Key{{Mesh: "default", Name: "web-1"}}, insp.calls)

	yaml := api.do(http.MethodGet, "/meshes/default/dataplanes/web-1/_config?format=yaml&include=ir", nil)
	require.Equal(t, "application/yaml", yaml.header.Get("Content-Type"))
	require.Contains(t, string(yaml.body), "ir:\n  identity:\n    mesh: default")

	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/default/dataplanes/nope/_config", nil).status)
	require.Equal(t, http.StatusInternalServerError, api.do(http.MethodGet, "/meshes/default/dataplanes/broken/_config", nil).status)

	// Which policies apply, and why.
	rules := api.do(http.MethodGet, "/meshes/default/dataplanes/web-1/_rules", nil)
	require.Equal(t, http.StatusOK, rules.status)
	require.JSONEq(t, `{"mesh":"default","dataplane":"web-1","items":[{"type":"MeshTimeout","policies":[]}]}`, string(rules.body))
	rulesYAML := api.do(http.MethodGet, "/meshes/default/dataplanes/web-1/_rules?format=yaml", nil)
	require.Equal(t, "application/yaml", rulesYAML.header.Get("Content-Type"))
	require.Contains(t, string(rulesYAML.body), "dataplane: web-1")
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/meshes/default/dataplanes/nope/_rules", nil).status)
	require.Equal(t, http.StatusInternalServerError, api.do(http.MethodGet, "/meshes/default/dataplanes/broken/_rules", nil).status)

	global := newDataplaneAPI(t, nil, nil)
	putDataplane(t, global, "web-1", "web")
	for _, path := range []string{"_config", "_rules"} {
		notServed := global.do(http.MethodGet, "/meshes/default/dataplanes/web-1/"+path, nil)
		require.Equal(t, http.StatusBadRequest, notServed.status)
		require.Contains(t, notServed.apiError(t).Detail, "data-plane inspection is not available")
	}
}

func TestDataplaneTokens(t *testing.T) {
	tokens := dptoken.New(pki.NewMemorySecretStore(), dptoken.Options{})
	api := newDataplaneAPI(t, nil, tokens)

	res := api.do(http.MethodPost, "/tokens/dataplane", []byte(`{"mesh":"default","name":"web-1","tags":{"kuma.io/service":["web"]},"validFor":"24h"}`))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	token := strings.TrimSpace(string(res.body))
	claims, err := tokens.Verify(t.Context(), token, "default", "web-1", map[string][]string{"kuma.io/service": {"web"}})
	require.NoError(t, err, "the issued token is valid for that dataplane")
	require.WithinDuration(t, time.Now().Add(24*time.Hour), claims.ExpiresAt.Time, time.Minute)
	_, err = tokens.Verify(t.Context(), token, "default", "web-2", nil)
	require.Error(t, err, "and only for it")

	for body, field := range map[string]string{
		`{"name":"x"}`:                         "mesh",
		`{"mesh":"nope"}`:                      "mesh",
		`{"mesh":"default","validFor":"soon"}`: "validFor",
		`{"mesh":"default","bogus":1}`:         "bogus",
		`{"mesh":"default","name":"Bad Name"}`: "name",
	} {
		bad := api.do(http.MethodPost, "/tokens/dataplane", []byte(body))
		require.Equal(t, http.StatusBadRequest, bad.status, body)
		e := bad.apiError(t)
		require.Equal(t, field, e.InvalidParameters[0].Field, body)
	}

	none := newDataplaneAPI(t, nil, nil)
	require.Equal(t, http.StatusBadRequest, none.do(http.MethodPost, "/tokens/dataplane", []byte(`{"mesh":"default"}`)).status)
}

func TestRevokingDataplaneTokens(t *testing.T) {
	tokens := dptoken.New(pki.NewMemorySecretStore(), dptoken.Options{})
	api := newDataplaneAPI(t, nil, tokens)
	issue := func(name string) string {
		res := api.do(http.MethodPost, "/tokens/dataplane", []byte(`{"mesh":"default","name":"`+name+`"}`))
		require.Equal(t, http.StatusOK, res.status)
		return string(res.body)
	}
	first, second := issue("web-1"), issue("web-2")

	res := api.do(http.MethodPost, "/tokens/dataplane/revoke", []byte(`{"token":"`+first+`"}`))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	require.Equal(t, "default", res.json(t)["mesh"])
	_, err := tokens.Verify(t.Context(), first, "default", "web-1", nil)
	require.ErrorIs(t, err, dptoken.ErrRevoked)
	_, err = tokens.Verify(t.Context(), second, "default", "web-2", nil)
	require.NoError(t, err, "other tokens still work")

	claims, err := dptoken.ParseUnverified(second)
	require.NoError(t, err)
	res = api.do(http.MethodPost, "/tokens/dataplane/revoke", []byte(`{"mesh":"default","id":"`+claims.ID+`"}`))
	require.Equal(t, http.StatusOK, res.status, "%s", res.body)
	_, err = tokens.Verify(t.Context(), second, "default", "web-2", nil)
	require.ErrorIs(t, err, dptoken.ErrRevoked, "revoked by id")

	for body, field := range map[string]string{
		`{"token":"not-a-jwt"}`:                         "token",
		`{"mesh":"default"}`:                            "id",
		`{"id":"x"}`:                                    "mesh",
		`{"mesh":"nope","id":"x"}`:                      "mesh",
		`{"token":"` + issue("web-3") + `","mesh":"b"}`: "mesh",
	} {
		bad := api.do(http.MethodPost, "/tokens/dataplane/revoke", []byte(body))
		require.Equal(t, http.StatusBadRequest, bad.status, body)
		require.Equal(t, field, bad.apiError(t).InvalidParameters[0].Field, body)
	}
}

func TestMeshAndGlobalInsights(t *testing.T) {
	api := newDataplaneAPI(t, nil, nil)
	putDataplane(t, api, "web-1", "web")
	putDataplane(t, api, "db-1", "db")
	require.Equal(t, http.StatusCreated, api.do(http.MethodPut, "/meshes/default/meshtimeouts/t",
		[]byte(`{"type":"MeshTimeout","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1s"}}]}}`)).status)
	require.Equal(t, http.StatusCreated, api.do(http.MethodPut, "/meshes/secure",
		[]byte(`{"type":"Mesh","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin"}]}}`)).status)
	now := time.Now().UTC()
	_, err := api.store.Create(t.Context(), &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "default", Name: "web-1"},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{ID: "s", ControlPlaneInstanceID: "cp", ConnectTime: &now}}}})
	require.NoError(t, err)

	list := api.do(http.MethodGet, "/mesh-insights", nil).json(t)
	require.EqualValues(t, 2, list["total"])
	def := list["items"].([]any)[0].(map[string]any)
	require.Equal(t, "default", def["name"])
	require.Equal(t, map[string]any{"total": 2.0, "online": 1.0, "offline": 1.0}, def["dataplanes"])
	require.Equal(t, 1.0, def["policies"].(map[string]any)["MeshTimeout"].(map[string]any)["total"])
	secure := api.do(http.MethodGet, "/mesh-insights/secure", nil).json(t)
	require.Equal(t, "ca-1", secure["mTLS"].(map[string]any)["enabledBackend"])
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/mesh-insights/nope", nil).status)

	global := api.do(http.MethodGet, "/global-insight", nil).json(t)
	require.Equal(t, 2.0, global["meshes"].(map[string]any)["total"])
	require.Equal(t, map[string]any{"total": 2.0, "online": 1.0, "offline": 1.0}, global["dataplanes"])
}
