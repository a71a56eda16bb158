package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesAreCurrent fails when a change to the API types, the
// routes or the configuration was not followed by `make generate`.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	docs, err := fieldDocs("../../api", "github.com/atoll-mesh/atoll/api")
	require.NoError(t, err)
	src, err := renderDescriptions(docs)
	require.NoError(t, err)
	current, err := os.ReadFile("../../api/schema/zz_generated.descriptions.go")
	require.NoError(t, err)
	require.True(t, string(src) == string(current), "api/schema/zz_generated.descriptions.go is stale: run make generate")

	files, err := renderReference()
	require.NoError(t, err)
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("../../docs/reference", name))
		require.NoError(t, err)
		require.True(t, string(want) == string(got), "docs/reference/%s is stale: run make generate", name)
	}
}
