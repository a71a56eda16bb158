// Package dataplane holds the Dataplane type: one workload proxy (an Envoy
// sidecar driven by atoll-dp, or a proxyless gRPC workload) with the services
// it serves (inbounds) and consumes (outbounds), in Kuma's universal shape.
package dataplane

import (
	"encoding/json"
	"maps"
	"net"
	"regexp"
	"slices"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/validate"
)

// Well-known tag keys.
const (
	ServiceTag  = "kuma.io/service"
	ProtocolTag = "kuma.io/protocol"
	ZoneTag     = "kuma.io/zone"
)

// Inbound states.
const (
	StateReady    = "Ready"
	StateNotReady = "NotReady"
	StateIgnored  = "Ignored"
)

// Spec is a Dataplane.
type Spec struct {
	// Networking describes the proxy's addresses and traffic.
	Networking Networking `json:"networking"`
	// Metrics is Kuma's legacy per-dataplane metrics section; stored, not acted on.
	Metrics json.RawMessage `json:"metrics,omitempty"`
	// Probes exposes application health endpoints through the proxy.
	Probes *Probes `json:"probes,omitempty"`
}

// Networking describes the proxy's addresses and traffic.
type Networking struct {
	// Address is the IP or hostname other proxies use to reach this one.
	Address string `json:"address"`
	// AdvertisedAddress is the address announced to other zones when it differs.
	AdvertisedAddress string `json:"advertisedAddress,omitempty"`
	// Inbound lists the services this proxy serves.
	Inbound []Inbound `json:"inbound,omitempty"`
	// Outbound lists the services this proxy consumes without transparent proxying.
	Outbound []Outbound `json:"outbound,omitempty"`
	// Gateway marks the proxy as a gateway.
	Gateway *Gateway `json:"gateway,omitempty"`
	// TransparentProxying is set when traffic is redirected to the proxy by iptables.
	TransparentProxying *TransparentProxying `json:"transparentProxying,omitempty"`
	// Admin configures the proxy's admin endpoint.
	Admin *Admin `json:"admin,omitempty"`
}

// Inbound is one service port the proxy serves.
type Inbound struct {
	// Port is where the proxy accepts mesh traffic for this service.
	Port uint32 `json:"port"`
	// ServicePort is where the application listens; defaults to Port.
	ServicePort uint32 `json:"servicePort,omitempty"`
	// ServiceAddress is the application's address; defaults to 127.0.0.1.
	ServiceAddress string `json:"serviceAddress,omitempty"`
	// Address the proxy listens on for this inbound; defaults to networking.address.
	Address string `json:"address,omitempty"`
	// Name names the inbound so policies can select it with sectionName.
	Name string `json:"name,omitempty"`
	// Tags describe the service; kuma.io/service is required.
	Tags map[string]string `json:"tags"`
	// Health is the readiness reported for the inbound.
	Health *Health `json:"health,omitempty"`
	// ServiceProbe configures active health checking of the application.
	ServiceProbe *ServiceProbe `json:"serviceProbe,omitempty"`
	// State is Ready, NotReady or Ignored; only Ready inbounds receive traffic.
	State string `json:"state,omitempty"`
}

// Health is an inbound's readiness.
type Health struct {
	// Ready reports whether the inbound may receive traffic.
	Ready bool `json:"ready"`
}

