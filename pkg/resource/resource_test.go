package resource_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func registry(t *testing.T) *resource.Registry {
	t.Helper()
	reg, err := resource.NewRegistry(append(resource.CoreDescriptors(), resource.Descriptor{
		Name: "MeshTimeout", Path: "meshtimeouts", Singular: "meshtimeout", ShortName: "mt",
		Policy: &resource.PolicyShape{HasTo: true}, NewSpec: func() resource.Spec { return &meshtimeout.Spec{} },
	})...)
	require.NoError(t, err)
	return reg
}

func TestRegistryRejectsDuplicatesAndFindsEverySpelling(t *testing.T) {
	reg := registry(t)
	for _, word := range []string{"MeshTimeout", "meshtimeout", "meshtimeouts", "mt", "MESHTIMEOUTS"} {
		d, ok := reg.Lookup(word)
		require.True(t, ok, word)
		require.Equal(t, "MeshTimeout", d.Name)
	}
	_, ok := reg.Lookup("nope")
	require.False(t, ok)

	core := resource.CoreDescriptors()
	_, err := resource.NewRegistry(core[0], core[0])
	require.ErrorContains(t, err, "registered twice")
	clash := core[1]
	clash.Name, clash.Path = "Other", "others"
	_, err = resource.NewRegistry(core[1], clash)
	require.ErrorContains(t, err, "CLI name")
	_, err = resource.NewRegistry(resource.Descriptor{Name: "X"})
	require.ErrorContains(t, err, "required")
}

func TestDecodeReportsEnvelopeProblems(t *testing.T) {
	reg := registry(t)
	_, err := reg.DecodeJSON([]byte(`{"name":"x"}`))
	require.ErrorContains(t, err, "type: must be set")
	_, err = reg.DecodeJSON([]byte(`{"type":"Nope"}`))
	require.ErrorContains(t, err, `unknown resource type "Nope"`)
	_, err = reg.DecodeJSON([]byte(`[1]`))
	require.ErrorContains(t, err, "must be an object")

	_, err = reg.DecodeJSON([]byte(`{"type":"MeshTimeout","name":1,"mesh":2,"labels":{"a":1},"spec":{"to":"x"},"status":{},"extra":1}`))
	var errs validate.Errors
	require.ErrorAs(t, err, &errs)
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	require.Equal(t, []string{"extra", `labels["a"]`, "mesh", "name", "spec.to", "status"}, fields,
		"every problem, sorted by field; a type without status rejects one")

	_, err = reg.DecodeJSON([]byte(`{"type":"Mesh","name":"m","mesh":"default"}`))
	require.ErrorContains(t, err, "mesh: must not be set")
}

func TestUniversalFormatRoundTrip(t *testing.T) {
	reg := registry(t)
	in := `type: Dataplane
mesh: default
name: dp-1
kri: ignored
creationTime: "0001-01-01T00:00:00Z"
labels:
  team: a
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
`
	res, err := reg.DecodeYAML([]byte(in))
	require.NoError(t, err)
	require.Equal(t, "dp-1", res.Meta.Name)
	require.Equal(t, "default", res.Meta.Mesh)
	require.True(t, res.Meta.CreationTime.IsZero(), "server-owned fields are ignored on input")
	require.Equal(t, "web", res.Spec.(*dataplane.Spec).Networking.Inbound[0].Service())

	res.Meta.CreationTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	res.Meta.ModificationTime = res.Meta.CreationTime
	out, err := reg.EncodeYAML(res)
	require.NoError(t, err)
	want := `type: Dataplane
mesh: default
name: dp-1
creationTime: "2026-01-02T03:04:05Z"
modificationTime: "2026-01-02T03:04:05Z"
labels:
  team: a
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags:
        kuma.io/service: web
`
	require.Equal(t, want, string(out), "envelope first, in Kuma's order, spec fields inline")

	mt, err := reg.DecodeJSON([]byte(`{"type":"MeshTimeout","mesh":"m","name":"t","spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1h"}}]}}`))
	require.NoError(t, err)
	j, err := reg.EncodeJSON(mt)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(j), `{"type":"MeshTimeout","mesh":"m","name":"t",`), string(j))
	require.Contains(t, string(j), `"spec":{"to":[{"targetRef":{"kind":"Mesh"},"default":{"idleTimeout":"1h"}}]}`)
}

func TestCloneIsIndependent(t *testing.T) {
	reg := registry(t)
	res, err := reg.DecodeJSON([]byte(`{"type":"Dataplane","mesh":"m","name":"d","labels":{"a":"1"},"networking":{"address":"1.1.1.1","inbound":[{"port":1,"tags":{"kuma.io/service":"s"}}]}}`))
	require.NoError(t, err)
	c, err := reg.Clone(res)
	require.NoError(t, err)
	c.Meta.Labels["a"] = "2"
	c.Spec.(*dataplane.Spec).Networking.Inbound[0].Port = 2
	require.Equal(t, "1", res.Meta.Labels["a"])
	require.Equal(t, uint32(1), res.Spec.(*dataplane.Spec).Networking.Inbound[0].Port)
}

func TestSplitYAML(t *testing.T) {
	docs := resource.SplitYAML([]byte("# only a comment\n---\na: 1\n---\n\n--- \nb: 2\n"))
	require.Len(t, docs, 2)
	require.Equal(t, 3, docs[0].Line)
	require.Equal(t, "b: 2\n", string(docs[1].Data))
	require.Equal(t, 1, docs[1].Index)
	_, err := resource.YAMLToJSON([]byte("a: [1"))
	require.ErrorContains(t, err, "malformed YAML")
}

func TestValidateChecksMetaAndSpec(t *testing.T) {
	reg := registry(t)
	d, _ := reg.Get("MeshTimeout")
	errs := resource.Validate(d, &resource.Resource{Type: "MeshTimeout", Meta: resource.Meta{Name: "Bad Name"}, Spec: &meshtimeout.Spec{}})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	require.Equal(t, []string{"name", "mesh", "spec"}, fields)
}
