// Package meshtimeout is the bundled MeshTimeout policy: its type descriptor
// and (with the xDS pipeline) how matched timeouts reach a proxy's IR.
package meshtimeout

import (
	api "github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// TypeName is the MeshTimeout resource type.
const TypeName = "MeshTimeout"

// Descriptor describes the MeshTimeout type.
func Descriptor() resource.Descriptor {
	return resource.Descriptor{
		Name:      TypeName,
		Path:      "meshtimeouts",
		Singular:  "meshtimeout",
		ShortName: "mt",
		Scope:     resource.ScopeMesh,
		Policy:    &resource.PolicyShape{HasTo: true, HasFrom: true, HasRules: true},
		Sync:      resource.SyncGlobalToZone,
		NewSpec:   func() resource.Spec { return &api.Spec{} },
	}
}
