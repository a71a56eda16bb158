package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/version"
)

func TestVersion(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	client := "Client: Atoll " + version.Get().Version + "\n"
	require.Equal(t, client+"Server: Atoll 1.2.3-test\n", c.ok("version"))

	out := c.ok("version", "--detailed")
	require.Contains(t, out, "Client: "+version.Get().String()+"\n")
	require.Contains(t, out, `"instanceId": "i-1"`)

	// An unreachable control plane is only a warning.
	down := closedAddress(t)
	r := c.run("version", "--address", down)
	require.Equal(t, 0, r.code)
	require.Equal(t, client, r.stdout)
	require.True(t, strings.HasPrefix(r.stderr, "WARNING: could not read the control plane's version: could not reach the control plane at "+down+": "), r.stderr)
}

func TestHelpListsEveryType(t *testing.T) {
	c := newCLI(t, nil)
	out := c.ok("get", "--help")
	for _, want := range []string{"meshes", "dataplanes", "meshtimeouts", "Show MeshTimeout resources (mesh-scoped policy; also meshtimeout, mt)", "zones"} {
		require.Contains(t, out, want)
	}
	out = c.ok("delete", "--help")
	require.Contains(t, out, "meshtimeout")
	require.NotContains(t, out, "dataplane-insight ", "read-only types cannot be deleted")
	require.Contains(t, c.ok("apply", "--help"), "meshtimeouts")
}
