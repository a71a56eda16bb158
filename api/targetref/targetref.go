// Package targetref holds the pieces every targetRef ("new-style") policy
// shares with Kuma: the targetRef selector and the to/from/rules envelope.
package targetref

import (
	"github.com/atoll-mesh/atoll/api/validate"
)

// Kind names what a targetRef selects.
type Kind string

// The kinds a targetRef may name.
const (
	Mesh                 Kind = "Mesh"
	MeshSubset           Kind = "MeshSubset"
	MeshService          Kind = "MeshService"
	MeshServiceSubset    Kind = "MeshServiceSubset"
	MeshExternalService  Kind = "MeshExternalService"
	MeshMultiZoneService Kind = "MeshMultiZoneService"
	MeshGateway          Kind = "MeshGateway"
	MeshHTTPRoute        Kind = "MeshHTTPRoute"
	Dataplane            Kind = "Dataplane"
)

// TargetRef selects proxies (top level), destinations (to[]) or sources
// (from[]), with Kuma's field names.
type TargetRef struct {
	// Kind is what is selected.
	Kind Kind `json:"kind"`
	// Name of the selected resource (MeshService, Dataplane, MeshHTTPRoute, …).
	Name string `json:"name,omitempty"`
	// Namespace of the selected resource in Kubernetes zones.
	Namespace string `json:"namespace,omitempty"`
	// Mesh of the selected resource when it differs from the policy's.
	Mesh string `json:"mesh,omitempty"`
	// Labels selects resources of Kind by their labels instead of by name.
	Labels map[string]string `json:"labels,omitempty"`
	// Tags selects dataplanes by inbound tags (MeshSubset, MeshServiceSubset).
	Tags map[string]string `json:"tags,omitempty"`
	// SectionName narrows the selection to one port or inbound by name.
	SectionName string `json:"sectionName,omitempty"`
	// ProxyTypes limits a top-level Mesh/MeshSubset selection to "Sidecar" or "Gateway" proxies.
	ProxyTypes []string `json:"proxyTypes,omitempty"`
}

// To configures traffic from the selected proxies to the destination TargetRef.
type To[C any] struct {
	// TargetRef names the destination.
	TargetRef TargetRef `json:"targetRef"`
	// Default is the configuration applied to that traffic.
	Default C `json:"default"`
}

// From configures traffic reaching the selected proxies from TargetRef.
type From[C any] struct {
	// TargetRef names the source.
	TargetRef TargetRef `json:"targetRef"`
	// Default is the configuration applied to that traffic.
	Default C `json:"default"`
}

// Rule configures all inbound traffic of the selected proxies.
type Rule[C any] struct {
	// Default is the configuration applied to inbound traffic.
	Default C `json:"default"`
}

// Validate checks ref at p: its kind must be one of allowed, and the fields it
// uses must make sense for that kind.
func (ref *TargetRef) Validate(p validate.Path, allowed ...Kind) validate.Errors {
	var errs validate.Errors
	if ref.Kind == "" {
		errs.Add(p.Field("kind"), "must be set")
		return errs
	}
	ok := false
	names := make([]string, len(allowed))
	for i, k := range allowed {
		names[i] = string(k)
		if k == ref.Kind {
			ok = true
		}
	}
	if !ok {
		errs.Append(validate.OneOf(p.Field("kind"), string(ref.Kind), names...))
		return errs
	}
	switch ref.Kind {
	case Mesh:
		if ref.Name != "" {
			errs.Add(p.Field("name"), "must not be set with kind Mesh")
		}
		if len(ref.Tags) > 0 {
			errs.Add(p.Field("tags"), "must not be set with kind Mesh")
		}
		if len(ref.Labels) > 0 {
			errs.Add(p.Field("labels"), "must not be set with kind Mesh")
		}
	case MeshSubset, MeshServiceSubset:
		errs.Append(validate.Labels(p.Field("tags"), ref.Tags))
		if ref.Kind == MeshServiceSubset && ref.Name == "" {
			errs.Add(p.Field("name"), "must be set with kind MeshServiceSubset")
		}
	case Dataplane:
		if ref.Name != "" && len(ref.Labels) > 0 {
			errs.Add(p.Field("labels"), "must not be set together with name")
		}
		errs.Append(validate.Labels(p.Field("labels"), ref.Labels))
	default:
		if ref.Name == "" && len(ref.Labels) == 0 {
			errs.Add(p.Field("name"), "must be set with kind %s (or select by labels)", ref.Kind)
		}
		if ref.Name != "" && len(ref.Labels) > 0 {
			errs.Add(p.Field("labels"), "must not be set together with name")
		}
		errs.Append(validate.Labels(p.Field("labels"), ref.Labels))
		if len(ref.Tags) > 0 {
			errs.Add(p.Field("tags"), "must not be set with kind %s", ref.Kind)
		}
	}
	if ref.SectionName != "" && ref.Kind != MeshService && ref.Kind != Dataplane && ref.Kind != MeshExternalService && ref.Kind != MeshMultiZoneService {
		errs.Add(p.Field("sectionName"), "can only be used with kind MeshService, MeshExternalService, MeshMultiZoneService or Dataplane")
	}
	for i, pt := range ref.ProxyTypes {
		errs.Append(validate.OneOf(p.Field("proxyTypes").Index(i), pt, "Sidecar", "Gateway"))
	}
	if len(ref.ProxyTypes) > 0 && ref.Kind != Mesh && ref.Kind != MeshSubset {
		errs.Add(p.Field("proxyTypes"), "can only be used with kind Mesh or MeshSubset")
	}
	return errs
}
