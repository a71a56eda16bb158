// Package arch checks the dependency direction of DESIGN §3: lower layers
// never import higher ones, the API and the IR stay free of Envoy protos,
// policies never import each other, and the CLI stays light.
package arch

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/atoll-mesh/atoll/"

// layers ranks package paths (longest prefix wins). A package may import
// packages of its own rank or lower. Every package of the module must match
// an entry, so a new package is placed on purpose.
var layers = []struct {
	prefix string
	rank   int
}{
	{"api/", 0},
	{"pkg/version", 0},
	{"pkg/config", 0},
	{"pkg/component", 0},
	{"pkg/resource", 1},
	{"pkg/store", 2},
	{"pkg/manager", 3},
	{"pkg/pki", 3},
	{"pkg/auth", 3},
	{"pkg/match", 4},
	{"pkg/xds/ir", 4},
	{"pkg/xds/snapshot", 4},
	{"pkg/policy", 5},
	{"policies/", 6},
	{"pkg/xds/build", 7},
	{"pkg/xds/translate", 7},
	{"pkg/xds/", 8},
	{"pkg/xds/identity", 8},
	{"pkg/xds/sync", 8},
	{"pkg/kds", 8},
	{"pkg/apiserver", 8},
	{"pkg/kube", 8},
	{"pkg/diagnostics", 8},
	{"pkg/client", 8},
	{"pkg/insights", 8},
	{"gui", 8},
	{"app/", 9},
	{"installer", 9},
	{"tools", 10},
	{"test/", 10},
	{"docs/examples", 10},
}

func rankOf(rel string) (int, bool) {
	best, rank := -1, 0
	for _, l := range layers {
		p := strings.TrimSuffix(l.prefix, "/")
		if (rel == p || strings.HasPrefix(rel, p+"/") || strings.HasPrefix(rel, l.prefix)) && len(l.prefix) > best {
			best, rank = len(l.prefix), l.rank
		}
	}
	return rank, best >= 0
}

type pkg struct {
	ImportPath  string
	Imports     []string
	TestImports []string
	Deps        []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps=false", "-json", "../../...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "go list: %s", errb.String())
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

func rel(path string) (string, bool) {
	return strings.CutPrefix(path, module)
}

func TestLowerLayersNeverImportHigherOnes(t *testing.T) {
	for _, p := range listPackages(t) {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		fromRank, known := rankOf(from)
		require.True(t, known, "package %s is in no layer: add it to the table in test/arch (see DESIGN §3)", from)
		for _, imp := range p.Imports {
			to, ok := rel(imp)
			if !ok {
				continue
			}
			toRank, known := rankOf(to)
			require.True(t, known, "package %s is in no layer", to)
			if toRank > fromRank {
				t.Errorf("%s (layer %d) imports %s (layer %d): lower layers must not import higher ones", from, fromRank, to, toRank)
			}
			if strings.HasPrefix(to, "app/") && !strings.HasPrefix(from, "app/") {
				t.Errorf("%s imports the composition root %s", from, to)
			}
		}
	}
}

func TestPoliciesNeverImportEachOther(t *testing.T) {
	for _, p := range listPackages(t) {
		from, ok := rel(p.ImportPath)
		if !ok || !strings.HasPrefix(from, "policies/") || from == "policies/all" {
			continue
		}
		own := strings.SplitN(from, "/", 3)[1]
		for _, imp := range p.Imports {
			to, _ := rel(imp)
			if strings.HasPrefix(to, "policies/") && strings.SplitN(to, "/", 3)[1] != own {
				t.Errorf("policy %s imports another policy %s", from, to)
			}
		}
	}
}

// transitive returns the module-external and internal dependencies of pattern.
func transitive(t *testing.T, pattern string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pattern).Output()
	require.NoError(t, err)
	return strings.Fields(string(out))
}

func TestAPIAndIRStayFreeOfEnvoyAndProtobuf(t *testing.T) {
	forbidden := []string{"github.com/envoyproxy/", "google.golang.org/protobuf", "google.golang.org/grpc"}
	for _, pattern := range []string{module + "api/...", module + "pkg/xds/ir/...", module + "pkg/resource/..."} {
		for _, dep := range transitive(t, pattern) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s; it must stay free of Envoy/protobuf/gRPC", pattern, dep)
				}
			}
		}
	}
}

func TestCLIStaysLight(t *testing.T) {
	deps := transitive(t, module+"app/atollctl")
	require.Contains(t, deps, module+"app/atollctl")
	banned := []string{"github.com/envoyproxy/", "github.com/jackc/pgx", "google.golang.org/grpc",
		module + "pkg/xds/build", module + "pkg/xds/translate", module + "pkg/xds/server", module + "pkg/xds/cache",
		module + "pkg/apiserver", module + "pkg/manager", module + "pkg/store"}
	for _, dep := range deps {
		for _, b := range banned {
			if strings.HasPrefix(dep, b) {
				t.Errorf("atollctl depends on %s; the CLI must not pull in Envoy protos, gRPC, database drivers or the servers", dep)
			}
		}
	}
}
