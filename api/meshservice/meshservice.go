// Package meshservice holds the MeshService type: a named service of the mesh
// with its ports, the dataplanes that back it and (in status) its addresses.
package meshservice

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/atoll-mesh/atoll/api/validate"
)

// Spec is a MeshService.
type Spec struct {
	// Selector picks the dataplanes that back the service.
	Selector Selector `json:"selector"`
	// Ports the service exposes.
	Ports []Port `json:"ports,omitempty"`
	// Identities the backing workloads may present.
	Identities []Identity `json:"identities,omitempty"`
	// State is Available or Unavailable.
	State string `json:"state,omitempty"`
}

// Selector picks backing dataplanes by inbound tags or by name.
type Selector struct {
	// DataplaneTags selects inbounds carrying all these tags.
	DataplaneTags map[string]string `json:"dataplaneTags,omitempty"`
	// DataplaneRef selects one dataplane by name.
	DataplaneRef *DataplaneRef `json:"dataplaneRef,omitempty"`
}

// DataplaneRef names one dataplane.
type DataplaneRef struct {
	// Name of the dataplane.
	Name string `json:"name"`
}

// Port is one port of the service.
type Port struct {
	// Name of the port, used as sectionName by policies.
	Name string `json:"name,omitempty"`
	// Port clients connect to.
	Port uint32 `json:"port"`
	// TargetPort is the workload's port, as a number or an inbound name.
	TargetPort *IntOrString `json:"targetPort,omitempty"`
	// AppProtocol is http, http2, grpc, tcp or kafka.
	AppProtocol string `json:"appProtocol,omitempty"`
}

// Identity is one identity of the backing workloads.
type Identity struct {
	// Type is ServiceTag or SpiffeID.
	Type string `json:"type"`
	// Value of the identity.
	Value string `json:"value"`
}

// IntOrString holds a port number or a port name.
type IntOrString struct {
	// Int is the number, when Str is empty.
	Int uint32
	// Str is the name, when set.
	Str string
}

// MarshalJSON writes a number or a string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.Str != "" {
		return json.Marshal(v.Str)
	}
	return json.Marshal(v.Int)
}

// UnmarshalJSON reads a number or a string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			return errors.New("must be a port number or a non-empty port name")
		}
		*v = IntOrString{Str: s}
		return nil
	}
	var n uint32
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("must be a port number or a port name")
	}
	*v = IntOrString{Int: n}
	return nil
}

// String returns the name or the number as text.
func (v IntOrString) String() string {
	if v.Str != "" {
		return v.Str
	}
	return strconv.FormatUint(uint64(v.Int), 10)
}

// Status is what the control plane reports about a MeshService.
type Status struct {
	// Addresses the service is reachable at.
	Addresses []Address `json:"addresses,omitempty"`
	// VIPs allocated to the service.
	VIPs []VIP `json:"vips,omitempty"`
	// TLS readiness of the service.
	TLS *TLSStatus `json:"tls,omitempty"`
	// DataplaneProxies counts the backing proxies.
	DataplaneProxies *DataplaneProxies `json:"dataplaneProxies,omitempty"`
}

// Address is a hostname the service answers to.
type Address struct {
	// Hostname of the service.
	Hostname string `json:"hostname,omitempty"`
	// Origin says what generated it.
	Origin string `json:"origin,omitempty"`
}

// VIP is a virtual IP of the service.
type VIP struct {
	// IP address.
	IP string `json:"ip,omitempty"`
}

// TLSStatus reports whether every backing proxy has its certificate.
type TLSStatus struct {
	// Status is Ready or NotReady.
	Status string `json:"status,omitempty"`
}

// DataplaneProxies counts backing proxies.
type DataplaneProxies struct {
	// Connected proxies.
	Connected int `json:"connected"`
	// Healthy proxies.
	Healthy int `json:"healthy"`
	// Total proxies.
	Total int `json:"total"`
}

// Validate reports every problem of the spec, with paths below "spec".
func (s *Spec) Validate() validate.Errors {
	var errs validate.Errors
	p := validate.Path("spec")
	sp := p.Field("selector")
	switch {
	case len(s.Selector.DataplaneTags) > 0 && s.Selector.DataplaneRef != nil:
		errs.Add(sp, "dataplaneTags and dataplaneRef cannot be set together")
	case len(s.Selector.DataplaneTags) > 0:
		errs.Append(validate.Labels(sp.Field("dataplaneTags"), s.Selector.DataplaneTags))
	case s.Selector.DataplaneRef != nil:
		if s.Selector.DataplaneRef.Name == "" {
			errs.Add(sp.Field("dataplaneRef").Field("name"), "must not be empty")
		}
	}
	names := map[string]int{}
	for i, port := range s.Ports {
		pp := p.Field("ports").Index(i)
		errs.Append(validate.Port(pp.Field("port"), port.Port))
		if port.TargetPort != nil && port.TargetPort.Str == "" {
			errs.Append(validate.Port(pp.Field("targetPort"), port.TargetPort.Int))
		}
		if port.AppProtocol != "" {
			errs.Append(validate.OneOf(pp.Field("appProtocol"), port.AppProtocol, "http", "http2", "grpc", "tcp", "kafka", "tls"))
		}
		if port.Name != "" {
			if j, dup := names[port.Name]; dup {
				errs.Add(pp.Field("name"), "%q is already used by ports[%d]", port.Name, j)
			}
			names[port.Name] = i
		}
	}
	for i, id := range s.Identities {
		ip := p.Field("identities").Index(i)
		errs.Append(validate.OneOf(ip.Field("type"), id.Type, "ServiceTag", "SpiffeID"))
		if id.Value == "" {
			errs.Add(ip.Field("value"), "must not be empty")
		}
	}
	if s.State != "" {
		errs.Append(validate.OneOf(p.Field("state"), s.State, "Available", "Unavailable"))
	}
	return errs
}

// JSONSchema describes a port number or name for the OpenAPI document.
func (IntOrString) JSONSchema() map[string]any {
	return map[string]any{"oneOf": []any{
		map[string]any{"type": "integer", "minimum": 1, "maximum": 65535},
		map[string]any{"type": "string"},
	}}
}
