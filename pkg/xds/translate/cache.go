package translate

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// Cache shares translated resources between translations. Every resource
// (an outbound's listener or filter chain with its route configuration, a
// cluster with its load assignment, an inbound's listener with its local
// cluster) is keyed by a digest of the IR it is rendered from and of the
// proxy-wide settings its rendering reads, so proxies with equal outbounds
// share one set of messages, and a new version of a proxy re-renders only
// what changed. Translating a proxy whose pieces are all cached costs a
// digest of its IR and a few slice copies.
//
// A proxy is translated in two parts that callers may cache on their own:
// Outbounds (outbounds and clusters, usually shared by many proxies) and
// Inbounds (everything else); Merge joins them. The result equals Translate's
// for the same proxy. Resources from a Cache are shared: read-only.
//
// A Cache is safe for concurrent use. Sweep drops entries unused since the
// previous Sweep; call it periodically (for example once per reconciliation
// round) to bound its size.
type Cache struct {
	mu        sync.Mutex
	cur, prev map[digest]*piece
	// valid records outbound parts (by digest) that passed validation, so
	// an unchanged part shared again is not validated again.
	valid, validPrev map[digest]struct{}
}

// piece is one cached rendering.
type piece struct {
	listener  *listenerv3.Listener
	chain     *listenerv3.FilterChain
	route     *routev3.RouteConfiguration
	cluster   *clusterv3.Cluster
	endpoints *endpointv3.ClusterLoadAssignment
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{cur: map[digest]*piece{}, prev: map[digest]*piece{}, valid: map[digest]struct{}{}, validPrev: map[digest]struct{}{}}
}

func (c *Cache) get(d digest) *piece {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.cur[d]; ok {
		return p
	}
	if p, ok := c.prev[d]; ok {
		c.cur[d] = p
		return p
	}
	return nil
}

func (c *Cache) put(d digest, p *piece) {
	c.mu.Lock()
	c.cur[d] = p
	c.mu.Unlock()
}

// Sweep forgets the entries not used since the previous Sweep.
func (c *Cache) Sweep() {
	c.mu.Lock()
	c.prev, c.cur = c.cur, make(map[digest]*piece, len(c.cur))
	c.validPrev, c.valid = c.valid, make(map[digest]struct{}, len(c.valid))
	c.mu.Unlock()
}

// Len returns how many entries the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.cur)
	for d := range c.prev {
		if _, ok := c.cur[d]; !ok {
			n++
		}
	}
	return n
}

// Translate renders p as the package function Translate does, through the
// cache, and returns with the resources a version: a content digest of
// everything they are rendered from.
func (c *Cache) Translate(p *ir.Proxy) (*Resources, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", fmt.Errorf("proxy %s/%s: invalid IR: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	out, od, err := c.Outbounds(p)
	if err != nil {
		return nil, "", err
	}
	in, id, err := c.Inbounds(p)
	if err != nil {
		return nil, "", err
	}
	return Merge(in, out), Version(od, id), nil
}

// outboundView is p without what Inbounds renders.
func outboundView(p *ir.Proxy) *ir.Proxy {
	return &ir.Proxy{
		Identity: ir.Identity{Mesh: p.Identity.Mesh, Dataplane: p.Identity.Dataplane}, Flavour: p.Flavour,
		MTLS: p.MTLS, TransparentProxy: p.TransparentProxy, Outbounds: p.Outbounds, Clusters: p.Clusters,
	}
}

// inboundView is p without what Outbounds renders.
func inboundView(p *ir.Proxy) *ir.Proxy {
	v := *p
	v.Outbounds, v.Clusters = nil, nil
	return &v
}

