package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func TestControlPlanesAddUseListRemovePersistToTheConfigFile(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, nil)

	// No config yet: the local default is used, and list says so.
	require.Equal(t, "No control planes configured in "+c.configPath+"; commands use http://localhost:5681\n",
		c.ok("config", "control-planes", "list"))

	out := c.ok("config", "control-planes", "add", "--name", "first", "--address", cp.url, "--auth-token", "s3cret")
	require.Equal(t, "added control plane \"first\" ("+cp.url+": Atoll 1.2.3-test)\nswitched to control plane \"first\"\n", out)

	st, err := os.Stat(c.configPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the config may hold tokens")

	// The second one is not contacted (--skip-check), and becomes current.
	c.ok("config", "control-planes", "add", "--name", "second", "--address", "https://cp.example.com:5682", "--skip-check", "--skip-verify")
	require.Equal(t, ""+
		"ACTIVE   NAME     ADDRESS\n"+
		"         first    "+cp.url+"\n"+
		"*        second   https://cp.example.com:5682\n",
		c.ok("config", "control-planes", "list"))

	require.Equal(t, "switched to control plane \"first\"\n", c.ok("config", "control-planes", "use", "first"))
	cfg, err := LoadConfig(c.configPath)
	require.NoError(t, err)
	want := &Config{CurrentControlPlane: "first", ControlPlanes: []ControlPlane{
		{Name: "first", Address: cp.url, AuthToken: "s3cret"},
		{Name: "second", Address: "https://cp.example.com:5682", SkipVerify: true},
	}}
	require.Empty(t, cmp.Diff(want, cfg))

	// Commands now talk to "first".
	require.Contains(t, c.ok("get", "meshes"), "default")

	// Re-adding a name needs --overwrite.
	r := c.fail("config", "control-planes", "add", "--name", "second", "--address", cp.url, "--skip-check")
	require.Equal(t, "Error: control plane \"second\" already exists: choose another name or add --overwrite\n", r.stderr)
	c.ok("config", "control-planes", "add", "--name", "second", "--address", cp.url, "--overwrite", "--no-switch")
	cfg, err = LoadConfig(c.configPath)
	require.NoError(t, err)
	require.Equal(t, "first", cfg.CurrentControlPlane)
	require.Equal(t, cp.url, cfg.ControlPlanes[1].Address)

	r = c.fail("config", "control-planes", "use", "third")
	require.Equal(t, "Error: there is no control plane named \"third\" (see \"atollctl config control-planes list\")\n", r.stderr)

	require.Equal(t, "removed control plane \"first\"\nswitched to control plane \"second\"\n",
		c.ok("config", "control-planes", "remove", "first"))
	require.Equal(t, "removed control plane \"second\"\nno control plane left; commands use http://localhost:5681\n",
		c.ok("config", "control-planes", "remove", "second"))
}

func TestControlPlanesAddChecksTheServer(t *testing.T) {
	c := newCLI(t, nil)

	kuma := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"product":"Kuma","version":"2.14.3"}`))
	}))
	t.Cleanup(kuma.Close)
	r := c.fail("config", "control-planes", "add", "--name", "k", "--address", kuma.URL)
	require.Equal(t, "Error: "+kuma.URL+" is a Kuma control plane, not Atoll (use --skip-check to add it anyway)\n", r.stderr)

	down := closedAddress(t)
	r = c.fail("config", "control-planes", "add", "--name", "down", "--address", down)
	require.Contains(t, r.stderr, "Error: checking control plane \"down\" (use --skip-check to add it without checking): reading the control plane index: could not reach the control plane at "+down+": ")
	require.Contains(t, r.stderr, "connection refused")

	_, err := os.Stat(c.configPath)
	require.ErrorIs(t, err, os.ErrNotExist, "a failed add must not write the config")

	r = c.fail("config", "control-planes", "add", "--name", "x", "--address", "localhost:5681")
	require.Contains(t, r.stderr, "Error: invalid control plane address \"localhost:5681\": the scheme must be http or https\n\nUsage:")
}

func TestConfigPathOverrides(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, nil)

	viaEnv := filepath.Join(t.TempDir(), "env-config")
	c.env[ConfigEnv] = viaEnv
	c.ok("config", "control-planes", "add", "--name", "env", "--address", cp.url)
	_, err := os.Stat(viaEnv)
	require.NoError(t, err)
	_, err = os.Stat(c.configPath)
	require.ErrorIs(t, err, os.ErrNotExist)

	viaFlag := filepath.Join(t.TempDir(), "flag-config")
	c.ok("--config", viaFlag, "config", "control-planes", "add", "--name", "flag", "--address", cp.url)
	cfg, err := LoadConfig(viaFlag)
	require.NoError(t, err)
	require.Equal(t, "flag", cfg.CurrentControlPlane)
	cfg, err = LoadConfig(viaEnv)
	require.NoError(t, err)
	require.Len(t, cfg.ControlPlanes, 1, "--config wins over $ATOLLCTL_CONFIG")

	// --cp picks a configured control plane for one command; --address a URL.
	require.Contains(t, c.ok("get", "meshes", "--cp", "env"), "default")
	r := c.fail("get", "meshes", "--cp", "nope")
	require.Contains(t, r.stderr, "there is no control plane named \"nope\"")
	require.Contains(t, newCLI(t, nil).ok("get", "meshes", "--address", cp.url), "default")
}

func TestCorruptConfigIsReported(t *testing.T) {
	c := newCLI(t, nil)
	c.writeFile("home/.atollctl/config", "controlPlanes: [{name: a, adress: x}]\n")
	r := c.fail("get", "meshes")
	require.Contains(t, r.stderr, "Error: reading config "+c.configPath+": ")
	require.Contains(t, r.stderr, "line 1: field adress not found")
}
