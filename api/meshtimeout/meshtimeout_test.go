package meshtimeout_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
)

func TestMeshTimeoutValidation(t *testing.T) {
	ok := &meshtimeout.Spec{
		TargetRef: &targetref.TargetRef{Kind: targetref.MeshSubset, Tags: map[string]string{"version": "v1"}},
		To: []targetref.To[meshtimeout.Conf]{{TargetRef: targetref.TargetRef{Kind: targetref.MeshService, Name: "backend"},
			Default: meshtimeout.Conf{IdleTimeout: "20s", HTTP: &meshtimeout.HTTP{RequestTimeout: "0s"}}}},
		Rules: []targetref.Rule[meshtimeout.Conf]{{Default: meshtimeout.Conf{ConnectionTimeout: "1s"}}},
	}
	require.Empty(t, ok.Validate())

	bad := &meshtimeout.Spec{
		TargetRef: &targetref.TargetRef{Kind: "Galaxy"},
		To: []targetref.To[meshtimeout.Conf]{
			{TargetRef: targetref.TargetRef{Kind: targetref.MeshService}, Default: meshtimeout.Conf{ConnectionTimeout: "0s"}},
			{TargetRef: targetref.TargetRef{Kind: targetref.Mesh, Name: "x"}, Default: meshtimeout.Conf{HTTP: &meshtimeout.HTTP{RequestTimeout: "-1s"}}},
			{TargetRef: targetref.TargetRef{Kind: targetref.Mesh}},
		},
		From: []targetref.From[meshtimeout.Conf]{{TargetRef: targetref.TargetRef{Kind: targetref.MeshService, Name: "a"}, Default: meshtimeout.Conf{IdleTimeout: "1s"}}},
	}
	got := map[string]string{}
	for _, e := range bad.Validate() {
		got[e.Field] = e.Message
	}
	require.Equal(t, map[string]string{
		"spec.targetRef.kind":                    `must be one of Mesh, MeshSubset, MeshService, MeshServiceSubset, MeshGateway, MeshHTTPRoute, Dataplane, got "Galaxy"`,
		"spec.to[0].targetRef.name":              "must be set with kind MeshService (or select by labels)",
		"spec.to[0].default.connectionTimeout":   "must be greater than zero when defined",
		"spec.to[1].targetRef.name":              "must not be set with kind Mesh",
		"spec.to[1].default.http.requestTimeout": "must not be negative",
		"spec.to[2].default":                     "at least one timeout must be set",
		"spec.from[0].targetRef.kind":            `must be one of Mesh, got "MeshService"`,
	}, got)
	empty := (&meshtimeout.Spec{}).Validate()
	require.Equal(t, "spec", empty[0].Field)
}
