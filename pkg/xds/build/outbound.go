package build

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// defaultOutboundAddress is where a declared outbound listens when it does
// not say.
const defaultOutboundAddress = "127.0.0.1"

// OutboundPart is the outbound side of a proxy's configuration: its
// outbounds and clusters, which proxies of one snapshot with equal outbound
// inputs share. It is immutable once built.
type OutboundPart struct {
	// Key identifies the part among the parts of its snapshot.
	Key string
	// Mesh is the mesh the part was built for.
	Mesh string
	// Flavour is the flavour of the proxies sharing the part.
	Flavour ir.Flavour
	// MTLS is the mesh's mTLS setting the part was built for.
	MTLS ir.MTLS
	// TransparentProxy is the redirection of the proxies sharing the part.
	TransparentProxy ir.TransparentProxy
	// Outbounds are normalized and valid; read-only.
	Outbounds []ir.Outbound
	// Clusters are normalized and valid; read-only.
	Clusters []ir.Cluster
	// Services are the services the part sends traffic to (or would, for
	// declared outbounds to services that do not exist yet), sorted.
	Services []string
	// AllServices is set when the part reaches every service of the mesh:
	// adding or removing any service changes it.
	AllServices bool

	listen map[listenKey]struct{}
}

type listenKey struct {
	address string
	port    uint32
}

// Proxy returns the part as a proxy with no inbounds, for translating it on
// its own (translate.Cache.Outbounds). Its slices are the part's: read-only.
func (o *OutboundPart) Proxy() *ir.Proxy {
	return &ir.Proxy{
		Identity:         ir.Identity{Mesh: o.Mesh},
		Flavour:          o.Flavour,
		MTLS:             o.MTLS,
		TransparentProxy: o.TransparentProxy,
		Outbounds:        o.Outbounds,
		Clusters:         o.Clusters,
	}
}

// outboundCore builds the outbounds and clusters of the proxy (before
// plugins run).
func (c *ctx) outboundCore() *OutboundPart {
	b := outboundBuilder{ctx: c, clusters: map[string]bool{}, services: map[string]bool{}}
	net := &c.dp.Spec.Networking
	part := &OutboundPart{Mesh: c.snap.Mesh(), Flavour: c.flavour, MTLS: ir.NewMTLS(c.snap.MTLSMode()), TransparentProxy: c.transparentProxy()}
	if c.flavour == ir.FlavourProxyless {
		for _, o := range net.Outbound {
			if name, _ := declaredService(&o); name != "" {
				b.services[name] = true
			}
		}
	} else {
		for i := range net.Outbound {
			b.declared(&net.Outbound[i])
		}
	}
	if c.flavour == ir.FlavourProxyless || part.TransparentProxy.Enabled() {
		names, all := c.reachable()
		part.AllServices = all
		for _, name := range names {
			b.services[name] = true
			if svc := c.snap.Service(name); svc != nil {
				b.reach(svc)
			}
		}
		if c.flavour == ir.FlavourProxyless {
			// Declared outbounds of a proxyless workload only name services.
			for name := range b.services {
				if svc := c.snap.Service(name); svc != nil && !slices.Contains(names, name) {
					b.reach(svc)
				}
			}
		}
	}
	part.Outbounds, part.Clusters = b.outbounds, b.cls
	part.Services = make([]string, 0, len(b.services))
	for name := range b.services {
		part.Services = append(part.Services, name)
	}
	slices.Sort(part.Services)
	return part
}

// reachable returns the services a transparent or proxyless proxy reaches:
// reachableServices and reachableBackends (MeshService refs) when any is
// set, else every service (all is then true).
func (c *ctx) reachable() (names []string, all bool) {
	tp := c.dp.Spec.Networking.TransparentProxying
	if tp != nil && (len(tp.ReachableServices) > 0 || (tp.ReachableBackends != nil && len(tp.ReachableBackends.Refs) > 0)) {
		names = append(names, tp.ReachableServices...)
		if tp.ReachableBackends != nil {
			for _, ref := range tp.ReachableBackends.Refs {
				if ref.Kind == "MeshService" && ref.Name != "" {
					names = append(names, ref.Name)
				}
			}
		}
		slices.Sort(names)
		return slices.Compact(names), false
	}
	return c.snap.ServiceNames(), true
}

// declaredService returns the service a declared outbound names and the
// MeshService port it asks for (0: the service's first port).
func declaredService(o *dataplane.Outbound) (string, uint32) {
	if o.BackendRef != nil {
		if o.BackendRef.Kind != "MeshService" {
			return "", 0
		}
		return o.BackendRef.Name, o.BackendRef.Port
	}
	return o.Tags[dataplane.ServiceTag], 0
}

type outboundBuilder struct {
	*ctx
	outbounds []ir.Outbound
	cls       []ir.Cluster
	clusters  map[string]bool
	services  map[string]bool
}

