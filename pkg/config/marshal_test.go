package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMarshalMasksPasswordAndRoundTrips(t *testing.T) {
	cfg := Default()
	cfg.Mode = ModeGlobal
	cfg.Store.Type = StorePostgres
	cfg.Store.Postgres.Password = "s3cret"
	cfg.APIServer.CORSAllowedDomains = []string{`https://gui\.example`}
	cfg.General.WorkDir = "1234" // a string that looks like a number stays a string

	out, err := cfg.Marshal()
	require.NoError(t, err)
	text := string(out)
	require.NotContains(t, text, "s3cret")
	require.Contains(t, text, "password: '*****'")
	require.True(t, strings.HasPrefix(text, "mode: global\nenvironment: universal\n"), "keys keep the order of the Config type:\n%s", text)
	require.Contains(t, text, "  http:\n    interface: 0.0.0.0\n    port: 5681\n")
	require.Contains(t, text, "connectionTimeout: 5s")
	require.Equal(t, text, cfg.String())
	require.Equal(t, "s3cret", cfg.Store.Postgres.Password, "Marshal does not change its receiver")

	// The output is a configuration file again.
	back := Default()
	require.NoError(t, DecodeYAML(&back, out))
	want := cfg
	want.Store.Postgres.Password = Mask
	require.Equal(t, want, back)
}

func TestMarshalKeepsEmptyValuesVisible(t *testing.T) {
	cfg := Default()
	cfg.APIServer.CORSAllowedDomains = nil
	out, err := cfg.Marshal()
	require.NoError(t, err)
	require.Contains(t, string(out), `password: ""`, "an unset password is shown as unset, not masked")
	require.Contains(t, string(out), "corsAllowedDomains: []")
}
