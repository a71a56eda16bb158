package match

import "github.com/atoll-mesh/atoll/api/targetref"

// Mergeable is the constraint on a policy's conf type C: a conf knows how to
// take a more specific conf on top of itself. Prepare and Match are generic
// over it, so merging is typed code chosen at compile time.
type Mergeable[C any] interface {
	// Merge returns the receiver with patch applied on top of it, with RFC
	// 7386 semantics: a field patch sets wins, a field patch leaves out keeps
	// the receiver's value, nested objects merge field by field, lists
	// replace (a non-nil empty list clears) except lists whose JSON name
	// starts with "append", which concatenate (receiver's items first).
	// Merge must not change the receiver or patch; the result may share
	// memory with them.
	Merge(patch C) C
}

// Targeted is implemented by every targetRef policy spec: it returns the
// top-level targetRef, or nil when the policy applies to the whole mesh.
type Targeted interface {
	// GetTargetRef returns the top-level targetRef; nil means kind Mesh.
	GetTargetRef() *targetref.TargetRef
}

// ToLister is implemented by policy specs with a to[] section.
type ToLister[C any] interface {
	// GetTo returns the to[] entries in the order they were written.
	GetTo() []targetref.To[C]
}

// FromLister is implemented by policy specs with a from[] section.
type FromLister[C any] interface {
	// GetFrom returns the from[] entries in the order they were written.
	GetFrom() []targetref.From[C]
}

// RulesLister is implemented by policy specs with a rules[] section.
type RulesLister[C any] interface {
	// GetRules returns the rules[] entries in the order they were written.
	GetRules() []targetref.Rule[C]
}

// Defaulter is implemented by policy specs with a proxy-wide spec.default
// (MeshTrace, MeshMetric and other policies without directions).
type Defaulter[C any] interface {
	// GetDefault returns spec.default, or nil when it is absent.
	GetDefault() *C
}
