// Package all is the one list of policies bundled into Atoll. Composition
// roots (app/*) call it; nothing registers itself.
package all

import (
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/policies/meshtimeout"
)

// Descriptors returns the type descriptors of every bundled policy.
func Descriptors() []resource.Descriptor {
	return []resource.Descriptor{
		meshtimeout.Descriptor(),
	}
}

// Registry returns a registry of the core types plus every bundled policy.
func Registry() (*resource.Registry, error) {
	return resource.NewRegistry(append(resource.CoreDescriptors(), Descriptors()...)...)
}

// Plugins returns the xDS plugin of every bundled policy, in the order they
// contribute to a proxy's configuration: a later plugin sees (and may
// refine) what earlier ones set.
func Plugins() []policy.Plugin {
	return []policy.Plugin{
		meshtimeout.New(),
	}
}

// PluginRegistry returns a policy.Registry of Plugins.
func PluginRegistry() (*policy.Registry, error) {
	return policy.NewRegistry(Plugins()...)
}
