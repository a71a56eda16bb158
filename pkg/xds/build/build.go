// Package build is hop 3 of the xDS pipeline: it turns a mesh snapshot and
// one of its dataplanes into that proxy's typed configuration, an ir.Proxy.
// It is a pure function of its inputs: no store, no clock, no I/O.
//
// Core builders run first (identity, node, mTLS, transparent proxying,
// inbounds, outbounds, clusters with their endpoints, secrets), then every
// policy plugin in registry order, then ir.Proxy.Normalize and Validate.
//
// # Rules
//
//   - Identity: one SPIFFE id spiffe://<mesh>/<service> per kuma.io/service
//     of the dataplane's inbounds that are not Ignored.
//   - Inbounds: every inbound that is not Ignored gets a listener on its
//     address (default: networking.address) and port, forwarding to
//     serviceAddress (default 127.0.0.1) and servicePort (default: port).
//     Only Ready inbounds receive traffic from other proxies (they alone are
//     endpoints); a NotReady one keeps its listener, so readiness flapping
//     changes the callers' endpoints, not this proxy's listeners.
//   - Outbounds: every declared outbound (address default 127.0.0.1). With
//     transparent proxying (an Envoy dataplane with a transparentProxying
//     section; redirect ports default to 15006/15001) also every service of
//     the mesh at its VIP and port, narrowed to reachableServices and
//     reachableBackends when either is set. A proxyless dataplane gets one
//     api_listener per service (xds:///<service>; "<service>:<port>" for a
//     MeshService with several ports), narrowed the same way.
//   - Clusters: one per service port, named by snapshot.Port.Cluster, with
//     the Ready endpoints grouped by kuma.io/zone; protocol from
//     kuma.io/protocol or appProtocol.
//   - mTLS: the mesh's enabled backend decides (STRICT unless it says
//     PERMISSIVE; off without one). Clusters then expect the destination's
//     SPIFFE id, and Envoy proxies receive the workload certificate and the
//     mesh trust bundle as secrets (proxyless workloads read them from files).
//   - Flavour: given by the caller (the flavour the agent announced when it
//     connected), else the Dataplane's label atoll.io/proxy-type
//     ("proxyless" or "envoy"), else Envoy.
//
// # Sharing
//
// Build builds one proxy on its own. A Batch builds many proxies of one
// snapshot and shares their outbound parts (outbounds and clusters, the bulk
// of a proxy's configuration) between proxies whose outbound inputs are
// equal; Batch.Build returns the same ir.Proxy as Build, with those slices
// shared (read-only).
package build