// declared adds a declared outbound of an Envoy proxy.
func (b *outboundBuilder) declared(o *dataplane.Outbound) {
	name, want := declaredService(o)
	if name == "" {
		return // MeshExternalService and MeshMultiZoneService are not supported yet
	}
	b.services[name] = true
	out := ir.Outbound{Address: o.Address, Port: o.Port, Service: name}
	if out.Address == "" {
		out.Address = defaultOutboundAddress
	}
	cluster := name
	out.Protocol = protocolOf(o.Tags[dataplane.ProtocolTag])
	if svc := b.snap.Service(name); svc != nil && len(svc.Ports) > 0 {
		port := &svc.Ports[0]
		for i := range svc.Ports {
			if want != 0 && svc.Ports[i].Port == want {
				port = &svc.Ports[i]
			}
		}
		cluster, out.Protocol = port.Cluster, port.Protocol
		b.cluster(svc, port)
	} else {
		b.unknownCluster(name, out.Protocol)
	}
	out.Routes = []ir.Route{{Clusters: []ir.WeightedCluster{{Name: cluster}}}}
	out.Timeouts = outboundDefaults(out.Protocol)
	b.outbounds = append(b.outbounds, out)
}

// reach adds the outbounds of a service reached through transparent
// proxying (at its VIP) or by a proxyless client (by name).
func (b *outboundBuilder) reach(svc *snapshot.Service) {
	for i := range svc.Ports {
		port := &svc.Ports[i]
		out := ir.Outbound{
			Service:  svc.Name,
			Protocol: port.Protocol,
			Routes:   []ir.Route{{Clusters: []ir.WeightedCluster{{Name: port.Cluster}}}},
			Timeouts: outboundDefaults(port.Protocol),
		}
		if b.flavour == ir.FlavourProxyless {
			if len(svc.Ports) > 1 {
				out.Hostname = svc.Name + ":" + strconv.FormatUint(uint64(port.Port), 10)
			}
		} else {
			out.Address, out.Port, out.Hostname = svc.VIP, port.Port, svc.Name+".mesh"
		}
		b.outbounds = append(b.outbounds, out)
		b.cluster(svc, port)
	}
}

// cluster adds the cluster of a service port once.
func (b *outboundBuilder) cluster(svc *snapshot.Service, port *snapshot.Port) {
	if b.clusters[port.Cluster] {
		return
	}
	b.clusters[port.Cluster] = true
	c := ir.Cluster{
		Name:           port.Cluster,
		Service:        svc.Name,
		Protocol:       port.Protocol,
		ConnectTimeout: ir.DefaultConnectTimeout,
		IdleTimeout:    ir.DefaultTimeouts().IdleTimeout,
		Localities:     localities(port.Endpoints),
	}
	if ir.NewMTLS(b.snap.MTLSMode()).Enabled() {
		c.ExpectedSAN = ir.SPIFFEID(b.snap.Mesh(), svc.Identity)
	}
	b.cls = append(b.cls, c)
}

// unknownCluster adds an empty cluster for a declared outbound whose
// service does not exist (yet): its callers get "no healthy upstream" rather
// than a missing listener, and endpoints appear when the service does.
func (b *outboundBuilder) unknownCluster(name string, proto ir.Protocol) {
	if b.clusters[name] {
		return
	}
	b.clusters[name] = true
	c := ir.Cluster{Name: name, Service: name, Protocol: proto, ConnectTimeout: ir.DefaultConnectTimeout, IdleTimeout: ir.DefaultTimeouts().IdleTimeout}
	if ir.NewMTLS(b.snap.MTLSMode()).Enabled() {
		c.ExpectedSAN = ir.SPIFFEID(b.snap.Mesh(), name)
	}
	b.cls = append(b.cls, c)
}

// localities groups endpoints by zone, every zone at priority 0.
func localities(es []snapshot.Endpoint) []ir.Locality {
	if len(es) == 0 {
		return nil
	}
	if !slices.ContainsFunc(es, func(e snapshot.Endpoint) bool { return e.Zone != es[0].Zone }) {
		eps := make([]ir.Endpoint, len(es))
		for i, e := range es {
			eps[i] = ir.Endpoint{Address: e.Address, Port: e.Port}
		}
		return []ir.Locality{{Zone: es[0].Zone, Endpoints: eps}}
	}
	byZone := map[string][]ir.Endpoint{}
	for _, e := range es {
		byZone[e.Zone] = append(byZone[e.Zone], ir.Endpoint{Address: e.Address, Port: e.Port})
	}
	out := make([]ir.Locality, 0, len(byZone))
	for zone, eps := range byZone {
		out = append(out, ir.Locality{Zone: zone, Endpoints: eps})
	}
	slices.SortFunc(out, func(a, b ir.Locality) int { return cmp.Compare(a.Zone, b.Zone) })
	return out
}
