package build

import (
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// inboundCore fills the per-proxy part of p: identity, node, mTLS,
// transparent proxying, inbounds and secrets.
func (c *ctx) inboundCore(p *ir.Proxy, id *Identity) error {
	net := &c.dp.Spec.Networking
	p.Identity = ir.Identity{Mesh: c.snap.Mesh(), Dataplane: c.dp.Name(), Services: c.dp.Services()}
	p.Flavour = c.flavour
	p.Node = ir.Node{ID: c.dp.Key().String(), Address: net.Address}
	if c.flavour == ir.FlavourEnvoy {
		p.Node.AdminPort = DefaultAdminPort
		if net.Admin != nil && net.Admin.Port != 0 {
			p.Node.AdminPort = net.Admin.Port
		}
	}
	p.MTLS = ir.NewMTLS(c.snap.MTLSMode())
	p.TransparentProxy = c.transparentProxy()
	for i := range net.Inbound {
		in := &net.Inbound[i]
		if in.State == dataplane.StateIgnored {
			continue
		}
		proto := protocolOf(in.Tags[dataplane.ProtocolTag])
		ib := ir.Inbound{
			Name:     in.Name,
			Address:  in.Address,
			Port:     in.Port,
			Service:  in.Service(),
			Tags:     cloneTags(in.Tags),
			Protocol: proto,
			Timeouts: inboundDefaults(proto),
		}
		if ib.Address == "" {
			ib.Address = net.Address
		}
		if c.flavour == ir.FlavourEnvoy {
			ib.ServiceAddress, ib.ServicePort = in.ServiceAddress, in.ServicePort
		}
		p.Inbounds = append(p.Inbounds, ib)
	}
	if p.MTLS.Enabled() && c.flavour == ir.FlavourEnvoy {
		if id == nil || id.CertificateChain == "" || id.PrivateKey == "" || id.TrustBundle == "" {
			return c.errorf("mTLS is on but no workload certificate has been issued for the proxy")
		}
		p.Secrets = []ir.Secret{
			{Name: p.MTLS.IdentityCert, CertificateChain: id.CertificateChain, PrivateKey: id.PrivateKey},
			{Name: p.MTLS.CA, TrustedCA: id.TrustBundle},
		}
	}
	return nil
}

// protocolOf maps a kuma.io/protocol value to the IR (kafka, tls and
// unknown values are TCP).
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

// inboundDefaults returns ir.DefaultTimeouts without the HTTP timeouts for
// TCP traffic.
func inboundDefaults(p ir.Protocol) ir.Timeouts {
	t := ir.DefaultTimeouts()
	if !p.IsHTTP() {
		t.RequestTimeout, t.StreamIdleTimeout = 0, 0
	}
	return t
}

// outboundDefaults returns the default timeouts of an outbound: those of an
// inbound without the connect timeout, which belongs to the cluster.
func outboundDefaults(p ir.Protocol) ir.Timeouts {
	t := inboundDefaults(p)
	t.ConnectTimeout = 0
	return t
}
