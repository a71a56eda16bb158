package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"
)

func TestOpenAPIDocumentIsValidAndCoversEveryRoute(t *testing.T) {
	api := newAPI(t)
	res := api.do(http.MethodGet, "/openapi.json", nil)
	require.Equal(t, http.StatusOK, res.status)

	doc, err := openapi3.NewLoader().LoadFromData(res.body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(t.Context()), "the document must be valid OpenAPI 3")

	routes, ok := api.srv.Handler().(chi.Routes)
	require.True(t, ok)
	n := 0
	err = chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		n++
		route = strings.TrimSuffix(route, "/")
		if route == "" {
			route = "/"
		}
		item := doc.Paths.Find(route)
		require.NotNil(t, item, "route %s %s is not in the OpenAPI document", method, route)
		require.NotNil(t, item.GetOperation(method), "%s %s has no operation in the document", method, route)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, n, 20)

	mt := doc.Components.Schemas["MeshTimeout"].Value
	require.NotNil(t, mt)
	spec := mt.Properties["spec"].Value
	require.Contains(t, spec.Properties, "targetRef")
	dp := doc.Components.Schemas["Dataplane"].Value
	require.Contains(t, dp.Properties, "networking", "inline specs sit at the top level")
}
