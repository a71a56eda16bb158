// Package policy is the contract between the proxy builder (pkg/xds/build)
// and the bundled policies (policies/<name>): the Plugin interface, what a
// plugin receives and may change, and the Registry that fixes the order in
// which plugins run.
//
// # Lifecycle
//
// For each mesh snapshot, Registry.Prepare calls every plugin's Prepare once
// and keeps the results in the snapshot (Snapshot.Memo), so the matching
// indexes of a policy type are built once however many proxies are built
// from the snapshot. For each proxy, the builder calls Prepared.Match once
// per plugin, then, in registry order, Matched.Outbound on the proxy's
// outbound part and Matched.Inbound on its inbound part. Plugins contribute
// to the typed ir.Proxy only; they never see Envoy resources.
//
// # Sharing
//
// Proxies of one snapshot whose outbound inputs are equal share one outbound
// part (outbounds and clusters): the builder computes it once and hands the
// same values to each. A plugin makes this safe by returning, from
// Matched.OutboundKey, a key that identifies everything its Outbound
// contribution depends on besides the snapshot and the outbounds themselves
// (for a targetRef policy: the selected policies with to[] entries). Outbound
// must therefore not read the proxy's identity or inbounds, and Inbound must
// not touch outbounds or clusters.
package policy

import (
	"errors"
	"fmt"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// Plugin implements one policy type. Implementations are stateless values
// (all state lives in what Prepare returns) and safe for concurrent use.
type Plugin interface {
	// Type returns the policy type, for example "MeshTimeout".
	Type() string
	// Prepare indexes the policies of the type in one snapshot. The result
	// is immutable and shared by every proxy built from the snapshot. An
	// error means the snapshot cannot be used at all (a programming error);
	// problems of single policies are skipped, not errors.
	Prepare(snap *snapshot.Snapshot) (Prepared, error)
	// Targets says which proxies one policy of the type can affect, for
	// dependency scoping. It may say too much, never too little.
	Targets(res *resource.Resource) Targets
}

// Prepared is a plugin's per-snapshot state.
type Prepared interface {
	// Match returns what applies to one dataplane of the snapshot.
	Match(dp *snapshot.Dataplane) (Matched, error)
}

// Matched is what a plugin contributes to one proxy.
type Matched interface {
	// OutboundKey identifies the Outbound contribution: two proxies of one
	// snapshot with equal keys (and equal outbounds) must receive identical
	// contributions. Empty means the contribution does not depend on the
	// proxy at all.
	OutboundKey() string
	// Outbound contributes to p.Outbounds and p.Clusters. It may read
	// p.Identity.Mesh, p.Flavour, p.MTLS and p.TransparentProxy, and no
	// other field.
	Outbound(p *ir.Proxy) error
	// Inbound contributes to p.Inbounds. It may read any field except
	// p.Outbounds and p.Clusters, which it must not change either.
	Inbound(p *ir.Proxy) error
}

// Explainer is implemented by Matched values that can say which policies
// apply to the proxy and why: the selected policies, and for each
// destination and inbound the merged conf with the policy entries that
// produced it (pkg/match's Result). Inspection serves it as JSON.
type Explainer interface {
	// Explain returns a JSON-encodable account of the match.
	Explain() any
}

// Registry is the ordered set of plugins a control plane bundles. Plugins
// run in the order they were given. It is immutable and safe for concurrent
// use.
type Registry struct {
	plugins []Plugin
	byType  map[string]Plugin
}

// NewRegistry returns a registry of plugins, which run in this order. Two
// plugins of one type are an error.
func NewRegistry(plugins ...Plugin) (*Registry, error) {
	r := &Registry{byType: map[string]Plugin{}}
	for _, p := range plugins {
		if p == nil || p.Type() == "" {
			return nil, errors.New("policy registry: a plugin is nil or has no type")
		}
		if _, dup := r.byType[p.Type()]; dup {
			return nil, fmt.Errorf("policy registry: plugin %q registered twice", p.Type())
		}
		r.byType[p.Type()] = p
		r.plugins = append(r.plugins, p)
	}
	return r, nil
}

// Plugins returns the plugins in the order they run.
func (r *Registry) Plugins() []Plugin { return append([]Plugin(nil), r.plugins...) }

// Plugin returns the plugin of a policy type.
func (r *Registry) Plugin(typ string) (Plugin, bool) {
	p, ok := r.byType[typ]
	return p, ok
}

// prepareKey is the Snapshot.Memo key of a registry's prepared plugins.
type prepareKey struct{ r *Registry }

// Prepare returns every plugin's Prepared for snap, in registry order,
// computing them once per snapshot.
func (r *Registry) Prepare(snap *snapshot.Snapshot) ([]Prepared, error) {
	v, err := snap.Memo(prepareKey{r}, func() (any, error) {
		out := make([]Prepared, len(r.plugins))
		for i, p := range r.plugins {
			prep, err := p.Prepare(snap)
			if err != nil {
				return nil, fmt.Errorf("preparing %s policies of mesh %q: %w", p.Type(), snap.Mesh(), err)
			}
			out[i] = prep
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Prepared), nil
}
