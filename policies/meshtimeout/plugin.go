package meshtimeout

import (
	"time"

	"github.com/atoll-mesh/atoll/api/duration"
	api "github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// Plugin applies MeshTimeout policies: to[] entries set the timeouts of the
// outbounds and clusters of each destination, rules[] and from[] those of
// inbounds. Every value starts from ir.DefaultTimeouts (Kuma's default
// MeshTimeout) and is overridden by the merged confs pkg/match computes.
//
// Mapping: connectionTimeout is the cluster's connect timeout (outbound) and
// the connect timeout to the application (inbound); idleTimeout is the idle
// timeout of connections on both sides; the http section sets the HTTP
// timeouts, which only HTTP, HTTP/2 and gRPC traffic keeps (maxConnectionDuration
// applies to TCP as well).
type Plugin struct{}

var _ policy.Plugin = (*Plugin)(nil)

// New returns the MeshTimeout plugin.
func New() *Plugin { return &Plugin{} }

// Type returns "MeshTimeout".
func (*Plugin) Type() string { return TypeName }

// Targets reads the targetRef, to[], from[] and rules[] of a MeshTimeout.
func (*Plugin) Targets(res *resource.Resource) policy.Targets {
	return policy.TargetsOf[api.Conf](res.Spec)
}

// Prepare indexes the mesh's MeshTimeouts with pkg/match.
func (*Plugin) Prepare(snap *snapshot.Snapshot) (policy.Prepared, error) {
	prep, err := match.Prepare[api.Conf](match.Inputs{Type: TypeName, Mesh: snap.Mesh(), MeshServices: snap.MeshServices()}, snap.Policies(TypeName))
	if err != nil {
		return nil, err
	}
	return &prepared{snap: snap, prep: prep}, nil
}

type prepared struct {
	snap *snapshot.Snapshot
	prep *match.Prepared[api.Conf]
}

// Match selects and merges the MeshTimeouts of one dataplane.
func (p *prepared) Match(dp *snapshot.Dataplane) (policy.Matched, error) {
	return &matched{snap: p.snap, res: p.prep.Match(dp.Resource.Meta, dp.Spec)}, nil
}

type matched struct {
	snap *snapshot.Snapshot
	res  *match.Result[api.Conf]
}

// Explain returns the match: selected MeshTimeouts and merged confs with
// their contributors.
func (m *matched) Explain() any { return m.res }

// OutboundKey names the selected policies that have to[] entries.
func (m *matched) OutboundKey() string {
	return policy.OutboundKeyOf(m.snap, TypeName, m.res.Policies, func(name string) bool {
		pol := m.snap.Policy(TypeName, name)
		if pol == nil {
			return false
		}
		spec, ok := pol.Spec.(*api.Spec)
		return ok && len(spec.To) > 0
	})
}

// Outbound sets the timeouts of every cluster and outbound.
func (m *matched) Outbound(p *ir.Proxy) error {
	for i := range p.Clusters {
		c := &p.Clusters[i]
		t := m.outbound(policy.DestinationOf(m.snap, c))
		c.ConnectTimeout, c.IdleTimeout = t.ConnectTimeout, t.IdleTimeout
	}
	clusters := policy.ClustersByName(p)
	for i := range p.Outbounds {
		o := &p.Outbounds[i]
		o.Timeouts = OutboundTimeouts(m.outbound(policy.OutboundDestination(m.snap, o, clusters)), o.Protocol)
	}
	return nil
}

// outbound returns the timeouts of traffic to d.
func (m *matched) outbound(d match.Destination) ir.Timeouts {
	t := ir.DefaultTimeouts()
	if merged, ok := m.res.To.For(d); ok {
		t = Apply(t, merged.Conf)
	}
	return t
}

// Inbound sets the timeouts of every inbound: the merged from[] entries of
// kind Mesh, then the merged rules[] on top.
func (m *matched) Inbound(p *ir.Proxy) error {
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		t := ir.DefaultTimeouts()
		if r := m.res.Inbound(in.Port); r != nil {
			if r.From.AllSources != nil {
				t = Apply(t, r.From.AllSources.Conf)
			}
			if r.Rules != nil {
				t = Apply(t, r.Rules.Conf)
			}
		}
		in.Timeouts = InboundTimeouts(t, in.Protocol)
	}
	return nil
}

// Apply returns t with every timeout c sets replaced.
func Apply(t ir.Timeouts, c api.Conf) ir.Timeouts {
	set := func(dst *time.Duration, d duration.Duration) {
		if d.IsSet() {
			*dst = d.Std()
		}
	}
	set(&t.ConnectTimeout, c.ConnectionTimeout)
	set(&t.IdleTimeout, c.IdleTimeout)
	if h := c.HTTP; h != nil {
		set(&t.RequestTimeout, h.RequestTimeout)
		set(&t.StreamIdleTimeout, h.StreamIdleTimeout)
		set(&t.MaxStreamDuration, h.MaxStreamDuration)
		set(&t.MaxConnectionDuration, h.MaxConnectionDuration)
		set(&t.RequestHeadersTimeout, h.RequestHeadersTimeout)
	}
	return t
}

// OutboundTimeouts keeps what applies to an outbound of protocol p: the
// connect timeout belongs to the cluster, and TCP traffic has no HTTP
// timeouts.
func OutboundTimeouts(t ir.Timeouts, p ir.Protocol) ir.Timeouts {
	t.ConnectTimeout = 0
	return forProtocol(t, p)
}

// InboundTimeouts keeps what applies to an inbound of protocol p.
func InboundTimeouts(t ir.Timeouts, p ir.Protocol) ir.Timeouts { return forProtocol(t, p) }

func forProtocol(t ir.Timeouts, p ir.Protocol) ir.Timeouts {
	if !p.IsHTTP() {
		t.RequestTimeout, t.StreamIdleTimeout, t.MaxStreamDuration, t.RequestHeadersTimeout = 0, 0, 0, 0
	}
	return t
}
