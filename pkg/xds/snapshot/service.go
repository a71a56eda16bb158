package snapshot

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// ImplicitServicePort is the port clients use for an implicit service
// (<service>.mesh:80 with transparent proxying, as in Kuma).
const ImplicitServicePort = 80

// MeshServices modes of the Mesh (spec.meshServices.mode).
const (
	// ModeExclusive: only MeshService resources are services.
	ModeExclusive = "Exclusive"
	// ModeDisabled: MeshService resources are ignored for traffic; services
	// come from kuma.io/service tags only.
	ModeDisabled = "Disabled"
)

// Service is one destination of the mesh.
//
// A service is explicit when a MeshService resource of its name exists: its
// ports and backing dataplanes come from the resource (selector and
// targetPort). Otherwise it is implicit: every kuma.io/service value of an
// inbound that is not Ignored makes one, with one port (80) whose endpoints
// are the inbounds carrying the value. An explicit service shadows the
// implicit one of the same name. The mesh's meshServices.mode narrows this:
// Exclusive keeps explicit services only, Disabled implicit ones only; any
// other mode (or none) keeps both.
type Service struct {
	// Name is the MeshService name or the kuma.io/service value.
	Name string
	// MeshService is the resource of an explicit service; nil when implicit.
	MeshService *resource.Resource
	// Identity is the kuma.io/service the backing workloads' certificates
	// carry (spiffe://<mesh>/<Identity>): for an explicit service the first
	// ServiceTag identity, else the one kuma.io/service all backing inbounds
	// share, else the service name.
	Identity string
	// VIP is the virtual IP transparent proxies reach the service at: the
	// MeshService's first status VIP, else an address derived from the mesh
	// and service names in 240.0.0.0/4.
	VIP string
	// Ports are the service's ports, sorted by number.
	Ports []Port
	// Backers are the dataplanes with an inbound backing the service, ready
	// or not, sorted by name.
	Backers []string
	// Hash covers every field above.
	Hash Hash
}

// Port is one port of a service, with its endpoints.
type Port struct {
	// Port is the number clients use (80 for implicit services).
	Port uint32
	// Name is the MeshService port name, if any.
	Name string
	// Protocol is the application protocol: appProtocol, or the
	// kuma.io/protocol all backing inbounds agree on (tcp otherwise).
	Protocol ir.Protocol
	// Cluster names the cluster of the port: the service name, or
	// "<name>_<port>" for a MeshService with several ports.
	Cluster string
	// Endpoints are the Ready backing inbounds, sorted by address and port.
	Endpoints []Endpoint
}

// Endpoint is one Ready instance of a service port.
type Endpoint struct {
	// Dataplane is the backing dataplane's name.
	Dataplane string
	// Address is the inbound's IP address.
	Address string
	// Port is the inbound's port (where its proxy listens).
	Port uint32
	// Zone is the inbound's kuma.io/zone tag.
	Zone string
}

// Explicit reports whether a MeshService resource defines the service.
func (s *Service) Explicit() bool { return s.MeshService != nil }

// protocolOf maps a kuma.io/protocol or appProtocol value to the IR.
func protocolOf(v string) ir.Protocol {
	switch v {
	case "http":
		return ir.ProtocolHTTP
	case "http2":
		return ir.ProtocolHTTP2
	case "grpc":
		return ir.ProtocolGRPC
	}
	return ir.ProtocolTCP
}

// endpointAddress is where other proxies reach an inbound: its own address
// when it names a specific IP, else the dataplane's address. It reports false
// when that is not an IP (hostnames are not resolved by the control plane).
func endpointAddress(dp *dataplane.Spec, in *dataplane.Inbound) (string, bool) {
	if a, err := netip.ParseAddr(in.Address); err == nil && !a.IsUnspecified() {
		return in.Address, true
	}
	if _, err := netip.ParseAddr(dp.Networking.Address); err == nil {
		return dp.Networking.Address, true
	}
	return "", false
}