// Outbounds renders the outbound part of p: its outbounds and clusters (for
// an Envoy proxy with transparent proxying, the outbound redirect listener
// too). Only those fields and p's flavour, mTLS and transparent proxying
// settings are read and validated (once per distinct part: a part whose
// digest passed before is not validated again), so the part of one proxy may
// be reused for every proxy with equal outbounds. It returns a digest of what
// the part is rendered from.
func (c *Cache) Outbounds(p *ir.Proxy) (*Resources, string, error) {
	v := outboundView(p)
	proxyless := v.Flavour == ir.FlavourProxyless
	transparent := v.TransparentProxy.Enabled()

	// Digest every piece first: the part's digest decides whether it
	// needs validating (a part shared again does not).
	d := newDigester()
	part := newDigester()
	part.str("outbounds")
	part.context(v)
	outKeys := make([]digest, len(v.Outbounds))
	chain := make([]bool, len(v.Outbounds))
	used := make(map[string]bool, len(v.Clusters))
	for i := range v.Outbounds {
		o := &v.Outbounds[i]
		for _, rt := range o.Routes {
			for _, wc := range rt.Clusters {
				used[wc.Name] = true
			}
		}
		chain[i] = transparent && !isLoopback(o.Address) && !proxyless
		d.reset()
		d.str("outbound")
		d.context(v)
		d.flag(chain[i])
		d.outbound(o)
		outKeys[i] = d.sum()
		part.digest(outKeys[i])
	}
	clusterKeys := make([]digest, len(v.Clusters))
	for i := range v.Clusters {
		cl := &v.Clusters[i]
		d.reset()
		d.str("cluster")
		d.context(v)
		d.cluster(cl)
		clusterKeys[i] = d.sum()
		part.digest(clusterKeys[i])
	}
	partKey := part.sum()
	if !c.validated(partKey) {
		if err := v.Validate(); err != nil {
			return nil, "", fmt.Errorf("proxy %s/%s: invalid IR: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
		}
	}

	t := newTranslator(v)
	r := &Resources{}
	var chains []*listenerv3.FilterChain
	var chainKeys []digest
	for i := range v.Outbounds {
		o := &v.Outbounds[i]
		key := outKeys[i]
		pc := c.get(key)
		if pc == nil {
			tmp := &Resources{}
			pc = &piece{}
			scratch := map[string]bool{}
			switch {
			case proxyless:
				t.proxylessClient(tmp, scratch, o)
				pc.listener = tmp.Listeners[0]
			case chain[i]:
				pc.chain = t.transparentChain(tmp, scratch, o)
				t.check("filter chain", pc.chain.GetName(), pc.chain)
			default:
				t.envoyOutboundListener(tmp, scratch, o)
				pc.listener = tmp.Listeners[0]
			}
			if len(tmp.Routes) > 0 {
				pc.route = tmp.Routes[0]
				t.check("route configuration", pc.route.GetName(), pc.route)
			}
			if pc.listener != nil {
				t.check("listener", pc.listener.GetName(), pc.listener)
			}
			if len(t.errs) > 0 {
				return nil, "", t.failed(p)
			}
			c.put(key, pc)
		}
		if pc.chain != nil {
			chains = append(chains, pc.chain)
			chainKeys = append(chainKeys, key)
		} else {
			r.Listeners = append(r.Listeners, pc.listener)
		}
		if pc.route != nil {
			r.Routes = append(r.Routes, pc.route)
		}
	}
	if transparent && !proxyless {
		if err := c.outboundRedirect(t, r, chains, chainKeys); err != nil {
			return nil, "", fmt.Errorf("proxy %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
		}
	}
	for i := range v.Clusters {
		cl := &v.Clusters[i]
		if !used[cl.Name] {
			continue
		}
		key := clusterKeys[i]
		pc := c.get(key)
		if pc == nil {
			pc = &piece{cluster: t.edsCluster(cl, proxyless), endpoints: loadAssignment(cl)}
			t.check("cluster", pc.cluster.GetName(), pc.cluster)
			t.check("cluster load assignment", pc.endpoints.GetClusterName(), pc.endpoints)
			if len(t.errs) > 0 {
				return nil, "", t.failed(p)
			}
			c.put(key, pc)
		}
		r.Clusters = append(r.Clusters, pc.cluster)
		r.Endpoints = append(r.Endpoints, pc.endpoints)
	}
	r.sort()
	c.markValid(partKey)
	return r, partKey.String(), nil
}

// validated reports whether the part with digest d passed validation
// before, and records that it has now.
func (c *Cache) validated(d digest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.valid[d]; ok {
		return true
	}
	if _, ok := c.validPrev[d]; ok {
		c.valid[d] = struct{}{}
		return true
	}
	return false
}

func (c *Cache) markValid(d digest) {
	c.mu.Lock()
	c.valid[d] = struct{}{}
	c.mu.Unlock()
}

// outboundRedirect adds the outbound redirect listener (and its fallback
// cluster) holding chains, cached by the chains it holds.
func (c *Cache) outboundRedirect(t *translator, r *Resources, chains []*listenerv3.FilterChain, keys []digest) error {
	order := make([]int, len(chains))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(chains[a].GetName(), chains[b].GetName()) })
	d := newDigester()
	d.str("outbound-redirect")
	d.context(t.p)
	sorted := make([]*listenerv3.FilterChain, len(chains))
	for i, j := range order {
		sorted[i] = chains[j]
		d.digest(keys[j])
	}
	key := d.sum()
	pc := c.get(key)
	if pc == nil {
		tmp := &Resources{}
		t.outboundRedirect(tmp, sorted)
		pc = &piece{listener: tmp.Listeners[0], cluster: tmp.Clusters[0]}
		t.check("listener", pc.listener.GetName(), pc.listener)
		t.check("cluster", pc.cluster.GetName(), pc.cluster)
		if len(t.errs) > 0 {
			return errors.Join(t.errs...)
		}
		c.put(key, pc)
	}
	r.Listeners = append(r.Listeners, pc.listener)
	r.Clusters = append(r.Clusters, pc.cluster)
	return nil
}

