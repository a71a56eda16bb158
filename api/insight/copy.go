package insight

import (
	"maps"
	"slices"
	"time"
)

// DeepCopySpec returns a copy of d that shares no memory with it. Stores
// copy every insight they keep and return; the insights of thousands of
// proxies are rewritten after each change that reaches them, and a JSON
// round trip cost several times more than this.
func (d *DataplaneInsight) DeepCopySpec() any { return d.DeepCopy() }

// DeepCopy returns a copy of d that shares no memory with it. Times lose
// their monotonic clock reading, as they would through JSON.
func (d *DataplaneInsight) DeepCopy() *DataplaneInsight {
	if d == nil {
		return nil
	}
	out := &DataplaneInsight{}
	if d.Subscriptions != nil {
		out.Subscriptions = make([]Subscription, len(d.Subscriptions))
		for i, s := range d.Subscriptions {
			out.Subscriptions[i] = s.deepCopy()
		}
	}
	if d.MTLS != nil {
		m := *d.MTLS
		m.CertificateExpirationTime = copyTime(m.CertificateExpirationTime)
		m.LastCertificateRegeneration = copyTime(m.LastCertificateRegeneration)
		m.SupportedBackends = slices.Clone(m.SupportedBackends)
		out.MTLS = &m
	}
	return out
}

func (s Subscription) deepCopy() Subscription {
	s.ConnectTime = copyTime(s.ConnectTime)
	s.DisconnectTime = copyTime(s.DisconnectTime)
	s.Status.LastUpdateTime = copyTime(s.Status.LastUpdateTime)
	if s.Version != nil {
		v := *s.Version
		v.KumaDp = copyComponent(v.KumaDp)
		v.Envoy = copyComponent(v.Envoy)
		v.Dependencies = maps.Clone(v.Dependencies)
		s.Version = &v
	}
	return s
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := t.Round(0)
	return &c
}

func copyComponent(c *Component) *Component {
	if c == nil {
		return nil
	}
	out := *c
	return &out
}
