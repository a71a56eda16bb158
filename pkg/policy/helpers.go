package policy

import (
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// DestinationOf returns the destination a cluster of the proxy sends
// traffic to, as to[] entries name it: the MeshService (with the port for an
// explicit service), or the kuma.io/service value for an implicit one or one
// the snapshot does not know.
func DestinationOf(snap *snapshot.Snapshot, c *ir.Cluster) match.Destination {
	if svc, port, ok := snap.ClusterTarget(c.Name); ok {
		d := match.Destination{Kind: targetref.MeshService, Name: svc.Name}
		if svc.Explicit() {
			d.Port = port.Port
		}
		return d
	}
	return match.Destination{Kind: targetref.MeshService, Name: c.Service}
}

// OutboundDestination returns the destination of an outbound: that of the
// cluster its first route sends traffic to, found among clusters, or the
// outbound's service.
func OutboundDestination(snap *snapshot.Snapshot, o *ir.Outbound, clusters map[string]*ir.Cluster) match.Destination {
	if len(o.Routes) > 0 && len(o.Routes[0].Clusters) > 0 {
		if c := clusters[o.Routes[0].Clusters[0].Name]; c != nil {
			return DestinationOf(snap, c)
		}
	}
	return match.Destination{Kind: targetref.MeshService, Name: o.Service}
}

// ClustersByName indexes the clusters of p.
func ClustersByName(p *ir.Proxy) map[string]*ir.Cluster {
	m := make(map[string]*ir.Cluster, len(p.Clusters))
	for i := range p.Clusters {
		m[p.Clusters[i].Name] = &p.Clusters[i]
	}
	return m
}

// OutboundKeyOf is the OutboundKey of a targetRef plugin: the selected
// policies (in merge order) for which affectsOutbound is true, each with
// its content hash, so that editing one changes the key.
func OutboundKeyOf(snap *snapshot.Snapshot, typ string, applied []match.AppliedPolicy, affectsOutbound func(name string) bool) string {
	x := snapshot.NewHasher()
	n := 0
	for _, a := range applied {
		if !affectsOutbound(a.Name) {
			continue
		}
		n++
		x.String(a.Name)
		x.Hash(snap.PolicyHash(typ, a.Name))
	}
	if n == 0 {
		return ""
	}
	return x.Sum().String()
}
