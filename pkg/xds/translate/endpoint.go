package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// loadAssignment renders a cluster's endpoints for EDS. Locality and
// endpoint weights are always explicit and at least 1: gRPC rejects zero
// weights, and gives a locality without a weight no traffic. Every locality
// has an ID (gRPC rejects one without); ir.Proxy.Validate has already
// ensured what gRPC also demands: no locality twice at one priority,
// priorities without gaps, no endpoint address twice.
func loadAssignment(c *ir.Cluster) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: c.Name,
		Endpoints:   make([]*endpointv3.LocalityLbEndpoints, 0, len(c.Localities)),
	}
	for i := range c.Localities {
		l := &c.Localities[i]
		lbs := make([]*endpointv3.LbEndpoint, len(l.Endpoints))
		for j, e := range l.Endpoints {
			lbs[j] = &endpointv3.LbEndpoint{
				HostIdentifier:      &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(e.Address, e.Port)}},
				LoadBalancingWeight: wrapperspb.UInt32(orOne(e.Weight)),
			}
		}
		cla.Endpoints = append(cla.Endpoints, &endpointv3.LocalityLbEndpoints{
			// gRPC rejects a locality without an ID, even an empty one.
			Locality:            &corev3.Locality{Zone: l.Zone, SubZone: l.SubZone},
			LbEndpoints:         lbs,
			LoadBalancingWeight: wrapperspb.UInt32(orOne(l.Weight)),
			Priority:            l.Priority,
		})
	}
	return cla
}
