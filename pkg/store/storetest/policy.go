package storetest

import (
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// PolicyType is the name of the policy-like type the suite registers next to
// the core types. Backends that need a schema per type (Kubernetes CRDs)
// must provide one for it.
const PolicyType = "StoreTestPolicy"

// PolicySpec is the spec of PolicyType: a targetRef policy envelope with a
// nested configuration, shaped like a real bundled policy so that a backend's
// encoding of nested structs, pointers, maps and lists is exercised.
type PolicySpec struct {
	// TargetRef selects the proxies the policy applies to.
	TargetRef *targetref.TargetRef `json:"targetRef,omitempty"`
	// To configures outbound traffic per destination.
	To []targetref.To[PolicyConf] `json:"to,omitempty"`
}

// PolicyConf is the configuration PolicySpec applies to one destination.
type PolicyConf struct {
	// ConnectTimeout is a duration as text, for example "5s".
	ConnectTimeout string `json:"connectTimeout,omitempty"`
	// MaxRetries is optional; nil means "not set", unlike 0.
	MaxRetries *uint32 `json:"maxRetries,omitempty"`
	// Headers are added to requests, in order.
	Headers []PolicyHeader `json:"headers,omitempty"`
	// Metadata is free-form key/values.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// PolicyHeader is one header name and value.
type PolicyHeader struct {
	// Name of the header.
	Name string `json:"name"`
	// Value of the header.
	Value string `json:"value"`
}

// Validate accepts every spec: the suite tests storage, not validation.
func (s *PolicySpec) Validate() validate.Errors { return nil }

// PolicyStatus is the status of PolicyType.
type PolicyStatus struct {
	// Conditions report what the control plane observed.
	Conditions []PolicyCondition `json:"conditions,omitempty"`
}

// PolicyCondition is one observed condition.
type PolicyCondition struct {
	// Type names the condition, for example "Accepted".
	Type string `json:"type"`
	// Status is "True" or "False".
	Status string `json:"status"`
	// Reason is a machine-readable cause.
	Reason string `json:"reason,omitempty"`
	// Message explains the condition to people.
	Message string `json:"message,omitempty"`
}

// PolicyDescriptor returns the descriptor of PolicyType.
func PolicyDescriptor() resource.Descriptor {
	return resource.Descriptor{
		Name: PolicyType, Path: "storetestpolicies", Singular: "storetestpolicy",
		Scope:     resource.ScopeMesh,
		Policy:    &resource.PolicyShape{HasTo: true},
		Sync:      resource.SyncGlobalToZone,
		NewSpec:   func() resource.Spec { return &PolicySpec{} },
		NewStatus: func() any { return &PolicyStatus{} },
	}
}

// Descriptors returns every type the suite registers: the core types and
// PolicyType. Run builds its registry from them; backends that prepare a
// schema per type can use the same list.
func Descriptors() []resource.Descriptor {
	return append(resource.CoreDescriptors(), PolicyDescriptor())
}
