// Package bootstrap generates the documents a data plane starts from: Envoy's
// bootstrap (envoy.config.bootstrap.v3.Bootstrap, as JSON) for sidecars run by
// atoll-dp, and gRPC's xDS bootstrap JSON (what GRPC_XDS_BOOTSTRAP points at)
// for proxyless gRPC workloads. Generation is a pure function of its
// parameters: no I/O, no clock.
//
// Both documents point the proxy's xDS client at the control plane's
// data-plane server over TLS, verify the server with the control plane's CA,
// name the node "<mesh>/<name>" and carry the facts the server reads back from
// the node (the proxy type and software versions, see the Metadata* keys).
//
// # Authentication of the xDS stream
//
// Envoy sends the dataplane token as gRPC metadata "authorization: Bearer
// <token>" on the ADS stream (initial_metadata of the ADS gRPC service).
//
// gRPC-Go 1.85 can send the same header from its bootstrap through JWT call
// credentials (gRFC A97: "call_creds": [{"type": "jwt_token_file"}]), but only
// when the workload runs with GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true
// (read once at start-up; without it the call_creds are silently ignored) and
// only from a file holding the token. GRPCParams.TokenFile enables it. The
// token is also put in the node metadata (MetadataToken), which every gRPC-Go
// version sends on the first request of every ADS stream with no setting at
// all; the server prefers the header when both are present.
package bootstrap

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Keys of the node metadata both bootstraps write and the data-plane server
// reads.
const (
	// MetadataProxyType holds the proxy type: "envoy" or "proxyless"
	// (api/bootstrap.ProxyEnvoy, ProxyProxyless).
	MetadataProxyType = "atoll.io/proxy-type"
	// MetadataAgentVersion holds atoll-dp's version.
	MetadataAgentVersion = "atoll.io/atoll-dp-version"
	// MetadataEnvoyVersion holds Envoy's version as atoll-dp reported it.
	MetadataEnvoyVersion = "atoll.io/envoy-version"
	// MetadataToken holds the dataplane token of a proxyless workload (see
	// the package documentation).
	MetadataToken = "atoll.io/dataplane-token"
	// MetadataDataplane holds the Dataplane (universal JSON) atoll-dp
	// registered at bootstrap, so the server can register it again when
	// the proxy reconnects after it was deregistered.
	MetadataDataplane = "atoll.io/dataplane"
)

// Proxy types written under MetadataProxyType.
const (
	// ProxyEnvoy is an Envoy sidecar.
	ProxyEnvoy = "envoy"
	// ProxyProxyless is a proxyless gRPC workload.
	ProxyProxyless = "proxyless"
)

// Node describes the proxy to its xDS client.
type Node struct {
	// Mesh of the dataplane.
	Mesh string
	// Name of the dataplane.
	Name string
	// Service is the dataplane's main kuma.io/service; it becomes Envoy's
	// node.cluster. Optional.
	Service string
	// AgentVersion is atoll-dp's version; optional.
	AgentVersion string
	// EnvoyVersion is Envoy's version (Envoy only); optional.
	EnvoyVersion string
	// Dataplane is the Dataplane document atoll-dp registered, in universal
	// JSON; empty for a dataplane created beforehand.
	Dataplane string
}

// ID returns the xDS node id of the dataplane: "<mesh>/<name>", which is
// resource.Key.String() of its key.
func (n Node) ID() string { return NodeID(resource.Key{Mesh: n.Mesh, Name: n.Name}) }

// NodeID returns the xDS node id of the dataplane key: "<mesh>/<name>".
func NodeID(key resource.Key) string { return key.String() }

// ParseNodeID reads a node id written by NodeID. Mesh and name must both be
// present; neither may contain a "/".
func ParseNodeID(id string) (resource.Key, error) {
	mesh, name, ok := strings.Cut(id, "/")
	if !ok || mesh == "" || name == "" || strings.Contains(name, "/") {
		return resource.Key{}, fmt.Errorf("node id %q is not of the form <mesh>/<name>", id)
	}
	return resource.Key{Mesh: mesh, Name: name}, nil
}

func (n Node) check() error {
	var errs []error
	if n.Mesh == "" || strings.Contains(n.Mesh, "/") {
		errs = append(errs, fmt.Errorf("node mesh %q must be set and contain no '/'", n.Mesh))
	}
	if n.Name == "" || strings.Contains(n.Name, "/") {
		errs = append(errs, fmt.Errorf("node name %q must be set and contain no '/'", n.Name))
	}
	return errors.Join(errs...)
}

// metadata returns the node metadata common to both flavours.
func (n Node) metadata(proxyType string) map[string]string {
	md := map[string]string{MetadataProxyType: proxyType}
	if n.AgentVersion != "" {
		md[MetadataAgentVersion] = n.AgentVersion
	}
	if n.EnvoyVersion != "" {
		md[MetadataEnvoyVersion] = n.EnvoyVersion
	}
	if n.Dataplane != "" {
		md[MetadataDataplane] = n.Dataplane
	}
	return md
}

// splitServer splits an xDS server address "host:port" and checks it.
func splitServer(addr string) (host string, port uint32, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("xDS server address %q: %w", addr, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("xDS server address %q: port must be between 1 and 65535", addr)
	}
	if h == "" {
		return "", 0, fmt.Errorf("xDS server address %q: host is empty", addr)
	}
	return h, uint32(n), nil
}
