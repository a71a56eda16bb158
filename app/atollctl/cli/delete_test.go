package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDelete(t *testing.T) {
	c, cp := seeded(t)

	require.Equal(t, "deleted MeshTimeout \"to-backend\"\n", c.ok("delete", "meshtimeout", "to-backend", "-m", "payments"))
	r := c.fail("delete", "meshtimeout", "to-backend", "-m", "payments")
	require.Equal(t, "Error: there is no MeshTimeout with name \"to-backend\"\n", r.stderr)

	// Any name of the type works, and mesh-scoped types default to -m default.
	require.Equal(t, "deleted MeshTimeout \"in-default\"\n", c.ok("delete", "MeshTimeout", "in-default"))
	require.Equal(t, "deleted Dataplane \"web-1\"\n", c.ok("delete", "dp", "web-1", "--mesh", "payments"))

	// Deleting a mesh deletes what is in it.
	require.Equal(t, "deleted Mesh \"payments\"\n", c.ok("delete", "mesh", "payments"))
	require.Equal(t, 0, cp.count(t, "Dataplane"))
	r = c.fail("delete", "mesh", "payments")
	require.Equal(t, "Error: there is no Mesh with name \"payments\"\n", r.stderr)
	require.Contains(t, cp.writes(), "DELETE /meshes/payments")

	r = c.fail("delete", "meshtimeout")
	require.True(t, strings.HasPrefix(r.stderr, "Error: \"atollctl delete meshtimeout\" needs the name of the resource (got 0 arguments)\n\nUsage:"), r.stderr)
	r = c.fail("delete", "dataplane-insight", "x")
	require.Equal(t, "Error: DataplaneInsight is read-only: the control plane writes it\n", r.stderr)
}

func TestDeleteForceAndServerErrors(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"type":"/std-errors","status":409,"title":"Could not delete a resource","detail":"Mesh \"m\": mesh has online dataplanes: 2 dataplane(s) are online; stop them or delete with force"}`))
	}))
	t.Cleanup(srv.Close)
	c := newCLI(t, nil)
	r := c.fail("delete", "mesh", "m", "--force", "--address", srv.URL)
	require.Equal(t, "Error: Could not delete a resource (Mesh \"m\": mesh has online dataplanes: 2 dataplane(s) are online; stop them or delete with force)\n", r.stderr)
	require.Equal(t, []string{"DELETE /meshes/m?force=true"}, got)
}
