// Package meshtimeout holds the MeshTimeout policy type: connection, idle and
// HTTP timeouts for the traffic of the selected proxies, as in Kuma.
package meshtimeout

import (
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/validate"
)

// Spec is the MeshTimeout spec.
type Spec struct {
	// TargetRef selects the proxies the policy applies to; absent means the whole mesh.
	TargetRef *targetref.TargetRef `json:"targetRef,omitempty"`
	// To configures outbound traffic per destination.
	To []targetref.To[Conf] `json:"to,omitempty"`
	// From configures inbound traffic per source (deprecated in Kuma in favour of rules).
	From []targetref.From[Conf] `json:"from,omitempty"`
	// Rules configure all inbound traffic.
	Rules []targetref.Rule[Conf] `json:"rules,omitempty"`
}

// Conf is one set of timeouts. Absent fields keep the value of less specific
// policies (or the built-in default); "0s" disables a timeout.
type Conf struct {
	// ConnectionTimeout bounds establishing a connection to an upstream.
	ConnectionTimeout duration.Duration `json:"connectionTimeout,omitempty"`
	// IdleTimeout closes a connection with no traffic for this long.
	IdleTimeout duration.Duration `json:"idleTimeout,omitempty"`
	// HTTP holds the timeouts of HTTP traffic.
	HTTP *HTTP `json:"http,omitempty"`
}

// HTTP holds HTTP-level timeouts.
type HTTP struct {
	// RequestTimeout bounds a whole request/response exchange.
	RequestTimeout duration.Duration `json:"requestTimeout,omitempty"`
	// StreamIdleTimeout closes a stream with no activity for this long.
	StreamIdleTimeout duration.Duration `json:"streamIdleTimeout,omitempty"`
	// MaxStreamDuration bounds the lifetime of a stream.
	MaxStreamDuration duration.Duration `json:"maxStreamDuration,omitempty"`
	// MaxConnectionDuration bounds the lifetime of a connection.
	MaxConnectionDuration duration.Duration `json:"maxConnectionDuration,omitempty"`
	// RequestHeadersTimeout bounds receiving the request headers.
	RequestHeadersTimeout duration.Duration `json:"requestHeadersTimeout,omitempty"`
}

// Top-level, to and from kinds MeshTimeout accepts.
var (
	topKinds = []targetref.Kind{targetref.Mesh, targetref.MeshSubset, targetref.MeshService,
		targetref.MeshServiceSubset, targetref.MeshGateway, targetref.MeshHTTPRoute, targetref.Dataplane}
	toKinds   = []targetref.Kind{targetref.Mesh, targetref.MeshService, targetref.MeshExternalService, targetref.MeshMultiZoneService}
	fromKinds = []targetref.Kind{targetref.Mesh}
)

// Validate reports every problem of the spec, with paths below "spec".
func (s *Spec) Validate() validate.Errors {
	var errs validate.Errors
	p := validate.Path("spec")
	if s.TargetRef != nil {
		errs.Append(s.TargetRef.Validate(p.Field("targetRef"), topKinds...))
	}
	if len(s.To) == 0 && len(s.From) == 0 && len(s.Rules) == 0 {
		errs.Add(p, "at least one of to, from or rules must be set")
	}
	for i := range s.To {
		ip := p.Field("to").Index(i)
		errs.Append(s.To[i].TargetRef.Validate(ip.Field("targetRef"), toKinds...))
		errs.Append(s.To[i].Default.validate(ip.Field("default")))
	}
	for i := range s.From {
		ip := p.Field("from").Index(i)
		errs.Append(s.From[i].TargetRef.Validate(ip.Field("targetRef"), fromKinds...))
		errs.Append(s.From[i].Default.validate(ip.Field("default")))
	}
	for i := range s.Rules {
		errs.Append(s.Rules[i].Default.validate(p.Field("rules").Index(i).Field("default")))
	}
	return errs
}

func (c *Conf) validate(p validate.Path) validate.Errors {
	var errs validate.Errors
	if !c.ConnectionTimeout.IsSet() && !c.IdleTimeout.IsSet() && c.HTTP == nil {
		errs.Add(p, "at least one timeout must be set")
	}
	nonNegative(&errs, p.Field("connectionTimeout"), c.ConnectionTimeout)
	nonNegative(&errs, p.Field("idleTimeout"), c.IdleTimeout)
	if c.ConnectionTimeout.IsSet() && c.ConnectionTimeout.Std() == 0 {
		errs.Add(p.Field("connectionTimeout"), "must be greater than zero when defined")
	}
	if h := c.HTTP; h != nil {
		hp := p.Field("http")
		nonNegative(&errs, hp.Field("requestTimeout"), h.RequestTimeout)
		nonNegative(&errs, hp.Field("streamIdleTimeout"), h.StreamIdleTimeout)
		nonNegative(&errs, hp.Field("maxStreamDuration"), h.MaxStreamDuration)
		nonNegative(&errs, hp.Field("maxConnectionDuration"), h.MaxConnectionDuration)
		nonNegative(&errs, hp.Field("requestHeadersTimeout"), h.RequestHeadersTimeout)
	}
	return errs
}

func nonNegative(errs *validate.Errors, p validate.Path, d duration.Duration) {
	if !d.IsSet() {
		return
	}
	v, err := d.Parse()
	switch {
	case err != nil:
		errs.Add(p, "%s", err.Error())
	case v < 0:
		errs.Add(p, "must not be negative")
	}
}
