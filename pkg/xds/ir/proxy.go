// Package ir is the intermediate representation of one proxy's configuration:
// what a data plane should do, in plain Go values, before it is rendered as
// Envoy resources by pkg/xds/translate.
//
// The IR is built from a mesh snapshot by pkg/xds/build (core builders first,
// then policy plugins, which each fill their own typed slots) and is then
// translated. It holds no Envoy or protobuf types, so policies, the CLI and
// tests can use it without pulling the Envoy API in. Every value is a plain
// struct with slices in a canonical order (see Proxy.Normalize), comparable
// with go-cmp, serialisable to YAML (golden tests, inspect) and hashable into
// a version (Proxy.Hash).
//
// Zero values mean "not set" unless a field says otherwise; durations are
// effective values (the builder applies defaults such as DefaultTimeouts).
package ir

import "strings"

// Flavour is the kind of data plane a Proxy describes.
type Flavour string

// The supported data plane flavours.
const (
	// FlavourEnvoy is an Envoy sidecar driven by atoll-dp.
	FlavourEnvoy Flavour = "envoy"
	// FlavourProxyless is a gRPC application using gRPC's built-in xDS client.
	FlavourProxyless Flavour = "proxyless"
)

// Proxy is the whole configuration of one data plane proxy.
type Proxy struct {
	// Identity says who the proxy is.
	Identity Identity `json:"identity" yaml:"identity"`
	// Flavour selects the translator (Envoy sidecar or proxyless gRPC).
	Flavour Flavour `json:"flavour" yaml:"flavour"`
	// Node holds facts about the proxy's host used by the bootstrap and the
	// admin endpoint; translators read no more than they need from it.
	Node Node `json:"node" yaml:"node"`
	// MTLS is the mesh's mutual TLS setting as it applies to this proxy.
	MTLS MTLS `json:"mtls" yaml:"mtls"`
	// Inbounds are the services the proxy serves, one per listening port.
	Inbounds []Inbound `json:"inbounds,omitempty" yaml:"inbounds,omitempty"`
	// Outbounds are the services the proxy consumes, one per listening
	// address and port (or per service VIP with transparent proxying).
	Outbounds []Outbound `json:"outbounds,omitempty" yaml:"outbounds,omitempty"`
	// Clusters are the upstream destinations outbound routes send traffic
	// to, with their endpoints. Only clusters referenced by a route are
	// rendered.
	Clusters []Cluster `json:"clusters,omitempty" yaml:"clusters,omitempty"`
	// TransparentProxy is set when traffic is redirected to the proxy by
	// iptables; the zero value means transparent proxying is off.
	TransparentProxy TransparentProxy `json:"transparentProxy" yaml:"transparentProxy,omitempty"`
	// Secrets are the TLS materials Envoy proxies receive over SDS. They
	// are not used for proxyless proxies, which read certificate files.
	Secrets []Secret `json:"secrets,omitempty" yaml:"secrets,omitempty"`
}

// Identity says which mesh and dataplane a proxy is, and which services it
// serves.
type Identity struct {
	// Mesh is the mesh the proxy belongs to.
	Mesh string `json:"mesh" yaml:"mesh"`
	// Dataplane is the name of the Dataplane resource.
	Dataplane string `json:"dataplane" yaml:"dataplane"`
	// Services are the kuma.io/service values of the proxy's inbounds,
	// sorted and without duplicates.
	Services []string `json:"services,omitempty" yaml:"services,omitempty"`
}

// SPIFFEIDs returns the SPIFFE ids the proxy's workload certificate carries,
// one per service, in the order of Services.
func (id Identity) SPIFFEIDs() []string {
	out := make([]string, len(id.Services))
	for i, s := range id.Services {
		out[i] = SPIFFEID(id.Mesh, s)
	}
	return out
}

// SPIFFEID returns the SPIFFE id of a service in a mesh:
// spiffe://<mesh>/<service>. It is the same text pki.ID.String produces.
func SPIFFEID(mesh, service string) string {
	var b strings.Builder
	b.Grow(len("spiffe://") + len(mesh) + 1 + len(service))
	b.WriteString("spiffe://")
	b.WriteString(mesh)
	b.WriteByte('/')
	b.WriteString(service)
	return b.String()
}

// Node holds facts about the proxy's host. The admin endpoint belongs in the
// Envoy bootstrap, not in xDS; it is kept here so one value describes a proxy.
type Node struct {
	// ID is the xDS node id the proxy presents.
	ID string `json:"id" yaml:"id"`
	// Address is the address other proxies use to reach this one.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Zone is the zone the proxy runs in.
	Zone string `json:"zone,omitempty" yaml:"zone,omitempty"`
	// AdminAddress is where Envoy's admin endpoint listens (bootstrap only).
	AdminAddress string `json:"adminAddress,omitempty" yaml:"adminAddress,omitempty"`
	// AdminPort is the admin endpoint's port (bootstrap only); 0 disables it.
	AdminPort uint32 `json:"adminPort,omitempty" yaml:"adminPort,omitempty"`
}

// Protocol is the application protocol of a service, as in the
// kuma.io/protocol tag.
type Protocol string

// The protocols translators distinguish. Other kuma.io/protocol values
// (kafka, tls) are carried as ProtocolTCP by the builder.
const (
	// ProtocolTCP is opaque TCP; it is also the default when unset.
	ProtocolTCP Protocol = "tcp"
	// ProtocolHTTP is HTTP/1.1 (and HTTP/2 with prior knowledge downstream).
	ProtocolHTTP Protocol = "http"
	// ProtocolHTTP2 is HTTP/2 end to end.
	ProtocolHTTP2 Protocol = "http2"
	// ProtocolGRPC is gRPC, which is HTTP/2 end to end.
	ProtocolGRPC Protocol = "grpc"
)

// IsHTTP reports whether p is handled by an HTTP connection manager.
func (p Protocol) IsHTTP() bool {
	return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC
}

// IsHTTP2 reports whether p needs HTTP/2 towards the upstream.
func (p Protocol) IsHTTP2() bool {
	return p == ProtocolHTTP2 || p == ProtocolGRPC
}

// TransparentProxy describes iptables redirection to the proxy. Redirection
// is on when both ports are set.
type TransparentProxy struct {
	// RedirectPortInbound receives redirected inbound traffic (usually 15006).
	RedirectPortInbound uint32 `json:"redirectPortInbound,omitempty" yaml:"redirectPortInbound,omitempty"`
	// RedirectPortOutbound receives redirected outbound traffic (usually 15001).
	RedirectPortOutbound uint32 `json:"redirectPortOutbound,omitempty" yaml:"redirectPortOutbound,omitempty"`
	// Passthrough forwards outbound traffic to destinations outside the
	// mesh to their original address; when false it is dropped.
	Passthrough bool `json:"passthrough,omitempty" yaml:"passthrough,omitempty"`
}

// Enabled reports whether transparent proxying is on.
func (tp TransparentProxy) Enabled() bool {
	return tp.RedirectPortInbound != 0 && tp.RedirectPortOutbound != 0
}
