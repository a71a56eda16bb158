package meshtimeout

import (
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/targetref"
)

// Merge returns c with patch applied on top of it, following RFC 7386
// (JSON merge patch) as Kuma does when it combines policies: every timeout
// patch sets wins, every timeout patch leaves out keeps c's value. An empty
// duration counts as absent, so "0s" (which disables a timeout) still
// overrides. The http section is merged field by field, so a more specific
// policy that sets only requestTimeout keeps a less specific streamIdleTimeout.
//
// Merge never changes c or patch. The result may share its http section with
// one of them when only one has it; treat merged confs as read-only, like the
// resources they come from.
func (c Conf) Merge(patch Conf) Conf {
	out := c
	overrideDuration(&out.ConnectionTimeout, patch.ConnectionTimeout)
	overrideDuration(&out.IdleTimeout, patch.IdleTimeout)
	out.HTTP = c.HTTP.merge(patch.HTTP)
	return out
}

// merge returns h with patch applied field by field. It allocates only when
// both sides have an http section.
func (h *HTTP) merge(patch *HTTP) *HTTP {
	switch {
	case patch == nil:
		return h
	case h == nil:
		return patch
	}
	out := *h
	overrideDuration(&out.RequestTimeout, patch.RequestTimeout)
	overrideDuration(&out.StreamIdleTimeout, patch.StreamIdleTimeout)
	overrideDuration(&out.MaxStreamDuration, patch.MaxStreamDuration)
	overrideDuration(&out.MaxConnectionDuration, patch.MaxConnectionDuration)
	overrideDuration(&out.RequestHeadersTimeout, patch.RequestHeadersTimeout)
	return &out
}

// overrideDuration sets *dst to v when v is given.
func overrideDuration(dst *duration.Duration, v duration.Duration) {
	if v.IsSet() {
		*dst = v
	}
}

// GetTargetRef returns the top-level targetRef; nil means the whole mesh.
// With GetTo, GetFrom and GetRules it lets the policy-agnostic matcher
// (pkg/match) read any MeshTimeout without knowing its type.
func (s *Spec) GetTargetRef() *targetref.TargetRef { return s.TargetRef }

// GetTo returns the outbound entries of the policy.
func (s *Spec) GetTo() []targetref.To[Conf] { return s.To }

// GetFrom returns the inbound entries of the policy, per source.
func (s *Spec) GetFrom() []targetref.From[Conf] { return s.From }

// GetRules returns the inbound rules of the policy.
func (s *Spec) GetRules() []targetref.Rule[Conf] { return s.Rules }
