package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// yamlToMap reads one YAML (or JSON) document as a map.
func yamlToMap(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	j, err := resource.YAMLToJSON(doc)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(j, &m))
	return m
}

func withoutTimes(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != "creationTime" && k != "modificationTime" {
			out[k] = v
		}
	}
	return out
}

func TestApplyKumaUniversalYAMLThenGetReadsItBack(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	file := "testdata/kuma-universal.yaml"

	require.Equal(t, ""+
		"Mesh \"payments\" created\n"+
		"Dataplane \"backend-1\" created\n"+
		"MeshTimeout \"timeout-backend\" created\n",
		c.ok("apply", "-f", file))

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	docs := resource.SplitYAML(data)
	require.Len(t, docs, 3)
	gets := [][]string{
		{"get", "mesh", "payments", "-o", "yaml"},
		{"get", "dataplane", "backend-1", "-m", "payments", "-o", "yaml"},
		{"get", "MeshTimeout", "timeout-backend", "--mesh", "payments", "-o", "yaml"},
	}
	for i, args := range gets {
		got := c.ok(args...)
		require.True(t, strings.HasPrefix(got, "type: "), "universal format starts with type:\n%s", got)
		want := yamlToMap(t, docs[i].Data)
		require.Empty(t, cmp.Diff(want, withoutTimes(yamlToMap(t, []byte(got)))), "document %d read back differently", i)
	}
	// JSON output is the same resource.
	var fromJSON map[string]any
	require.NoError(t, json.Unmarshal([]byte(c.ok("get", "mt", "timeout-backend", "-m", "payments", "-o", "json")), &fromJSON))
	require.Empty(t, cmp.Diff(yamlToMap(t, docs[2].Data), withoutTimes(fromJSON)))

	// Applying again updates.
	require.Equal(t, ""+
		"Mesh \"payments\" updated\n"+
		"Dataplane \"backend-1\" updated\n"+
		"MeshTimeout \"timeout-backend\" updated\n",
		c.ok("apply", "-f", file))
}

// rulesSpec is a small valid MeshTimeout spec.
const rulesSpec = `{"rules":[{"default":{"idleTimeout":"1m"}}]}`

const twoTimeouts = `
type: MeshTimeout
name: from-stdin
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 30s
`

func TestApplyFromStdinAndFromADirectory(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)

	c.stdin = twoTimeouts
	require.Equal(t, "MeshTimeout \"from-stdin\" created\n", c.ok("apply", "-f", "-"))
	c.stdin = ""
	// Without mesh: the document went to the default mesh.
	require.Contains(t, c.ok("get", "meshtimeouts"), "default   from-stdin")

	c.writeFile("dir/b.json", `{"type":"MeshTimeout","name":"b-json","spec":`+rulesSpec+`}
[{"type":"MeshTimeout","name":"b-array-1","spec":`+rulesSpec+`},
 {"type":"MeshTimeout","name":"b-array-2","spec":`+rulesSpec+`}]`)
	c.writeFile("dir/a.yaml", "type: Mesh\nname: dir-mesh\n---\n# comment only\n---\ntype: MeshTimeout\nname: a-yaml\nmesh: dir-mesh\nspec: "+rulesSpec+"\n")
	c.writeFile("dir/c.yml", "type: MeshTimeout\nname: c-yml\nspec: "+rulesSpec+"\n")
	c.writeFile("dir/notes.txt", "not applied")
	require.Equal(t, ""+
		"Mesh \"dir-mesh\" created\n"+
		"MeshTimeout \"a-yaml\" created\n"+
		"MeshTimeout \"b-json\" created\n"+
		"MeshTimeout \"b-array-1\" created\n"+
		"MeshTimeout \"b-array-2\" created\n"+
		"MeshTimeout \"c-yml\" created\n",
		c.ok("apply", "-f", c.dir+"/dir"))

	// The list output of get -o yaml can be applied back.
	list := c.ok("get", "meshtimeouts", "-o", "yaml")
	c.writeFile("list.yaml", list)
	require.Equal(t, ""+
		"MeshTimeout \"b-array-1\" updated\n"+
		"MeshTimeout \"b-array-2\" updated\n"+
		"MeshTimeout \"b-json\" updated\n"+
		"MeshTimeout \"c-yml\" updated\n"+
		"MeshTimeout \"from-stdin\" updated\n",
		c.ok("apply", "-f", c.dir+"/list.yaml"))
}

