package sync

import (
	"slices"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// proxyState is what the reconciler remembers of a connected proxy. Only the
// Start goroutine, or the one worker building the proxy during a round,
// touches it.
type proxyState struct {
	key     resource.Key
	flavour ir.Flavour
	// version is the version of the last configuration built and published
	// ("" when none), without make-before-break leftovers.
	version string
	// published is that configuration.
	published *translate.Resources
	// lingering names the clusters published once more after their removal.
	lingering []string
	// services are what the proxy called at its last build, unless
	// allServices says it called every service.
	services    []string
	allServices bool
}

// reset forgets the last publish, so the next build is published.
func (p *proxyState) reset() {
	p.version, p.published, p.lingering = "", nil, nil
}

// meshIndex finds the connected proxies of one mesh that depend on a
// service.
type meshIndex struct {
	proxies map[resource.Key]struct{}
	callers map[string]map[resource.Key]struct{}
	all     map[resource.Key]struct{}
}

func (r *Reconciler) mesh(name string) *meshIndex {
	mi := r.meshes[name]
	if mi == nil {
		mi = &meshIndex{proxies: map[resource.Key]struct{}{}, callers: map[string]map[resource.Key]struct{}{}, all: map[resource.Key]struct{}{}}
		r.meshes[name] = mi
	}
	return mi
}

// index records what p calls after a build. A proxy that reaches every
// service is filed once (all), not under each service.
func (mi *meshIndex) index(p *proxyState, services []string, all bool) {
	if all && p.allServices {
		return
	}
	if !all && !p.allServices && slices.Equal(services, p.services) {
		p.services = services
		return
	}
	mi.unindex(p)
	if all {
		p.allServices = true
		mi.all[p.key] = struct{}{}
		return
	}
	p.services = services
	for _, s := range services {
		set := mi.callers[s]
		if set == nil {
			set = map[resource.Key]struct{}{}
			mi.callers[s] = set
		}
		set[p.key] = struct{}{}
	}
}

// unindex forgets what p calls.
func (mi *meshIndex) unindex(p *proxyState) {
	delete(mi.all, p.key)
	for _, s := range p.services {
		if set := mi.callers[s]; set != nil {
			delete(set, p.key)
			if len(set) == 0 {
				delete(mi.callers, s)
			}
		}
	}
	p.services, p.allServices = nil, false
}

// remove forgets p entirely.
func (mi *meshIndex) remove(p *proxyState) {
	mi.unindex(p)
	delete(mi.proxies, p.key)
}

// callersOf adds to dirty the proxies that call service.
func (mi *meshIndex) callersOf(service string, dirty map[resource.Key]bool) {
	for k := range mi.callers[service] {
		dirty[k] = true
	}
	for k := range mi.all {
		dirty[k] = true
	}
}

// scope adds to dirty the connected proxies an update touches, and forgets
// the configuration of proxies whose Dataplane or mesh is gone.
func (r *Reconciler) scope(u snapshot.Update, dirty map[resource.Key]bool) {
	d := &u.Delta
	if d.Deleted {
		delete(r.batches, u.Mesh)
		if r.opts.Identities != nil {
			r.opts.Identities.ForgetMesh(u.Mesh)
		}
	}
	mi := r.meshes[u.Mesh]
	if mi == nil || len(mi.proxies) == 0 {
		return
	}
	if d.Deleted {
		for key := range mi.proxies {
			r.forget(r.proxies[key])
		}
		return
	}
	if d.Created || d.MeshChanged || d.CAChanged {
		for key := range mi.proxies {
			dirty[key] = true
		}
		return
	}
	for _, name := range d.Services {
		mi.callersOf(name, dirty)
		for _, snap := range []*snapshot.Snapshot{u.Old, u.New} {
			if svc := snap.Service(name); svc != nil && svc.Explicit() {
				for _, dp := range svc.Backers {
					r.markConnected(resource.Key{Mesh: u.Mesh, Name: dp}, dirty)
				}
			}
		}
	}
	for _, name := range d.Dataplanes {
		key := resource.Key{Mesh: u.Mesh, Name: name}
		p := r.proxies[key]
		if p == nil {
			continue
		}
		if u.New.Dataplane(name) == nil {
			r.forget(p)
			if r.opts.Identities != nil {
				r.opts.Identities.Forget(key)
			}
			delete(dirty, key)
			continue
		}
		dirty[key] = true
	}
	for typ, names := range d.Policies {
		r.scopePolicies(u, mi, typ, names, dirty)
	}
}

// scopePolicies adds the proxies changed policies of one type may affect.
func (r *Reconciler) scopePolicies(u snapshot.Update, mi *meshIndex, typ string, names []string, dirty map[resource.Key]bool) {
	if r.opts.Plugins == nil {
		return
	}
	plugin, ok := r.opts.Plugins.Plugin(typ)
	if !ok {
		return // no plugin reads this type: no proxy depends on it
	}
	for _, name := range names {
		for _, snap := range []*snapshot.Snapshot{u.Old, u.New} {
			res := snap.Policy(typ, name)
			if res == nil {
				continue
			}
			t := plugin.Targets(res)
			candidates := map[resource.Key]bool{}
			if t.AllDestinations || t.Inbound {
				for key := range mi.proxies {
					candidates[key] = true
				}
			} else {
				for _, dest := range t.Destinations {
					mi.callersOf(dest, candidates)
				}
			}
			for key := range candidates {
				if dirty[key] {
					continue
				}
				dp := u.New.Dataplane(key.Name)
				if dp == nil {
					dp = u.Old.Dataplane(key.Name)
				}
				if dp != nil && t.SelectsProxy(snap, dp) {
					dirty[key] = true
				}
			}
		}
	}
}

// markConnected marks key dirty when it is connected.
func (r *Reconciler) markConnected(key resource.Key, dirty map[resource.Key]bool) {
	if r.proxies[key] != nil {
		dirty[key] = true
	}
}

// forget drops the published configuration of a still connected proxy
// whose Dataplane or mesh is gone; it is published again if they come back.
func (r *Reconciler) forget(p *proxyState) {
	if p == nil {
		return
	}
	if p.version != "" {
		r.opts.Publisher.Forget(p.key)
	}
	r.mesh(p.key.Mesh).unindex(p)
	p.reset()
}
