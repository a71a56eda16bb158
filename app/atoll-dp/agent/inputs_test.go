package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoadDataplane(t *testing.T) {
	reg := coreRegistry(t)

	t.Run("a valid file becomes universal JSON", func(t *testing.T) {
		dp, err := loadDataplane(reg, writeFile(t, "dp.yaml", dataplaneYAML), "", "")
		require.NoError(t, err)
		require.Equal(t, "demo", dp.mesh)
		require.Equal(t, "web-1", dp.name)
		var doc map[string]any
		require.NoError(t, json.Unmarshal([]byte(dp.json), &doc))
		require.Equal(t, "Dataplane", doc["type"])
		require.Equal(t, "web-1", doc["name"])
		require.Equal(t, "127.0.0.1", doc["networking"].(map[string]any)["address"])
	})

	t.Run("flags fill a missing name and mesh", func(t *testing.T) {
		doc := "type: Dataplane\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n"
		dp, err := loadDataplane(reg, writeFile(t, "dp.yaml", doc), "web-7", "demo")
		require.NoError(t, err)
		require.Equal(t, "web-7", dp.name)
		require.Contains(t, dp.json, `"mesh":"demo"`)
	})

	errs := []struct {
		name, doc, flagName, flagMesh, want string
	}{
		{"field path of a validation error", "type: Dataplane\nmesh: demo\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 0\n    tags:\n      kuma.io/service: web\n",
			"", "", "is invalid: networking.inbound[0].port: "},
		{"unknown field", "type: Dataplane\nmesh: demo\nname: web-1\nnetworking:\n  adress: 10.0.0.1\n", "", "", "networking.adress: unknown field"},
		{"wrong type", "type: Mesh\nname: demo\n", "", "", "type in body should be one of [Dataplane], got Mesh"},
		{"name given both ways", dataplaneYAML, "web-2", "", `--name "web-2" does not match name "web-1" in dataplane file`},
		{"mesh given both ways", dataplaneYAML, "", "prod", `--mesh "prod" does not match mesh "demo" in dataplane file`},
		{"missing mesh", "type: Dataplane\nname: web-1\nnetworking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n    tags:\n      kuma.io/service: web\n", "", "", "mesh: must be set"},
		{"two documents", dataplaneYAML + "---\n" + dataplaneYAML, "", "", "holds 2 documents (the second starts on line 12)"},
		{"empty", "# nothing\n", "", "", "is empty: it must hold one Dataplane"},
		{"malformed YAML", "networking: [\n", "", "", "malformed YAML"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "dp.yaml", tt.doc)
			_, err := loadDataplane(reg, file, tt.flagName, tt.flagMesh)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			require.Contains(t, err.Error(), file, "names the file")
			require.NotContains(t, err.Error(), "\n")
		})
	}

	t.Run("unreadable file", func(t *testing.T) {
		_, err := loadDataplane(reg, filepath.Join(t.TempDir(), "nope.yaml"), "", "")
		require.ErrorContains(t, err, "cannot read dataplane file: open ")
		require.ErrorContains(t, err, "nope.yaml: no such file or directory")
	})

	t.Run("flags alone must be valid names", func(t *testing.T) {
		dp, err := loadDataplane(reg, "", "web-1", "demo")
		require.NoError(t, err)
		require.Equal(t, dataplaneRef{mesh: "demo", name: "web-1"}, dp)
		_, err = loadDataplane(reg, "", "Web_1", "demo")
		require.ErrorContains(t, err, `--name: "Web_1" is not a valid name`)
	})
}

func TestTokenSource(t *testing.T) {
	file := writeFile(t, "token", "  abc.def.ghi\n")
	src := tokenSource{file: file}
	tok, err := src.get()
	require.NoError(t, err)
	require.Equal(t, "abc.def.ghi", tok)

	// A rotated token is read on the next request.
	require.NoError(t, os.WriteFile(file, []byte("new.token\n"), 0o600))
	tok, err = src.get()
	require.NoError(t, err)
	require.Equal(t, "new.token", tok)

	require.NoError(t, os.WriteFile(file, []byte("\n"), 0o600))
	_, err = src.get()
	require.EqualError(t, err, "dataplane token file "+file+" is empty")

	missing := filepath.Join(t.TempDir(), "token")
	_, err = tokenSource{file: missing}.get()
	require.EqualError(t, err, "dataplane token file "+missing+" does not exist (--dataplane-token-file)")

	tok, err = tokenSource{token: " inline "}.get()
	require.NoError(t, err)
	require.Equal(t, "inline", tok)
}