// implicitService derives the service named name from the dataplanes that
// carry it, given by name in dps.
func implicitService(mesh, name string, dps []*Dataplane) *Service {
	svc := &Service{Name: name, Identity: name, VIP: deriveVIP(mesh, name, 0)}
	port := Port{Port: ImplicitServicePort, Cluster: name}
	protocol, agreed, first := "", true, true
	for _, dp := range dps {
		backs := false
		for i := range dp.Spec.Networking.Inbound {
			in := &dp.Spec.Networking.Inbound[i]
			if in.State == dataplane.StateIgnored || in.Service() != name {
				continue
			}
			backs = true
			p := in.Tags[dataplane.ProtocolTag]
			if first {
				protocol, first = p, false
			} else if p != protocol {
				agreed = false
			}
			if !in.IsReady() {
				continue
			}
			if addr, ok := endpointAddress(dp.Spec, in); ok {
				port.Endpoints = append(port.Endpoints, Endpoint{Dataplane: dp.Name(), Address: addr, Port: in.Port, Zone: in.Tags[dataplane.ZoneTag]})
			}
		}
		if backs {
			svc.Backers = append(svc.Backers, dp.Name())
		}
	}
	if agreed {
		port.Protocol = protocolOf(protocol)
	} else {
		port.Protocol = ir.ProtocolTCP
	}
	port.Endpoints = sortEndpoints(port.Endpoints)
	svc.Ports = []Port{port}
	svc.Hash = svc.hash()
	return svc
}

// explicitService derives the service of a MeshService resource from the
// dataplanes its selector picks among dps (every dataplane of the mesh).
func explicitService(mesh string, ms *resource.Resource, dps []*Dataplane) *Service {
	spec := ms.Spec.(*meshservice.Spec)
	svc := &Service{Name: ms.Meta.Name, MeshService: ms}
	for _, id := range spec.Identities {
		if id.Type == "ServiceTag" && id.Value != "" {
			svc.Identity = id.Value
			break
		}
	}
	if st, ok := ms.Status.(*meshservice.Status); ok && st != nil {
		for _, v := range st.VIPs {
			if _, err := netip.ParseAddr(v.IP); err == nil {
				svc.VIP = v.IP
				break
			}
		}
	}
	if svc.VIP == "" {
		svc.VIP = deriveVIP(mesh, svc.Name, 0)
	}
	svc.Ports = make([]Port, len(spec.Ports))
	for i, p := range spec.Ports {
		svc.Ports[i] = Port{Port: p.Port, Name: p.Name, Protocol: protocolOf(p.AppProtocol), Cluster: svc.Name}
		if len(spec.Ports) > 1 {
			svc.Ports[i].Cluster = svc.Name + "_" + strconv.FormatUint(uint64(p.Port), 10)
		}
	}
	identities := map[string]bool{}
	for _, dp := range dps {
		if !selects(&spec.Selector, dp) {
			continue
		}
		backs := false
		for i := range dp.Spec.Networking.Inbound {
			in := &dp.Spec.Networking.Inbound[i]
			if in.State == dataplane.StateIgnored || !inboundMatchesSelector(&spec.Selector, in) {
				continue
			}
			for j, p := range spec.Ports {
				if !targets(p, in) {
					continue
				}
				backs = true
				identities[in.Service()] = true
				if !in.IsReady() {
					continue
				}
				if addr, ok := endpointAddress(dp.Spec, in); ok {
					svc.Ports[j].Endpoints = append(svc.Ports[j].Endpoints, Endpoint{Dataplane: dp.Name(), Address: addr, Port: in.Port, Zone: in.Tags[dataplane.ZoneTag]})
				}
			}
		}
		if backs {
			svc.Backers = append(svc.Backers, dp.Name())
		}
	}
	if svc.Identity == "" {
		svc.Identity = svc.Name
		if len(identities) == 1 {
			for id := range identities {
				if id != "" {
					svc.Identity = id
				}
			}
		}
	}
	for i := range svc.Ports {
		svc.Ports[i].Endpoints = sortEndpoints(svc.Ports[i].Endpoints)
	}
	slices.SortFunc(svc.Ports, func(a, b Port) int { return cmp.Compare(a.Port, b.Port) })
	svc.Hash = svc.hash()
	return svc
}

