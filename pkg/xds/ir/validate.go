package ir

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Validate reports every structural problem of p that would make it
// untranslatable: missing names, ports out of range, duplicate listeners,
// routes to undefined clusters, mTLS without certificate names. Each problem
// names the field it is about, as in "outbounds[1].routes[0].clusters[0]".
// It returns nil for a valid proxy.
func (p *Proxy) Validate() error {
	v := validator{}
	if p.Identity.Mesh == "" {
		v.add("identity.mesh", "must not be empty")
	}
	switch p.Flavour {
	case FlavourEnvoy, FlavourProxyless:
	default:
		v.add("flavour", "must be %q or %q, got %q", FlavourEnvoy, FlavourProxyless, p.Flavour)
	}
	switch p.MTLS.Mode {
	case MTLSOff:
	case MTLSStrict, MTLSPermissive:
		if p.MTLS.IdentityCert == "" {
			v.add("mtls.identityCert", "must be set when mTLS is on")
		}
		if p.MTLS.CA == "" {
			v.add("mtls.ca", "must be set when mTLS is on")
		}
	default:
		v.add("mtls.mode", "must be empty, %q or %q, got %q", MTLSStrict, MTLSPermissive, p.MTLS.Mode)
	}
	tp := p.TransparentProxy
	if (tp.RedirectPortInbound == 0) != (tp.RedirectPortOutbound == 0) {
		v.add("transparentProxy", "needs both redirect ports or neither")
	} else if tp.Enabled() && tp.RedirectPortInbound == tp.RedirectPortOutbound {
		v.add("transparentProxy.redirectPortOutbound", "must differ from redirectPortInbound")
	}
	if tp.Enabled() && p.Flavour == FlavourProxyless {
		v.add("transparentProxy", "is not supported by proxyless gRPC")
	}
	clusters := make(map[string]bool, len(p.Clusters))
	for i := range p.Clusters {
		v.cluster(fmt.Sprintf("clusters[%d]", i), &p.Clusters[i], p.MTLS.Enabled())
		clusters[p.Clusters[i].Name] = true
	}
	for i := range p.Clusters {
		if n := p.Clusters[i].Name; n != "" && !v.unique(uniqueKey{kind: "cluster", name: n}) {
			v.add(fmt.Sprintf("clusters[%d].name", i), "%q is used by another cluster", n)
		}
	}
	for i := range p.Inbounds {
		v.inbound(fmt.Sprintf("inbounds[%d]", i), &p.Inbounds[i])
	}
	for i := range p.Outbounds {
		v.outbound(fmt.Sprintf("outbounds[%d]", i), &p.Outbounds[i], p.Flavour, clusters)
	}
	for i, s := range p.Secrets {
		path := fmt.Sprintf("secrets[%d]", i)
		switch {
		case s.Name == "":
			v.add(path+".name", "must not be empty")
		case !v.unique(uniqueKey{kind: "secret", name: s.Name}):
			v.add(path+".name", "%q is used by another secret", s.Name)
		}
		if s.IsIdentity() == (s.TrustedCA != "") || s.IsIdentity() != (s.PrivateKey != "") {
			v.add(path, "must hold either a certificate chain with its private key or a trusted CA")
		}
	}
	return errors.Join(v.errs...)
}

type validator struct {
	errs []error
	seen map[uniqueKey]bool
}

