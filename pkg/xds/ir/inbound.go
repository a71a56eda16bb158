package ir

// Inbound is one service port the proxy serves: mesh traffic arrives on
// Address:Port and is forwarded to the application at
// ServiceAddress:ServicePort.
//
// For a proxyless gRPC proxy there is no sidecar: Address:Port is the gRPC
// server's own listening address and must equal, byte for byte, what its
// net.Listener reports (for example "0.0.0.0:8080" or "[::]:8080"), because
// gRPC asks for the listener named after it. ServiceAddress and ServicePort
// are then unused.
type Inbound struct {
	// Name is the inbound's name, used by policies' sectionName; optional.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Address is where the proxy listens for mesh traffic.
	Address string `json:"address" yaml:"address"`
	// Port is where the proxy listens for mesh traffic.
	Port uint32 `json:"port" yaml:"port"`
	// ServiceAddress is where the application listens; empty means 127.0.0.1.
	ServiceAddress string `json:"serviceAddress,omitempty" yaml:"serviceAddress,omitempty"`
	// ServicePort is where the application listens; zero means Port.
	ServicePort uint32 `json:"servicePort,omitempty" yaml:"servicePort,omitempty"`
	// Service is the kuma.io/service tag value.
	Service string `json:"service" yaml:"service"`
	// Tags are all the inbound's tags, kuma.io/service included.
	Tags map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	// Protocol is the service's application protocol.
	Protocol Protocol `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// Timeouts are MeshTimeout's values for inbound traffic. Every field
	// applies; ConnectTimeout bounds connecting to the application.
	Timeouts Timeouts `json:"timeouts" yaml:"timeouts,omitempty"`
	// Authorization says who may call the inbound (MeshTrafficPermission).
	// Nil means no authorization is enforced.
	Authorization *Authorization `json:"authorization,omitempty" yaml:"authorization,omitempty"`
}

// Authorization is the result of traffic permissions for one inbound: a
// request is denied when a Deny principal matches, otherwise allowed when an
// Allow principal matches, otherwise denied.
type Authorization struct {
	// Allow lists the principals that may call the inbound.
	Allow []Principal `json:"allow,omitempty" yaml:"allow,omitempty"`
	// Deny lists the principals that may not, whatever Allow says.
	Deny []Principal `json:"deny,omitempty" yaml:"deny,omitempty"`
}

// Principal identifies callers by the SPIFFE id of their client certificate.
type Principal struct {
	// Any matches every caller, authenticated or not.
	Any bool `json:"any,omitempty" yaml:"any,omitempty"`
	// SPIFFEID matches callers presenting exactly this identity.
	SPIFFEID string `json:"spiffeID,omitempty" yaml:"spiffeID,omitempty"`
}
