package resource

import (
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/secret"
	"github.com/atoll-mesh/atoll/api/zone"
)

// Names of the core (non-policy) types that control-plane code refers to.
const (
	MeshType             = "Mesh"
	DataplaneType        = "Dataplane"
	DataplaneInsightType = "DataplaneInsight"
	MeshServiceType      = "MeshService"
	SecretType           = "Secret"
	GlobalSecretType     = "GlobalSecret"
	ZoneType             = "Zone"
)

// CoreDescriptors returns the descriptors of the types every Atoll binary
// knows: meshes, dataplanes and their insights, services, secrets and zones.
// Policy types come from policies/all.
func CoreDescriptors() []Descriptor {
	return []Descriptor{
		{
			Name: MeshType, Path: "meshes", Singular: "mesh", ShortName: "m",
			Scope: ScopeGlobal, InlineSpec: true, Sync: SyncGlobalToZone,
			NewSpec: func() Spec { return &mesh.Spec{} },
		},
		{
			Name: DataplaneType, Path: "dataplanes", Singular: "dataplane", ShortName: "dp",
			Scope: ScopeMesh, InlineSpec: true, Sync: SyncZoneToGlobal,
			NewSpec: func() Spec { return &dataplane.Spec{} },
		},
		{
			Name: DataplaneInsightType, Path: "dataplane-insights", Singular: "dataplane-insight",
			Scope: ScopeMesh, InlineSpec: true, Sync: SyncZoneToGlobal, ReadOnly: true,
			NewSpec: func() Spec { return &insight.DataplaneInsight{} },
		},
		{
			Name: MeshServiceType, Path: "meshservices", Singular: "meshservice", ShortName: "msvc",
			Scope: ScopeMesh, Sync: SyncZoneToGlobal | SyncGlobalToZone,
			NewSpec:   func() Spec { return &meshservice.Spec{} },
			NewStatus: func() any { return &meshservice.Status{} },
		},
		{
			Name: SecretType, Path: "secrets", Singular: "secret",
			Scope: ScopeMesh, InlineSpec: true, Sync: SyncGlobalToZone,
			NewSpec: func() Spec { return &secret.Spec{} },
		},
		{
			Name: GlobalSecretType, Path: "global-secrets", Singular: "global-secret",
			Scope: ScopeGlobal, InlineSpec: true, Sync: SyncGlobalToZone,
			NewSpec: func() Spec { return &secret.Spec{} },
		},
		{
			Name: ZoneType, Path: "zones", Singular: "zone",
			Scope: ScopeGlobal, InlineSpec: true,
			NewSpec: func() Spec { return &zone.Spec{} },
		},
	}
}