// uniqueKey is a name within a namespace (kind, scope).
type uniqueKey struct {
	kind, scope, name string
	port              uint32
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// unique records k and reports whether it was new.
func (v *validator) unique(k uniqueKey) bool {
	if v.seen == nil {
		v.seen = map[uniqueKey]bool{}
	}
	if v.seen[k] {
		return false
	}
	v.seen[k] = true
	return true
}

func (v *validator) port(path string, port uint32, optional bool) {
	if port > 65535 || (port == 0 && !optional) {
		v.add(path, "must be a port between 1 and 65535, got %d", port)
	}
}

func (v *validator) protocol(path string, p Protocol) {
	switch p {
	case "", ProtocolTCP, ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC:
	default:
		v.add(path, "must be one of tcp, http, http2, grpc, got %q", p)
	}
}

func (v *validator) timeouts(path string, t Timeouts) {
	for _, d := range []time.Duration{t.ConnectTimeout, t.IdleTimeout, t.RequestTimeout, t.StreamIdleTimeout,
		t.MaxStreamDuration, t.MaxConnectionDuration, t.RequestHeadersTimeout} {
		if d < 0 {
			v.add(path, "must not be negative")
			return
		}
	}
}

func (v *validator) inbound(path string, in *Inbound) {
	if _, err := netip.ParseAddr(in.Address); err != nil {
		v.add(path+".address", "must be an IP address, got %q", in.Address)
	}
	v.port(path+".port", in.Port, false)
	v.port(path+".servicePort", in.ServicePort, true)
	if in.Service == "" {
		v.add(path+".service", "must not be empty")
	}
	v.protocol(path+".protocol", in.Protocol)
	v.timeouts(path+".timeouts", in.Timeouts)
	if !v.unique(uniqueKey{kind: "listen", name: in.Address, port: in.Port}) {
		v.add(path, "address %s is used by another inbound or outbound", net.JoinHostPort(in.Address, strconv.Itoa(int(in.Port))))
	}
	if az := in.Authorization; az != nil {
		for i, pr := range append(append([]Principal(nil), az.Allow...), az.Deny...) {
			if pr.Any == (pr.SPIFFEID != "") {
				v.add(fmt.Sprintf("%s.authorization.principals[%d]", path, i), "must set exactly one of any and spiffeID")
			}
		}
	}
}

func (v *validator) outbound(path string, o *Outbound, f Flavour, clusters map[string]bool) {
	if o.Service == "" {
		v.add(path+".service", "must not be empty")
	}
	v.protocol(path+".protocol", o.Protocol)
	v.timeouts(path+".timeouts", o.Timeouts)
	if f == FlavourProxyless {
		if name := o.ListenerName(); !v.unique(uniqueKey{kind: "client", name: name}) {
			v.add(path+".hostname", "listener %q is used by another outbound", name)
		}
	} else {
		if _, err := netip.ParseAddr(o.Address); err != nil {
			v.add(path+".address", "must be an IP address, got %q", o.Address)
		}
		v.port(path+".port", o.Port, false)
		if !v.unique(uniqueKey{kind: "listen", name: o.Address, port: o.Port}) {
			v.add(path, "address %s is used by another inbound or outbound", net.JoinHostPort(o.Address, strconv.Itoa(int(o.Port))))
		}
	}
	if len(o.Routes) == 0 {
		v.add(path+".routes", "must not be empty")
	}
	if !o.Protocol.IsHTTP() && f == FlavourEnvoy && len(o.Routes) > 1 {
		v.add(path+".routes", "a TCP outbound takes exactly one route, got %d", len(o.Routes))
	}
	for i := range o.Routes {
		r := &o.Routes[i]
		rp := fmt.Sprintf("%s.routes[%d]", path, i)
		if !o.Protocol.IsHTTP() && f == FlavourEnvoy && (r.Match.Path != "" || r.Match.PathPrefix != "" || len(r.Match.Headers) > 0) {
			v.add(rp+".match", "must be empty on a TCP outbound")
		}
		if len(r.Clusters) == 0 {
			v.add(rp+".clusters", "must not be empty")
		}
		for j, wc := range r.Clusters {
			if !clusters[wc.Name] {
				v.add(fmt.Sprintf("%s.clusters[%d].name", rp, j), "cluster %q is not defined", wc.Name)
			}
		}
		if rt := r.Retry; rt != nil && len(rt.On) == 0 {
			v.add(rp+".retry.on", "must not be empty")
		}
	}
}

func (v *validator) cluster(path string, c *Cluster, mtls bool) {
	if c.Name == "" {
		v.add(path+".name", "must not be empty")
	}
	if c.Service == "" {
		v.add(path+".service", "must not be empty")
	}
	v.protocol(path+".protocol", c.Protocol)
	if mtls && c.ExpectedSAN == "" {
		v.add(path+".expectedSAN", "must be set when mTLS is on")
	}
	if c.ConnectTimeout < 0 || c.IdleTimeout < 0 {
		v.add(path, "timeouts must not be negative")
	}
	// gRPC rejects a locality listed twice at one priority, priorities with
	// gaps, and an endpoint address listed twice.
	maxPriority := -1
	priorities := map[uint32]bool{}
	for i, l := range c.Localities {
		if !v.unique(uniqueKey{kind: "locality", scope: c.Name, name: l.Zone + "\x00" + l.SubZone, port: l.Priority}) {
			v.add(fmt.Sprintf("%s.localities[%d]", path, i), "zone %q sub-zone %q appears twice at priority %d", l.Zone, l.SubZone, l.Priority)
		}
		priorities[l.Priority] = true
		maxPriority = max(maxPriority, int(l.Priority))
		for j, e := range l.Endpoints {
			// Paths are formatted only for problems: this loop runs for
			// every endpoint of every cluster.
			if !v.unique(uniqueKey{kind: "endpoint", scope: c.Name, name: e.Address, port: e.Port}) {
				v.add(fmt.Sprintf("%s.localities[%d].endpoints[%d]", path, i, j), "endpoint %s appears twice", net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port))))
			}
			if _, err := netip.ParseAddr(e.Address); err != nil {
				v.add(fmt.Sprintf("%s.localities[%d].endpoints[%d].address", path, i, j), "must be an IP address, got %q", e.Address)
			}
			if e.Port == 0 || e.Port > 65535 {
				v.port(fmt.Sprintf("%s.localities[%d].endpoints[%d].port", path, i, j), e.Port, false)
			}
		}
	}
	for p := range maxPriority + 1 {
		if !priorities[uint32(p)] {
			v.add(path+".localities", "priorities must run from 0 without gaps; %d is missing", p)
			break
		}
	}
}
