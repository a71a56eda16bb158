// Package translate renders an ir.Proxy as xDS resources, for Envoy sidecars
// and for proxyless gRPC applications. Translation is a pure function of the
// IR: no I/O, no clock, no shared state, and the same IR always yields the
// same resources in the same order.
//
// Every resource is checked before it is returned: PGV's ValidateAll on it
// and on every typed config packed in an Any inside it (PGV does not descend
// into Any), and every referenced route configuration, cluster, load
// assignment and secret is present. Check does the same on any set of
// resources, unpacking every Any (for resources changed after translation);
// unlike go-control-plane's Snapshot.Consistent it follows api_listeners.
//
// Cache translates the same way while sharing rendered resources between
// proxies and between successive versions of a proxy (content-keyed; see
// Cache), and translates a proxy in two parts, outbound and inbound, that
// Merge joins into exactly what Translate returns.
package translate

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// Revision identifies the translators' output format. It changes whenever the
// same IR would translate to different resources, so a cache version made of
// the IR hash and Revision never names two different configurations.
const Revision = "1"

// Resources are the xDS resources of one proxy, by type, each list sorted by
// resource name.
type Resources struct {
	// Listeners are served over LDS.
	Listeners []*listenerv3.Listener
	// Routes are route configurations served over RDS.
	Routes []*routev3.RouteConfiguration
	// Clusters are served over CDS.
	Clusters []*clusterv3.Cluster
	// Endpoints are cluster load assignments served over EDS.
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets are served over SDS (Envoy only).
	Secrets []*tlsv3.Secret
}

// ByType returns the resources keyed by type URL, the shape
// go-control-plane's cache.NewSnapshot takes. Every type is present, empty
// when the proxy has none, so a snapshot also removes resources of a type
// that disappeared.
func (r *Resources) ByType() map[resource.Type][]types.Resource {
	return map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(r.Listeners),
		resource.RouteType:    asResources(r.Routes),
		resource.ClusterType:  asResources(r.Clusters),
		resource.EndpointType: asResources(r.Endpoints),
		resource.SecretType:   asResources(r.Secrets),
	}
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// Translate renders p for its flavour and checks the result (see the package
// documentation). It returns every problem found, joined, each naming the
// IR field or the resource it is about. p is not modified.
func Translate(p *ir.Proxy) (*Resources, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("proxy %s/%s: invalid IR: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	if err := preconditions(p); err != nil {
		return nil, err
	}
	t := newTranslator(p)
	var r *Resources
	if p.Flavour == ir.FlavourProxyless {
		r = t.proxyless()
	} else {
		r = t.envoy()
	}
	if len(t.errs) > 0 {
		return nil, fmt.Errorf("proxy %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, errors.Join(t.errs...))
	}
	r.sort()
	if err := r.validateTopLevel(); err != nil {
		return nil, fmt.Errorf("proxy %s/%s: generated config is invalid: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	return r, nil
}

// preconditions rejects what Validate lets through but translation cannot
// serve: an Envoy proxy with mTLS and no secrets, inbound authorization.
func preconditions(p *ir.Proxy) error {
	if p.Flavour == ir.FlavourEnvoy && p.MTLS.Enabled() {
		for _, name := range []string{p.MTLS.IdentityCert, p.MTLS.CA} {
			if !slices.ContainsFunc(p.Secrets, func(s ir.Secret) bool { return s.Name == name }) {
				return fmt.Errorf("proxy %s/%s: secrets: mTLS refers to secret %q, which is missing", p.Identity.Mesh, p.Identity.Dataplane, name)
			}
		}
	}
	for i := range p.Inbounds {
		if p.Inbounds[i].Authorization != nil {
			return fmt.Errorf("proxy %s/%s: inbounds[%d].authorization: traffic permissions are not translated yet; refusing to serve an inbound open to everyone",
				p.Identity.Mesh, p.Identity.Dataplane, i)
		}
	}
	return nil
}

func secretName(s *tlsv3.Secret) string { return s.GetName() }

// validateTopLevel runs ValidateAll on every resource. Translate packs only
// configs it validated first (translator.pack), and its references hold by
// construction (routes only name IR clusters that exist, every HCM's route
// configuration and every EDS cluster's load assignment is emitted with it,
// SDS secrets are checked against the IR), so this completes what Check
// would find, without unpacking every Any again. Tests run Check on every
// translation to keep the two in agreement.
func (r *Resources) validateTopLevel() error {
	var errs []error
	add := func(kind, name string, v validatable) {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, err))
		}
	}
	for _, m := range r.Listeners {
		add("listener", m.GetName(), m)
	}
	for _, m := range r.Routes {
		add("route configuration", m.GetName(), m)
	}
	for _, m := range r.Clusters {
		add("cluster", m.GetName(), m)
	}
	for _, m := range r.Endpoints {
		add("cluster load assignment", m.GetClusterName(), m)
	}
	for _, m := range r.Secrets {
		add("secret", m.GetName(), m)
	}
	return errors.Join(errs...)
}

