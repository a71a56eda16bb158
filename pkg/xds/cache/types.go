package cache

import "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

// Type is an xDS resource type a snapshot holds. Types are numbered in the
// order the responses of one snapshot are sent: secrets before the clusters
// and listeners that use them, clusters before their load assignments,
// listeners before their route configurations — the order in which Envoy
// warms them, and the make-before-break order gRPC needs (a route never
// names a cluster that has not arrived yet).
type Type int

// The types a snapshot holds.
const (
	// Secrets are served over SDS.
	Secrets Type = iota
	// Clusters are served over CDS.
	Clusters
	// Endpoints are cluster load assignments, served over EDS.
	Endpoints
	// Listeners are served over LDS.
	Listeners
	// Routes are route configurations, served over RDS.
	Routes
	// NumTypes is the number of types.
	NumTypes
)

var typeURLs = [NumTypes]string{
	Secrets:   resource.SecretType,
	Clusters:  resource.ClusterType,
	Endpoints: resource.EndpointType,
	Listeners: resource.ListenerType,
	Routes:    resource.RouteType,
}

// URL returns the type URL of t.
func (t Type) URL() string { return typeURLs[t] }

// TypeOf returns the type of a type URL, and false for types a snapshot
// does not hold.
func TypeOf(url string) (Type, bool) {
	for t, u := range typeURLs {
		if u == url {
			return Type(t), true
		}
	}
	return 0, false
}
