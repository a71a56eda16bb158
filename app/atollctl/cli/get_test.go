package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// moreResources are applied after testdata/kuma-universal.yaml.
const moreResources = `type: Dataplane
mesh: payments
name: web-1
networking:
  address: 10.0.0.7
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
        version: v2
    - port: 9090
      tags:
        kuma.io/service: web-admin
        kuma.io/protocol: http
---
type: MeshTimeout
mesh: payments
name: to-backend
labels:
  team: core
spec:
  targetRef:
    kind: MeshService
    name: backend
  rules:
    - default:
        idleTimeout: 1m
---
type: MeshTimeout
mesh: payments
name: subset
spec:
  targetRef:
    kind: MeshSubset
    tags:
      version: v2
  rules:
    - default:
        idleTimeout: 1m
---
type: MeshTimeout
name: in-default
spec:
  rules:
    - default:
        idleTimeout: 1m
`

// seeded returns a CLI against a control plane holding the Kuma universal
// documents plus moreResources, with the clock 20 minutes after the store's
// start (each write took one store minute).
func seeded(t *testing.T) (*cli, *controlPlane) {
	t.Helper()
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	c.ok("apply", "-f", "testdata/kuma-universal.yaml")
	c.stdin = moreResources
	c.ok("apply", "-f", "-")
	c.stdin = ""
	c.now = t0.Add(20 * time.Minute)
	return c, cp
}

func TestGetTables(t *testing.T) {
	c, _ := seeded(t)
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "meshes"},
		{"get", "dataplanes", "-m", "payments"},
		{"get", "meshtimeouts", "-m", "payments"},
		{"get", "meshtimeouts", "-A", "--size", "2"},
		{"get", "meshtimeouts", "-A", "--size", "2", "--offset", "2"},
		{"get", "mt", "timeout-backend", "-m", "payments"},
		{"get", "meshtimeouts", "-m", "payments", "-l", "team=core"},
		{"get", "meshtimeouts", "-A", "--name-contains", "sub"},
	} {
		b.WriteString("$ atollctl " + strings.Join(args, " ") + "\n")
		b.WriteString(c.ok(args...))
		b.WriteString("\n")
	}
	golden(t, "get-tables.txt", b.String())
}

func TestGetListAsYAMLAndJSON(t *testing.T) {
	c, cp := seeded(t)
	out := c.ok("get", "meshtimeouts", "-A", "--size", "1", "-o", "yaml")
	require.True(t, strings.HasPrefix(out, "total: 4\nitems:\n  - type: MeshTimeout\n    mesh: default\n    name: in-default\n"), out)
	require.True(t, strings.HasSuffix(out, "next: "+cp.url+"/meshtimeouts?offset=1&size=1\n"), out)

	var list struct {
		Total int              `json:"total"`
		Items []map[string]any `json:"items"`
		Next  *string          `json:"next"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.ok("get", "meshes", "-o", "json")), &list))
	require.Equal(t, 2, list.Total)
	require.Len(t, list.Items, 2)
	require.Equal(t, "default", list.Items[0]["name"])
	require.Nil(t, list.Next)

	out = c.ok("get", "zones", "-o", "yaml")
	require.Equal(t, "total: 0\nitems: []\nnext: null\n", out)
}

func TestGetNotFoundAndEmpty(t *testing.T) {
	c, _ := seeded(t)
	r := c.fail("get", "meshtimeout", "nope", "-m", "payments")
	require.Equal(t, "Error: No resources found in payments mesh\n", r.stderr)
	r = c.fail("get", "mesh", "nope")
	require.Equal(t, "Error: No resources found\n", r.stderr)
	r = c.fail("get", "dataplane", "backend-1")
	require.Equal(t, "Error: No resources found in default mesh\n", r.stderr, "mesh-scoped types default to -m default")

	r = c.run("get", "zones")
	require.Equal(t, 0, r.code)
	require.Equal(t, "No resources found\n", r.stderr)
	require.Empty(t, r.stdout)
	r = c.run("get", "dataplanes")
	require.Equal(t, 0, r.code)
	require.Equal(t, "No resources found in default mesh\n", r.stderr)

	r = c.fail("get", "meshtimeouts", "-m", "nope")
	require.Equal(t, "Error: Mesh not found (mesh \"nope\" does not exist; create it first)\n", r.stderr)
}

func TestGetAcceptsEveryNameOfAType(t *testing.T) {
	c, _ := seeded(t)
	want := c.ok("get", "meshtimeouts", "-m", "payments")
	for _, name := range []string{"meshtimeout", "mt", "MeshTimeout", "MESHTIMEOUTS"} {
		require.Equal(t, want, c.ok("get", name, "-m", "payments"), name)
	}
}

func TestGetUsageErrors(t *testing.T) {
	c := newCLI(t, nil)
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"get"}, "Error: get needs a resource type: one of the commands below\n"},
		{[]string{"get", "widgets"}, "Error: unknown resource type \"widgets\"; known types: "},
		{[]string{"get", "meshes", "-o", "xml"}, "Error: invalid --output \"xml\": use table, yaml or json\n"},
		{[]string{"get", "meshtimeouts", "-A", "-m", "x"}, "Error: --all-meshes and --mesh are mutually exclusive\n"},
		{[]string{"get", "meshtimeout", "a", "-A"}, "Error: --all-meshes lists resources: it cannot be used with a name\n"},
		{[]string{"get", "meshes", "-A"}, "Error: --all-meshes applies to mesh-scoped types only: Mesh is global\n"},
		{[]string{"get", "meshes", "a", "b"}, "Error: \"atollctl get meshes\" takes at most one resource name (got 2 arguments)\n"},
		{[]string{"get", "meshtimeouts", "-l", "team"}, "Error: --selector \"team\": expected KEY=VALUE\n"},
		{[]string{"bogus"}, "Error: unknown command \"bogus\" for \"atollctl\"\n"},
	} {
		r := c.fail(tc.args...)
		require.True(t, strings.HasPrefix(r.stderr, tc.err), "%v:\n%s", tc.args, r.stderr)
		require.Contains(t, r.stderr, "\nUsage:\n", "usage errors print the usage: %v", tc.args)
	}
}

func TestGetReportsAnUnreachableControlPlane(t *testing.T) {
	c := newCLI(t, nil)
	down := closedAddress(t)
	r := c.fail("get", "meshes", "--address", down)
	require.True(t, strings.HasPrefix(r.stderr, "Error: could not reach the control plane at "+down+": "), r.stderr)
	require.NotContains(t, r.stderr, "Usage:")
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{-time.Minute, "0s"},
		{0, "0s"},
		{59 * time.Second, "59s"},
		{5*time.Minute + 30*time.Second, "5m"},
		{3*time.Hour + 59*time.Minute, "3h"},
		{49 * time.Hour, "2d"},
		{800 * 24 * time.Hour, "2y"},
	} {
		require.Equal(t, tc.want, age(now, now.Add(-tc.ago)), tc.ago.String())
	}
	require.Equal(t, "<unknown>", age(now, time.Time{}))
}