// Inbounds renders the inbound part of p: inbound listeners and local
// clusters (for an Envoy proxy with transparent proxying, the inbound
// redirect listener too) and, for Envoy, the SDS secrets. Outbounds and
// clusters are neither read nor validated. It returns a digest of what the
// part is rendered from.
func (c *Cache) Inbounds(p *ir.Proxy) (*Resources, string, error) {
	v := inboundView(p)
	if err := v.Validate(); err != nil {
		return nil, "", fmt.Errorf("proxy %s/%s: invalid IR: %w", p.Identity.Mesh, p.Identity.Dataplane, err)
	}
	if err := preconditions(v); err != nil {
		return nil, "", err
	}
	t := newTranslator(v)
	r := &Resources{}
	d := newDigester()
	part := newDigester()
	part.str("inbounds")
	part.context(v)
	proxyless := v.Flavour == ir.FlavourProxyless
	localSeen := map[string]bool{}
	for i := range v.Inbounds {
		in := &v.Inbounds[i]
		d.reset()
		d.str("inbound")
		d.context(v)
		d.inbound(in)
		key := d.sum()
		part.digest(key)
		pc := c.get(key)
		if pc == nil {
			tmp := &Resources{}
			if proxyless {
				t.proxylessServer(tmp, in)
			} else {
				t.envoyInbound(tmp, map[string]bool{}, in)
				pc = &piece{cluster: tmp.Clusters[0]}
				t.check("cluster", pc.cluster.GetName(), pc.cluster)
			}
			if pc == nil {
				pc = &piece{}
			}
			pc.listener = tmp.Listeners[0]
			t.check("listener", pc.listener.GetName(), pc.listener)
			if len(t.errs) > 0 {
				return nil, "", t.failed(p)
			}
			c.put(key, pc)
		}
		r.Listeners = append(r.Listeners, pc.listener)
		if pc.cluster != nil && !localSeen[pc.cluster.GetName()] {
			localSeen[pc.cluster.GetName()] = true
			r.Clusters = append(r.Clusters, pc.cluster)
		}
	}
	if !proxyless && v.TransparentProxy.Enabled() {
		d.reset()
		d.str("inbound-redirect")
		d.context(v)
		key := d.sum()
		pc := c.get(key)
		if pc == nil {
			tmp := &Resources{}
			t.inboundRedirect(tmp)
			pc = &piece{listener: tmp.Listeners[0], cluster: tmp.Clusters[0]}
			t.check("listener", pc.listener.GetName(), pc.listener)
			t.check("cluster", pc.cluster.GetName(), pc.cluster)
			if len(t.errs) > 0 {
				return nil, "", t.failed(p)
			}
			c.put(key, pc)
		}
		r.Listeners = append(r.Listeners, pc.listener)
		r.Clusters = append(r.Clusters, pc.cluster)
	}
	if !proxyless {
		for i := range v.Secrets {
			part.secret(&v.Secrets[i])
		}
		r.Secrets = secrets(v.Secrets)
		for _, s := range r.Secrets {
			t.check("secret", s.GetName(), s)
		}
		if len(t.errs) > 0 {
			return nil, "", t.failed(p)
		}
	}
	r.sort()
	return r, part.sum().String(), nil
}

// check runs ValidateAll on one rendered message.
func (t *translator) check(kind, name string, v validatable) {
	if err := v.ValidateAll(); err != nil {
		t.errs = append(t.errs, fmt.Errorf("%s %q: %w", kind, name, err))
	}
}

// failed reports the translation problems met so far.
func (t *translator) failed(p *ir.Proxy) error {
	return fmt.Errorf("proxy %s/%s: %w", p.Identity.Mesh, p.Identity.Dataplane, errors.Join(t.errs...))
}

// Version combines part digests (from Cache.Outbounds and Cache.Inbounds)
// into the version of a whole proxy's resources.
func Version(digests ...string) string {
	d := newDigester()
	for _, s := range digests {
		d.str(s)
	}
	return d.sum().String()
}

// Merge returns the resources of a and b together, each list sorted by name
// as Translate sorts it. The parts must not share names (an inbound and an
// outbound part of one proxy never do). When one part has no resources of a
// type, the other's list is used as it is: the result shares it, read-only.
func Merge(a, b *Resources) *Resources {
	return &Resources{
		Listeners: mergeSorted(a.Listeners, b.Listeners, (*listenerv3.Listener).GetName),
		Routes:    mergeSorted(a.Routes, b.Routes, (*routev3.RouteConfiguration).GetName),
		Clusters:  mergeSorted(a.Clusters, b.Clusters, (*clusterv3.Cluster).GetName),
		Endpoints: mergeSorted(a.Endpoints, b.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName),
		Secrets:   mergeSorted(a.Secrets, b.Secrets, secretName),
	}
}

func mergeSorted[T any](a, b []T, name func(T) string) []T {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	// b is the short list (an inbound part next to a large outbound part):
	// find where each of its items goes and copy the runs of a in between.
	out := make([]T, 0, len(a)+len(b))
	i := 0
	for _, x := range b {
		n := name(x)
		j := i + sort.Search(len(a)-i, func(k int) bool { return name(a[i+k]) > n })
		out = append(out, a[i:j]...)
		out = append(out, x)
		i = j
	}
	return append(out, a[i:]...)
}