// ServiceProbe configures a TCP probe of the application.
type ServiceProbe struct {
	// Interval between probes.
	Interval duration.Duration `json:"interval,omitempty"`
	// Timeout of one probe.
	Timeout duration.Duration `json:"timeout,omitempty"`
	// UnhealthyThreshold failures mark the inbound not ready.
	UnhealthyThreshold uint32 `json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold successes mark it ready again.
	HealthyThreshold uint32 `json:"healthyThreshold,omitempty"`
	// TCP selects a TCP connect probe.
	TCP *struct{} `json:"tcp,omitempty"`
}

// Outbound is one service the proxy reaches on a local port.
type Outbound struct {
	// Port the proxy listens on for this service.
	Port uint32 `json:"port"`
	// Address the proxy listens on; defaults to 127.0.0.1.
	Address string `json:"address,omitempty"`
	// Tags select the destination; kuma.io/service is required unless backendRef is set.
	Tags map[string]string `json:"tags,omitempty"`
	// BackendRef selects the destination by resource.
	BackendRef *BackendRef `json:"backendRef,omitempty"`
}

// BackendRef names a destination resource.
type BackendRef struct {
	// Kind is MeshService, MeshExternalService or MeshMultiZoneService.
	Kind string `json:"kind"`
	// Name of the resource.
	Name string `json:"name,omitempty"`
	// Port of the resource to use.
	Port uint32 `json:"port,omitempty"`
	// Labels select the resource instead of Name.
	Labels map[string]string `json:"labels,omitempty"`
}

// Gateway marks a gateway proxy.
type Gateway struct {
	// Type is DELEGATED or BUILTIN.
	Type string `json:"type,omitempty"`
	// Tags describe the gateway; kuma.io/service is required.
	Tags map[string]string `json:"tags"`
}

// TransparentProxying describes traffic redirection.
type TransparentProxying struct {
	// RedirectPortInbound receives redirected inbound traffic.
	RedirectPortInbound uint32 `json:"redirectPortInbound,omitempty"`
	// RedirectPortOutbound receives redirected outbound traffic.
	RedirectPortOutbound uint32 `json:"redirectPortOutbound,omitempty"`
	// DirectAccessServices are reached directly, bypassing the mesh.
	DirectAccessServices []string `json:"directAccessServices,omitempty"`
	// ReachableServices limits outbounds to these services when set.
	ReachableServices []string `json:"reachableServices,omitempty"`
	// IPFamilyMode is DualStack, IPv4 or IPv6.
	IPFamilyMode string `json:"ipFamilyMode,omitempty"`
	// ReachableBackends limits outbounds to these resources when set.
	ReachableBackends *ReachableBackends `json:"reachableBackends,omitempty"`
}

// ReachableBackends lists destination resources.
type ReachableBackends struct {
	// Refs are the reachable resources.
	Refs []ReachableBackendRef `json:"refs,omitempty"`
}

// ReachableBackendRef names a reachable resource.
type ReachableBackendRef struct {
	// Kind of the resource.
	Kind string `json:"kind"`
	// Name of the resource.
	Name string `json:"name,omitempty"`
	// Namespace of the resource (Kubernetes).
	Namespace string `json:"namespace,omitempty"`
	// Port of the resource.
	Port uint32 `json:"port,omitempty"`
	// Labels select resources instead of Name.
	Labels map[string]string `json:"labels,omitempty"`
}

// Admin configures the proxy's admin endpoint.
type Admin struct {
	// Port of the admin endpoint (Envoy's default 9901).
	Port uint32 `json:"port,omitempty"`
}

// Probes exposes application health endpoints through the proxy.
type Probes struct {
	// Port the probe listener uses.
	Port uint32 `json:"port,omitempty"`
	// Endpoints map probe paths to inbound ones.
	Endpoints []ProbeEndpoint `json:"endpoints,omitempty"`
}

// ProbeEndpoint maps a probe path to an inbound path.
type ProbeEndpoint struct {
	// InboundPort is the application port.
	InboundPort uint32 `json:"inboundPort,omitempty"`
	// InboundPath is the application path.
	InboundPath string `json:"inboundPath,omitempty"`
	// Path on the probe listener.
	Path string `json:"path,omitempty"`
}

var (
	hostnameRe = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)
	tagValueRe = regexp.MustCompile(`^[a-zA-Z0-9.\-_:/*]+$`)
	protocols  = []string{"http", "http2", "grpc", "tcp", "kafka", "tls"}
)

// Validate reports every problem of the dataplane, with Kuma's field paths.
func (s *Spec) Validate() validate.Errors {
	var errs validate.Errors
	n := &s.Networking
	np := validate.Path("networking")
	if n.Address == "" {
		errs.Add(np.Field("address"), "must not be empty")
	} else {
		errs.Append(address(np.Field("address"), n.Address))
	}
	if n.AdvertisedAddress != "" {
		errs.Append(address(np.Field("advertisedAddress"), n.AdvertisedAddress))
	}
	if n.Gateway == nil && len(n.Inbound) == 0 {
		errs.Add(np, "has to contain at least one inbound interface or gateway")
	}
	if n.Gateway != nil {
		gp := np.Field("gateway")
		if len(n.Inbound) > 0 {
			errs.Add(np.Field("inbound"), "must be empty on a gateway")
		}
		if n.Gateway.Type != "" {
			errs.Append(validate.OneOf(gp.Field("type"), n.Gateway.Type, "DELEGATED", "BUILTIN"))
		}
		errs.Append(tags(gp.Field("tags"), n.Gateway.Tags, true))
	}
	for i := range n.Inbound {
		in := &n.Inbound[i]
		ip := np.Field("inbound").Index(i)
		errs.Append(validate.Port(ip.Field("port"), in.Port))
		if in.ServicePort != 0 {
			errs.Append(validate.Port(ip.Field("servicePort"), in.ServicePort))
		}
		if in.ServiceAddress != "" {
			errs.Append(address(ip.Field("serviceAddress"), in.ServiceAddress))
		}
		if in.Address != "" {
			errs.Append(address(ip.Field("address"), in.Address))
		}
		if in.State != "" {
			errs.Append(validate.OneOf(ip.Field("state"), in.State, StateReady, StateNotReady, StateIgnored))
		}
		errs.Append(tags(ip.Field("tags"), in.Tags, true))
		for j := range i {
			if n.Inbound[j].Port == in.Port && n.Inbound[j].Address == in.Address {
				errs.Add(ip.Field("port"), "port %d is already used by inbound[%d]", in.Port, j)
				break
			}
		}
	}
	for i := range n.Outbound {
		out := &n.Outbound[i]
		op := np.Field("outbound").Index(i)
		errs.Append(validate.Port(op.Field("port"), out.Port))
		if out.Address != "" {
			errs.Append(address(op.Field("address"), out.Address))
		}
		switch {
		case out.BackendRef != nil && len(out.Tags) > 0:
			errs.Add(op, "tags and backendRef cannot be set together")
		case out.BackendRef != nil:
			bp := op.Field("backendRef")
			errs.Append(validate.OneOf(bp.Field("kind"), out.BackendRef.Kind, "MeshService", "MeshExternalService", "MeshMultiZoneService"))
			if out.BackendRef.Name == "" && len(out.BackendRef.Labels) == 0 {
				errs.Add(bp.Field("name"), "must be set (or select by labels)")
			}
		default:
			errs.Append(tags(op.Field("tags"), out.Tags, true))
		}
	}
	if tp := n.TransparentProxying; tp != nil {
		tpp := np.Field("transparentProxying")
		if tp.RedirectPortInbound != 0 {
			errs.Append(validate.Port(tpp.Field("redirectPortInbound"), tp.RedirectPortInbound))
		}
		if tp.RedirectPortOutbound != 0 {
			errs.Append(validate.Port(tpp.Field("redirectPortOutbound"), tp.RedirectPortOutbound))
		}
		if tp.RedirectPortInbound != 0 && tp.RedirectPortInbound == tp.RedirectPortOutbound {
			errs.Add(tpp.Field("redirectPortOutbound"), "must differ from redirectPortInbound")
		}
		if tp.IPFamilyMode != "" {
			errs.Append(validate.OneOf(tpp.Field("ipFamilyMode"), tp.IPFamilyMode, "DualStack", "IPv4", "IPv6"))
		}
	}
	if n.Admin != nil && n.Admin.Port != 0 {
		errs.Append(validate.Port(np.Field("admin").Field("port"), n.Admin.Port))
	}
	return errs
}

func address(p validate.Path, a string) validate.Errors {
	var errs validate.Errors
	if net.ParseIP(a) == nil && (len(a) > 253 || !hostnameRe.MatchString(a)) {
		errs.Add(p, "%q is not a valid IP address or hostname", a)
	}
	return errs
}

func tags(p validate.Path, t map[string]string, needService bool) validate.Errors {
	var errs validate.Errors
	if needService && t[ServiceTag] == "" {
		errs.Add(p.Key(ServiceTag), "tag has to exist")
	}
	for _, k := range slices.Sorted(maps.Keys(t)) {
		v := t[k]
		errs.Append(validate.LabelKey(p.Key(k), k))
		if !tagValueRe.MatchString(v) {
			errs.Add(p.Key(k), "tag value %q must consist of letters, digits and '.', '-', '_', ':', '/'", v)
		}
	}
	if proto, ok := t[ProtocolTag]; ok {
		errs.Append(validate.OneOf(p.Key(ProtocolTag), proto, protocols...))
	}
	return errs
}

// Service returns the kuma.io/service tag of the inbound.
func (in *Inbound) Service() string { return in.Tags[ServiceTag] }

// IsReady reports whether the inbound may receive traffic: its state is Ready
// (or unset) and its reported health, if any, is ready.
func (in *Inbound) IsReady() bool {
	if in.State != "" && in.State != StateReady {
		return false
	}
	return in.Health == nil || in.Health.Ready
}