func TestApplyValidatesClientSideAndSendsNothing(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	file := c.writeFile("bad.yaml", `type: Mesh
name: fine
---
type: MeshTimeout
name: bad
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: Mesh
      default:
        idleTimeout: 3 parsecs
        bogus: 1
---
type: FooPolicy
name: x
---
type: Mesh
name: Not_A_Name
`)
	r := c.fail("apply", "-f", file)
	require.Empty(t, r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	require.Len(t, lines, 5, r.stderr)
	require.True(t, strings.HasPrefix(lines[0], "resource[1] ("+file+":4): spec.to[0].default.bogus: "), r.stderr)
	require.True(t, strings.HasPrefix(lines[1], "resource[1] ("+file+":4): spec.to[0].default.idleTimeout: "), r.stderr)
	require.Contains(t, lines[1], "parsecs")
	require.True(t, strings.HasPrefix(lines[2], "resource[2] ("+file+":17): type: unknown resource type \"FooPolicy\""), r.stderr)
	require.True(t, strings.HasPrefix(lines[3], "resource[3] ("+file+":20): name: \"Not_A_Name\" is not a valid name"), r.stderr)
	require.Equal(t, "Error: 3 of 4 resources are not valid; nothing was applied", lines[4])
	require.Empty(t, cp.writes(), "nothing may be sent when a document is invalid")
	require.Equal(t, 1, cp.count(t, "Mesh"))

	// Malformed YAML and JSON name their line.
	r = c.fail("apply", "-f", c.writeFile("broken.yaml", "type: Mesh\nname: a\n---\ntype: [\n"))
	require.Contains(t, r.stderr, "resource[1] ("+c.dir+"/broken.yaml:4): malformed YAML: ")
	r = c.fail("apply", "-f", c.writeFile("broken.json", "{\"type\":\"Mesh\",\"name\":\"a\"}\n\n{\"type\": }"))
	require.Contains(t, r.stderr, "resource[1] ("+c.dir+"/broken.json:3): malformed JSON: ")
	require.Empty(t, cp.writes())
}

func TestApplyServerSideErrorsContinueAndFail(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	c.stdin = `type: MeshTimeout
name: lost
mesh: nope
spec: ` + rulesSpec + `
---
type: MeshTimeout
name: kept
spec: ` + rulesSpec + "\n"
	r := c.fail("apply", "-f", "-")
	require.Equal(t, "MeshTimeout \"kept\" created\n", r.stdout)
	require.Equal(t, ""+
		"resource[0] (<stdin>:1): MeshTimeout \"lost\": Mesh not found (mesh \"nope\" does not exist; create it first)\n"+
		"Error: 1 of 2 resources could not be applied (1 applied)\n", r.stderr)
	require.Equal(t, 1, cp.count(t, "MeshTimeout"))
}

func TestApplyDryRunStoresNothing(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	// Each document is dry-run on its own: the Dataplane and MeshTimeout
	// fail because the mesh of the first document was not stored.
	r := c.fail("apply", "-f", "testdata/kuma-universal.yaml", "--dry-run")
	require.True(t, strings.HasPrefix(r.stdout, "# Mesh \"payments\" would be created (dry run: nothing was stored)\ntype: Mesh\nname: payments\n"), r.stdout)
	require.Contains(t, r.stderr, "resource[1] (testdata/kuma-universal.yaml:21): Dataplane \"backend-1\": Mesh not found")
	require.Equal(t, 1, cp.count(t, "Mesh"))
	require.Equal(t, 0, cp.count(t, "Dataplane"))

	c.stdin = twoTimeouts
	out := c.ok("apply", "-f", "-", "--dry-run")
	require.True(t, strings.HasPrefix(out, "# MeshTimeout \"from-stdin\" would be created (dry run: nothing was stored)\ntype: MeshTimeout\nmesh: default\nname: from-stdin\n"), out)
	require.Contains(t, out, "idleTimeout: 30s")
	require.Equal(t, 0, cp.count(t, "MeshTimeout"))
	require.Contains(t, cp.writes(), "PUT /meshes/default/meshtimeouts/from-stdin?dryRun=true")

	c.ok("apply", "-f", "-")
	out = c.ok("apply", "-f", "-", "--dry-run")
	require.True(t, strings.HasPrefix(out, "# MeshTimeout \"from-stdin\" would be updated (dry run"), out)
}

func TestApplyStopsAtAnUnreachableControlPlane(t *testing.T) {
	c := newCLI(t, nil)
	down := closedAddress(t)
	c.stdin = twoTimeouts + "---\n" + strings.ReplaceAll(twoTimeouts, "from-stdin", "second")
	r := c.fail("apply", "-f", "-", "--address", down)
	require.Contains(t, r.stderr, "resource[0] (<stdin>:1): MeshTimeout \"from-stdin\": could not reach the control plane at "+down+": ")
	require.Contains(t, r.stderr, "Error: 2 of 2 resources could not be applied (0 applied, 1 not attempted)\n")
}

func TestApplyUsageErrors(t *testing.T) {
	c := newCLI(t, nil)
	r := c.fail("apply")
	require.True(t, strings.HasPrefix(r.stderr, "Error: apply needs at least one -f FILE|DIR|-\n\nUsage:\n  atollctl apply -f FILE|DIR|- [flags]"), r.stderr)
	r = c.fail("apply", "-f", c.dir+"/missing.yaml")
	require.Contains(t, r.stderr, "Error: reading "+c.dir+"/missing.yaml: ")
	r = c.fail("apply", "--bogus")
	require.Contains(t, r.stderr, "Error: unknown flag: --bogus\n\nUsage:")
}
