package version

import (
	"encoding/json"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGetReportsProductAndKumaLevel(t *testing.T) {
	info := Get()
	require.Equal(t, "Atoll", info.Product)
	require.Equal(t, "2.14.3", info.BasedOnKuma)
	require.NotEmpty(t, info.Version)
	require.NotEmpty(t, info.GitCommit)
	require.NotEmpty(t, info.BuildDate)
	require.Contains(t, info.String(), "Atoll "+info.Version)
	require.Contains(t, info.String(), "based on Kuma 2.14.3")
}

func TestInfoJSONUsesKumaFieldNames(t *testing.T) {
	raw, err := json.Marshal(Info{Product: Product, Version: "v1.0.0", BasedOnKuma: BasedOnKuma})
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(raw, &fields))
	require.Equal(t, "Atoll", fields["product"])
	require.Equal(t, "v1.0.0", fields["version"])
	require.Equal(t, "2.14.3", fields["basedOnKuma"])
}

func TestFillFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Version: "v0.9.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		},
	}
	tests := []struct {
		name string
		in   Info
		want Info
	}{
		{
			name: "unstamped build takes everything from the toolchain",
			in:   Info{},
			want: Info{Version: "v0.9.0", GitCommit: "abc123", BuildDate: "2026-01-02T03:04:05Z"},
		},
		{
			name: "linker stamps win",
			in:   Info{Version: "v1.0.0", GitCommit: "fff", BuildDate: "today"},
			want: Info{Version: "v1.0.0", GitCommit: "fff", BuildDate: "today"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			fillFromBuildInfo(&got, bi)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("development builds keep no module version", func(t *testing.T) {
		var got Info
		fillFromBuildInfo(&got, &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}})
		require.Empty(t, got.Version)
	})
}
