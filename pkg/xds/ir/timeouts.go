package ir

import "time"

// DefaultConnectTimeout is used where a connect timeout is zero: Envoy has
// no way to disable it.
const DefaultConnectTimeout = 5 * time.Second

// Timeouts are the effective MeshTimeout values for one side of traffic. A
// zero duration disables that timeout, except ConnectTimeout, where zero means
// DefaultConnectTimeout. The builder starts from DefaultTimeouts and lets the
// merged MeshTimeout configuration override it.
type Timeouts struct {
	// ConnectTimeout bounds establishing a connection to an upstream.
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty" yaml:"connectTimeout,omitempty"`
	// IdleTimeout closes a connection with no active stream (HTTP) or no
	// traffic (TCP) for this long.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty" yaml:"idleTimeout,omitempty"`
	// RequestTimeout bounds a whole HTTP request/response exchange. It is
	// also a proxyless gRPC client's deadline cap (max_stream_duration).
	RequestTimeout time.Duration `json:"requestTimeout,omitempty" yaml:"requestTimeout,omitempty"`
	// StreamIdleTimeout resets an HTTP stream with no activity for this long.
	StreamIdleTimeout time.Duration `json:"streamIdleTimeout,omitempty" yaml:"streamIdleTimeout,omitempty"`
	// MaxStreamDuration bounds the lifetime of an HTTP stream.
	MaxStreamDuration time.Duration `json:"maxStreamDuration,omitempty" yaml:"maxStreamDuration,omitempty"`
	// MaxConnectionDuration bounds the lifetime of a connection.
	MaxConnectionDuration time.Duration `json:"maxConnectionDuration,omitempty" yaml:"maxConnectionDuration,omitempty"`
	// RequestHeadersTimeout bounds receiving an HTTP request's headers.
	RequestHeadersTimeout time.Duration `json:"requestHeadersTimeout,omitempty" yaml:"requestHeadersTimeout,omitempty"`
}

// DefaultTimeouts returns the timeouts that apply when no MeshTimeout sets
// them; they are the values of Kuma's default MeshTimeout policy.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		ConnectTimeout:    DefaultConnectTimeout,
		IdleTimeout:       time.Hour,
		RequestTimeout:    15 * time.Second,
		StreamIdleTimeout: 30 * time.Minute,
	}
}

// StreamDeadline returns the longest a single stream may last under t: the
// smaller of RequestTimeout and MaxStreamDuration that is set, or zero when
// neither is. Proxyless gRPC clients enforce it as their deadline cap.
func (t Timeouts) StreamDeadline() time.Duration {
	switch {
	case t.RequestTimeout == 0:
		return t.MaxStreamDuration
	case t.MaxStreamDuration == 0:
		return t.RequestTimeout
	default:
		return min(t.RequestTimeout, t.MaxStreamDuration)
	}
}
