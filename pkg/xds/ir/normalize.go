package ir

import (
	"cmp"
	"slices"
	"strings"
)

// Normalize puts every order-insensitive slice of p into its canonical order
// and removes duplicate service names, so that equal configurations compare
// and hash equal. Route order is meaningful (first match wins) and is kept.
// The builder calls it once, after every plugin has run.
func (p *Proxy) Normalize() {
	slices.Sort(p.Identity.Services)
	p.Identity.Services = slices.Compact(p.Identity.Services)
	slices.SortFunc(p.Inbounds, func(a, b Inbound) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
	})
	for i := range p.Inbounds {
		if az := p.Inbounds[i].Authorization; az != nil {
			slices.SortFunc(az.Allow, comparePrincipal)
			slices.SortFunc(az.Deny, comparePrincipal)
		}
	}
	slices.SortFunc(p.Outbounds, func(a, b Outbound) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port),
			strings.Compare(a.ListenerName(), b.ListenerName()))
	})
	for i := range p.Outbounds {
		for j := range p.Outbounds[i].Routes {
			slices.SortFunc(p.Outbounds[i].Routes[j].Clusters, func(a, b WeightedCluster) int {
				return strings.Compare(a.Name, b.Name)
			})
		}
	}
	slices.SortFunc(p.Clusters, func(a, b Cluster) int { return strings.Compare(a.Name, b.Name) })
	for i := range p.Clusters {
		c := &p.Clusters[i]
		slices.SortFunc(c.Localities, func(a, b Locality) int {
			return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.Zone, b.Zone),
				strings.Compare(a.SubZone, b.SubZone))
		})
		for j := range c.Localities {
			slices.SortFunc(c.Localities[j].Endpoints, func(a, b Endpoint) int {
				return cmp.Or(strings.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
			})
		}
	}
	slices.SortFunc(p.Secrets, func(a, b Secret) int { return strings.Compare(a.Name, b.Name) })
}

func comparePrincipal(a, b Principal) int {
	if a.Any != b.Any {
		if a.Any {
			return -1
		}
		return 1
	}
	return strings.Compare(a.SPIFFEID, b.SPIFFEID)
}
