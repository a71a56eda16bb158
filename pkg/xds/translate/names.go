package translate

import (
	"net"
	"strconv"
	"strings"
)

// Names of the resources the translators invent. IR clusters keep the names
// the builder gave them; everything else is named here, so the cache, the
// inspect endpoints and tests can find a resource without guessing.
const (
	// InboundRedirectListener receives iptables-redirected inbound traffic
	// and hands it to the inbound listener of its original destination.
	InboundRedirectListener = "inbound:redirect"
	// OutboundRedirectListener receives iptables-redirected outbound traffic
	// and picks a filter chain by original destination.
	OutboundRedirectListener = "outbound:redirect"
	// InboundPassthroughCluster forwards redirected inbound traffic to ports
	// that are not declared inbounds, unchanged.
	InboundPassthroughCluster = "inbound:passthrough"
	// OutboundPassthroughCluster forwards outbound traffic to destinations
	// outside the mesh, unchanged.
	OutboundPassthroughCluster = "outbound:passthrough"
	// BlackholeCluster has no endpoints: traffic sent to it fails.
	BlackholeCluster = "outbound:blackhole"
	// ProxylessServerListenerTemplate is the gRPC bootstrap's
	// server_listener_resource_name_template; %s is the listening address.
	ProxylessServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"
	// InboundPassthroughSourceAddress is the source address of passthrough
	// connections, excluded from redirection by the iptables rules.
	InboundPassthroughSourceAddress = "127.0.0.6"
)

// hostPort joins an address and a port, bracketing IPv6 addresses.
func hostPort(address string, port uint32) string {
	return net.JoinHostPort(address, strconv.FormatUint(uint64(port), 10))
}

// InboundListenerName returns the name of an Envoy inbound listener.
func InboundListenerName(address string, port uint32) string {
	return "inbound:" + hostPort(address, port)
}

// LocalClusterName returns the name of the cluster that forwards an inbound's
// traffic to the application.
func LocalClusterName(serviceAddress string, servicePort uint32) string {
	return "local:" + hostPort(serviceAddress, servicePort)
}

// OutboundListenerName returns the name of an Envoy outbound listener; with
// transparent proxying it names the outbound's filter chain instead. The
// outbound's route configuration has the same name.
func OutboundListenerName(address string, port uint32) string {
	return "outbound:" + hostPort(address, port)
}

// ProxylessServerListenerName returns the listener name a gRPC xDS server
// listening on address:port asks for.
func ProxylessServerListenerName(address string, port uint32) string {
	return strings.Replace(ProxylessServerListenerTemplate, "%s", hostPort(address, port), 1)
}

// statPrefix turns a resource name into a stat prefix.
func statPrefix(name string) string {
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '[', ']':
		case ':', '.', '/', '?', '=':
			b = append(b, '_')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