// selects reports whether a MeshService selector picks the dataplane.
func selects(sel *meshservice.Selector, dp *Dataplane) bool {
	if sel.DataplaneRef != nil {
		return sel.DataplaneRef.Name == dp.Name()
	}
	if len(sel.DataplaneTags) == 0 {
		return false
	}
	for i := range dp.Spec.Networking.Inbound {
		if inboundMatchesSelector(sel, &dp.Spec.Networking.Inbound[i]) {
			return true
		}
	}
	return false
}

// inboundMatchesSelector reports whether one inbound of a selected
// dataplane backs the service: all its inbounds with dataplaneRef, those
// carrying every tag with dataplaneTags.
func inboundMatchesSelector(sel *meshservice.Selector, in *dataplane.Inbound) bool {
	if sel.DataplaneRef != nil {
		return true
	}
	if len(sel.DataplaneTags) == 0 {
		return false
	}
	for k, v := range sel.DataplaneTags {
		if in.Tags[k] != v {
			return false
		}
	}
	return true
}

// targets reports whether a MeshService port is served by an inbound: by
// inbound name when targetPort is a name, else by inbound port (targetPort,
// or the port itself).
func targets(p meshservice.Port, in *dataplane.Inbound) bool {
	switch {
	case p.TargetPort == nil:
		return in.Port == p.Port
	case p.TargetPort.Str != "":
		return in.Name == p.TargetPort.Str
	default:
		return in.Port == p.TargetPort.Int
	}
}

func sortEndpoints(es []Endpoint) []Endpoint {
	slices.SortFunc(es, func(a, b Endpoint) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port), strings.Compare(a.Dataplane, b.Dataplane))
	})
	// The same address and port twice (two dataplanes claiming one
	// address) would be rejected by the IR: keep the first.
	return slices.CompactFunc(es, func(a, b Endpoint) bool { return a.Address == b.Address && a.Port == b.Port })
}

// deriveVIP returns an address in 240.0.0.0/4 (never in 255.0.0.0/8, never
// ending in .0 or .255) derived from the mesh and service names; attempt > 0
// picks another one after a collision.
func deriveVIP(mesh, name string, attempt int) string {
	x := NewHasher()
	x.String("vip")
	x.String(mesh)
	x.String(name)
	x.Uint64(uint64(attempt))
	h := x.Sum()
	v := binary.BigEndian.Uint32(h[:4])
	a := [4]byte{byte(240 + v%15), byte(v >> 8), byte(v >> 16), byte(1 + (v>>24)%254)}
	return netip.AddrFrom4(a).String()
}

// hash computes the service's content hash.
func (s *Service) hash() Hash {
	x := NewHasher()
	x.String(s.Name)
	if s.MeshService != nil {
		h, _ := ResourceHash(s.MeshService)
		x.Hash(h)
	}
	x.String(s.Identity)
	x.String(s.VIP)
	x.Uint64(uint64(len(s.Ports)))
	for i := range s.Ports {
		p := &s.Ports[i]
		x.Uint64(uint64(p.Port))
		x.String(p.Name)
		x.String(string(p.Protocol))
		x.String(p.Cluster)
		x.Uint64(uint64(len(p.Endpoints)))
		for _, e := range p.Endpoints {
			x.String(e.Dataplane)
			x.String(e.Address)
			x.Uint64(uint64(e.Port))
			x.String(e.Zone)
		}
	}
	x.Uint64(uint64(len(s.Backers)))
	for _, b := range s.Backers {
		x.String(b)
	}
	return x.Sum()
}

// withVIP returns a copy of s with another VIP.
func (s *Service) withVIP(vip string) *Service {
	c := *s
	c.VIP = vip
	c.Hash = c.hash()
	return &c
}
