package translate

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden translates every testdata/<case>.ir.yaml and compares the
// resources, as YAML, with testdata/<case>.golden.yaml.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.ir.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".ir.yaml")
		t.Run(name, func(t *testing.T) {
			p := loadIR(t, in)
			r, err := Translate(p)
			require.NoError(t, err)
			require.NoError(t, Check(r), "every Any unpacked and validated, every reference resolved")
			got, err := r.EncodeYAML()
			require.NoError(t, err)

			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/xds/... -update to create it")
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs from the translation (-want +got); run with -update if the change is intended:\n%s", golden, diff)
			}

			// The same IR translates to the same bytes every time.
			again, err := Translate(p)
			require.NoError(t, err)
			second, err := again.EncodeYAML()
			require.NoError(t, err)
			require.Equal(t, string(got), string(second))
		})
	}
}

func loadIR(t testing.TB, path string) *ir.Proxy {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	p, err := ir.DecodeYAML(data)
	require.NoError(t, err)
	return p
}
