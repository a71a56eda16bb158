package ir

import "time"

// Outbound is one way the proxy reaches a destination service.
//
// For an Envoy sidecar without transparent proxying, Address:Port is a local
// listener (127.0.0.1:<port> by default). With transparent proxying, an
// outbound whose Address is not a loopback IP is the service's VIP: it is
// matched on the redirect listener by original destination instead of getting
// a listener of its own. For a proxyless gRPC proxy, the outbound is an
// api_listener named Hostname (or Service when Hostname is empty): the
// application dials xds:///<Hostname>, and Address and Port are unused.
type Outbound struct {
	// Address is the listening address or the service VIP.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// Port is the listening port or the service port.
	Port uint32 `json:"port,omitempty" yaml:"port,omitempty"`
	// Hostname is the name the application uses for the service; it names
	// a proxyless client's listener (xds:///<Hostname>). Optional.
	Hostname string `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	// Service is the destination's kuma.io/service value.
	Service string `json:"service" yaml:"service"`
	// Protocol is the destination's application protocol.
	Protocol Protocol `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// Routes send traffic to clusters. HTTP outbounds try them in order,
	// first match wins; TCP outbounds have exactly one route with no match.
	Routes []Route `json:"routes" yaml:"routes"`
	// Timeouts are MeshTimeout's values for this traffic. ConnectTimeout is
	// not used here: connecting to an upstream is the cluster's concern (see
	// Cluster.ConnectTimeout). IdleTimeout bounds connections from the
	// application to the proxy.
	Timeouts Timeouts `json:"timeouts" yaml:"timeouts,omitempty"`
}

// ListenerName returns the name a proxyless client uses for the outbound:
// Hostname, or Service when Hostname is empty.
func (o *Outbound) ListenerName() string {
	if o.Hostname != "" {
		return o.Hostname
	}
	return o.Service
}

// Route is one routing rule of an outbound.
type Route struct {
	// Name identifies the route within its outbound (for stats and policies).
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Match selects the requests of the route (HTTP only); the zero value
	// matches every request.
	Match RouteMatch `json:"match" yaml:"match,omitempty"`
	// Clusters receive the traffic, split by weight. Weights of zero mean
	// "equal share" only when all are zero; a mix leaves zero-weight
	// clusters without traffic.
	Clusters []WeightedCluster `json:"clusters" yaml:"clusters"`
	// Retry is the retry policy of the route (MeshRetry); nil means none.
	Retry *Retry `json:"retry,omitempty" yaml:"retry,omitempty"`
	// RequestTimeout overrides the outbound's request timeout for this
	// route when non-nil (MeshTimeout targeting a MeshHTTPRoute).
	RequestTimeout *time.Duration `json:"requestTimeout,omitempty" yaml:"requestTimeout,omitempty"`
}

// RouteMatch selects HTTP requests. Empty fields match everything.
type RouteMatch struct {
	// PathPrefix matches requests whose path starts with it ("/" if empty).
	PathPrefix string `json:"pathPrefix,omitempty" yaml:"pathPrefix,omitempty"`
	// Path matches requests whose path is exactly it; it wins over PathPrefix.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Headers must all be present with exactly these values.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
}

// WeightedCluster is one destination of a route.
type WeightedCluster struct {
	// Name is the cluster's name (Cluster.Name).
	Name string `json:"name" yaml:"name"`
	// Weight is the cluster's share of the traffic.
	Weight uint32 `json:"weight,omitempty" yaml:"weight,omitempty"`
}

// Retry is a retry policy.
type Retry struct {
	// On lists retry conditions in Envoy's vocabulary ("5xx",
	// "connect-failure", "unavailable", …); proxyless gRPC honours only
	// the gRPC status names.
	On []string `json:"on" yaml:"on"`
	// NumRetries is the number of retries after the first attempt.
	NumRetries uint32 `json:"numRetries" yaml:"numRetries"`
	// PerTryTimeout bounds one attempt; zero means the route's timeout.
	PerTryTimeout time.Duration `json:"perTryTimeout,omitempty" yaml:"perTryTimeout,omitempty"`
	// BaseInterval is the first back-off; zero means 25ms.
	BaseInterval time.Duration `json:"baseInterval,omitempty" yaml:"baseInterval,omitempty"`
	// MaxInterval caps the back-off; zero means ten times BaseInterval.
	MaxInterval time.Duration `json:"maxInterval,omitempty" yaml:"maxInterval,omitempty"`
}