// envoy renders an Envoy sidecar.
func (t *translator) envoy() *Resources {
	r := &Resources{}
	t.envoyInbounds(r)
	t.envoyOutbounds(r)
	return r
}

// envoyInbounds renders the inbound part of an Envoy sidecar: inbound
// listeners and local clusters, the inbound redirect listener with
// transparent proxying, and the SDS secrets.
func (t *translator) envoyInbounds(r *Resources) {
	local := make(map[string]bool, len(t.p.Inbounds))
	for i := range t.p.Inbounds {
		t.envoyInbound(r, local, &t.p.Inbounds[i])
	}
	if t.p.TransparentProxy.Enabled() {
		t.inboundRedirect(r)
	}
	r.Secrets = secrets(t.p.Secrets)
}

// envoyOutbounds renders the outbound part of an Envoy sidecar: outbound
// listeners (or, with transparent proxying, filter chains of the outbound
// redirect listener), their route configurations, and the mesh clusters
// with their load assignments.
func (t *translator) envoyOutbounds(r *Resources) {
	used := make(map[string]bool, len(t.p.Clusters))
	transparent := t.p.TransparentProxy.Enabled()
	var chains []*listenerv3.FilterChain
	for i := range t.p.Outbounds {
		o := &t.p.Outbounds[i]
		if transparent && !isLoopback(o.Address) {
			chains = append(chains, t.transparentChain(r, used, o))
			continue
		}
		t.envoyOutboundListener(r, used, o)
	}
	if transparent {
		slices.SortFunc(chains, func(a, b *listenerv3.FilterChain) int { return cmp.Compare(a.Name, b.Name) })
		t.outboundRedirect(r, chains)
	}
	t.meshClusters(r, used, false)
}

// proxyless renders a proxyless gRPC application.
func (t *translator) proxyless() *Resources {
	r := &Resources{}
	t.proxylessInbounds(r)
	t.proxylessOutbounds(r)
	return r
}

// proxylessInbounds renders a proxyless application's server listeners.
func (t *translator) proxylessInbounds(r *Resources) {
	for i := range t.p.Inbounds {
		t.proxylessServer(r, &t.p.Inbounds[i])
	}
}

// proxylessOutbounds renders a proxyless application's client listeners,
// routes, clusters and load assignments.
func (t *translator) proxylessOutbounds(r *Resources) {
	used := make(map[string]bool, len(t.p.Clusters))
	for i := range t.p.Outbounds {
		t.proxylessClient(r, used, &t.p.Outbounds[i])
	}
	t.meshClusters(r, used, true)
}

// meshClusters renders the IR clusters some route uses, with their load
// assignments; unused clusters are left out (a gRPC client only asks for
// what its routes reference).
func (t *translator) meshClusters(r *Resources, used map[string]bool, proxyless bool) {
	for i := range t.p.Clusters {
		c := &t.p.Clusters[i]
		if !used[c.Name] {
			continue
		}
		r.Clusters = append(r.Clusters, t.edsCluster(c, proxyless))
		r.Endpoints = append(r.Endpoints, loadAssignment(c))
	}
}

func (r *Resources) sort() {
	byName := func(a, b interface{ GetName() string }) int { return cmp.Compare(a.GetName(), b.GetName()) }
	slices.SortFunc(r.Listeners, func(a, b *listenerv3.Listener) int { return byName(a, b) })
	slices.SortFunc(r.Routes, func(a, b *routev3.RouteConfiguration) int { return byName(a, b) })
	slices.SortFunc(r.Clusters, func(a, b *clusterv3.Cluster) int { return byName(a, b) })
	slices.SortFunc(r.Secrets, func(a, b *tlsv3.Secret) int { return byName(a, b) })
	slices.SortFunc(r.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return cmp.Compare(a.GetClusterName(), b.GetClusterName())
	})
}
