package build

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
	"github.com/atoll-mesh/atoll/policies/all"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testIdentity stands for the workload certificate pkg/xds/identity issues.
var testIdentity = &Identity{
	CertificateChain: "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n",
	PrivateKey:       "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
	TrustBundle:      "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
}

func plugins(t testing.TB) *policy.Registry {
	t.Helper()
	r, err := all.PluginRegistry()
	require.NoError(t, err)
	return r
}

// loadSnapshot reads a universal YAML stream (a Mesh first) into a snapshot.
func loadSnapshot(t testing.TB, path string) *snapshot.Snapshot {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return snapshotOf(t, string(data))
}

func snapshotOf(t testing.TB, docs string) *snapshot.Snapshot {
	t.Helper()
	reg, err := all.Registry()
	require.NoError(t, err)
	var mesh *resource.Resource
	var rest []*resource.Resource
	for _, d := range resource.SplitYAML([]byte(docs)) {
		res, err := reg.DecodeYAML(d.Data)
		require.NoError(t, err, "document %d", d.Index)
		d, _ := reg.Get(res.Type)
		require.Empty(t, resource.Validate(d, res), "document %d is invalid", d.Name)
		if res.Type == resource.MeshType {
			mesh = res
			continue
		}
		rest = append(rest, res)
	}
	snap, err := snapshot.FromResources(mesh, rest...)
	require.NoError(t, err)
	return snap
}

// TestGolden builds every dataplane of testdata/<case>.input.yaml and
// compares the IR, as YAML, with testdata/<case>.golden.yaml. Every proxy
// must also translate to valid Envoy resources, and a Batch must build the
// same proxy as Build.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	reg := plugins(t)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.yaml")
		t.Run(name, func(t *testing.T) {
			snap := loadSnapshot(t, in)
			batch := NewBatch(snap, reg)
			var got bytes.Buffer
			for i, dp := range snap.Dataplanes() {
				p, err := Build(Input{Snapshot: snap, Dataplane: dp.Name(), Identity: testIdentity, Plugins: reg})
				require.NoError(t, err)
				if i > 0 {
					got.WriteString("---\n")
				}
				got.WriteString("# dataplane " + dp.Name() + "\n")
				y, err := ir.EncodeYAML(p)
				require.NoError(t, err)
				got.Write(y)

				r, err := translate.Translate(p)
				require.NoError(t, err, "the built proxy translates")
				require.NoError(t, translate.Check(r))

				shared, err := batch.Build(dp.Name(), "", testIdentity)
				require.NoError(t, err)
				require.Empty(t, cmp.Diff(p, shared.Proxy), "a Batch builds what Build builds")
			}
			golden := filepath.Join("testdata", name+".golden.yaml")
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./pkg/xds/... -update to create it")
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("%s differs (-want +got); run with -update if the change is intended:\n%s", golden, diff)
			}
		})
	}
}