import (
	"fmt"
	"maps"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// ProxyTypeLabel is the Dataplane label that marks a proxyless workload
// ("proxyless") when the caller does not say which flavour the proxy is.
const ProxyTypeLabel = "atoll.io/proxy-type"

// Default transparent proxying redirect ports, as in Kuma.
const (
	DefaultRedirectPortInbound  = 15006
	DefaultRedirectPortOutbound = 15001
)

// DefaultAdminPort is Envoy's admin port when the dataplane sets none.
const DefaultAdminPort = 9901

// Identity is a proxy's workload identity material, in PEM.
type Identity struct {
	// CertificateChain is the workload certificate, leaf first.
	CertificateChain string
	// PrivateKey is the certificate's key.
	PrivateKey string
	// TrustBundle holds the mesh's trusted CA certificates.
	TrustBundle string
}

// Input is everything one proxy's configuration depends on.
type Input struct {
	// Snapshot is the mesh the proxy belongs to.
	Snapshot *snapshot.Snapshot
	// Dataplane names the proxy's Dataplane in the snapshot.
	Dataplane string
	// Flavour is the flavour the proxy announced; empty means FlavourOf.
	Flavour ir.Flavour
	// Identity is the workload certificate and trust bundle. Required for
	// an Envoy proxy in a mesh with mTLS; unused otherwise.
	Identity *Identity
	// Plugins are the policy plugins, in order; nil runs none.
	Plugins *policy.Registry
}

// FlavourOf returns the flavour a Dataplane's label asks for: proxyless
// when atoll.io/proxy-type is "proxyless", else Envoy.
func FlavourOf(dp *snapshot.Dataplane) ir.Flavour {
	if dp.Resource.Meta.Labels[ProxyTypeLabel] == bootstrap.ProxyProxyless {
		return ir.FlavourProxyless
	}
	return ir.FlavourEnvoy
}

// Build returns the configuration of one proxy: core builders, plugins,
// then Normalize and Validate. A dataplane missing from the snapshot is an
// error matching store.ErrNotFound.
func Build(in Input) (*ir.Proxy, error) {
	c, err := newCtx(in.Snapshot, in.Plugins, in.Dataplane, in.Flavour)
	if err != nil {
		return nil, err
	}
	p := &ir.Proxy{}
	if err := c.inboundCore(p, in.Identity); err != nil {
		return nil, err
	}
	out := c.outboundCore()
	p.Outbounds, p.Clusters = out.Outbounds, out.Clusters
	for _, m := range c.matched {
		if err := m.Outbound(p); err != nil {
			return nil, c.errorf("outbound policies: %w", err)
		}
		if err := m.Inbound(p); err != nil {
			return nil, c.errorf("inbound policies: %w", err)
		}
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return nil, c.errorf("invalid configuration: %w", err)
	}
	return p, nil
}

// ctx is what building one proxy needs.
type ctx struct {
	snap    *snapshot.Snapshot
	dp      *snapshot.Dataplane
	flavour ir.Flavour
	matched []policy.Matched
}

func newCtx(snap *snapshot.Snapshot, plugins *policy.Registry, name string, flavour ir.Flavour) (*ctx, error) {
	if snap == nil {
		return nil, fmt.Errorf("building proxy %q: no snapshot", name)
	}
	dp := snap.Dataplane(name)
	if dp == nil {
		return nil, fmt.Errorf("building proxy: %w", store.NotFound(resource.DataplaneType, resource.Key{Mesh: snap.Mesh(), Name: name}))
	}
	c := &ctx{snap: snap, dp: dp, flavour: flavour}
	if c.flavour == "" {
		c.flavour = FlavourOf(dp)
	}
	if plugins != nil {
		prepared, err := plugins.Prepare(snap)
		if err != nil {
			return nil, c.errorf("%w", err)
		}
		c.matched = make([]policy.Matched, len(prepared))
		for i, prep := range prepared {
			if c.matched[i], err = prep.Match(dp); err != nil {
				return nil, c.errorf("matching %s policies: %w", plugins.Plugins()[i].Type(), err)
			}
		}
	}
	return c, nil
}

func (c *ctx) errorf(format string, args ...any) error {
	return fmt.Errorf("building proxy %s: %w", c.dp.Key().String(), fmt.Errorf(format, args...))
}

// transparentProxy returns the proxy's redirection settings: none for
// proxyless workloads or without a transparentProxying section.
func (c *ctx) transparentProxy() ir.TransparentProxy {
	tp := c.dp.Spec.Networking.TransparentProxying
	if tp == nil || c.flavour != ir.FlavourEnvoy {
		return ir.TransparentProxy{}
	}
	out := ir.TransparentProxy{
		RedirectPortInbound:  tp.RedirectPortInbound,
		RedirectPortOutbound: tp.RedirectPortOutbound,
		Passthrough:          c.snap.Passthrough(),
	}
	if out.RedirectPortInbound == 0 {
		out.RedirectPortInbound = DefaultRedirectPortInbound
	}
	if out.RedirectPortOutbound == 0 {
		out.RedirectPortOutbound = DefaultRedirectPortOutbound
	}
	return out
}

// cloneTags copies tags so the IR never aliases a stored resource.
func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	return maps.Clone(t)
}
