package ir

import "time"

// Cluster is an upstream destination: a mesh service (or a subset of it)
// whose endpoints are delivered by EDS.
type Cluster struct {
	// Name is the cluster's name; routes refer to it.
	Name string `json:"name" yaml:"name"`
	// Service is the destination's kuma.io/service value.
	Service string `json:"service" yaml:"service"`
	// Protocol is the destination's application protocol; HTTP/2 and gRPC
	// clusters speak HTTP/2 to the upstream.
	Protocol Protocol `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// ExpectedSAN is the SPIFFE id the upstream must present when mTLS is
	// on (usually SPIFFEID(mesh, Service)); required then.
	ExpectedSAN string `json:"expectedSAN,omitempty" yaml:"expectedSAN,omitempty"`
	// ConnectTimeout bounds establishing a connection to an endpoint
	// (MeshTimeout connectionTimeout); zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty" yaml:"connectTimeout,omitempty"`
	// IdleTimeout closes upstream connections without streams for this long
	// (MeshTimeout idleTimeout); zero disables it.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty" yaml:"idleTimeout,omitempty"`
	// Localities group the endpoints by zone.
	Localities []Locality `json:"localities,omitempty" yaml:"localities,omitempty"`
}

// Locality is a group of endpoints in one zone.
type Locality struct {
	// Zone is the kuma.io/zone of the endpoints; empty for the local zone.
	Zone string `json:"zone,omitempty" yaml:"zone,omitempty"`
	// SubZone narrows the zone; optional.
	SubZone string `json:"subZone,omitempty" yaml:"subZone,omitempty"`
	// Weight is the locality's share of traffic; zero means 1 (gRPC
	// rejects a zero locality weight).
	Weight uint32 `json:"weight,omitempty" yaml:"weight,omitempty"`
	// Priority is the failover priority, 0 being the highest.
	Priority uint32 `json:"priority,omitempty" yaml:"priority,omitempty"`
	// Endpoints are the instances in the locality.
	Endpoints []Endpoint `json:"endpoints" yaml:"endpoints"`
}

// Endpoint is one instance of a service.
type Endpoint struct {
	// Address is the instance's IP address.
	Address string `json:"address" yaml:"address"`
	// Port is the instance's mesh port (its inbound port).
	Port uint32 `json:"port" yaml:"port"`
	// Weight is the instance's share within its locality; zero means 1
	// (gRPC rejects a zero endpoint weight).
	Weight uint32 `json:"weight,omitempty" yaml:"weight,omitempty"`
}
