package translate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// digest is a 128-bit content hash of the IR a resource is rendered from,
// stable across processes and runs.
type digest [16]byte

// String returns the digest as 32 hexadecimal digits.
func (d digest) String() string { return hex.EncodeToString(d[:]) }

// digester writes IR values in a canonical binary form (every value with
// its length or a fixed width) into a buffer hashed with SHA-256 at the end.
// It is the cheap alternative to ir.Proxy.Hash (a JSON encoding) for the
// per-resource cache keys and for versions; TestDigestCoversEveryField keeps
// it in step with the IR.
type digester struct {
	buf []byte
}

func newDigester() *digester { return &digester{buf: make([]byte, 0, 256)} }

func (d *digester) reset() { d.buf = d.buf[:0] }

func (d *digester) u64(v uint64) { d.buf = binary.LittleEndian.AppendUint64(d.buf, v) }

func (d *digester) str(s string) {
	d.u64(uint64(len(s)))
	d.buf = append(d.buf, s...)
}

func (d *digester) dur(v time.Duration) { d.u64(uint64(v)) }

func (d *digester) flag(b bool) {
	if b {
		d.buf = append(d.buf, 1)
	} else {
		d.buf = append(d.buf, 0)
	}
}

func (d *digester) digest(x digest) { d.buf = append(d.buf, x[:]...) }

func (d *digester) strMap(m map[string]string) {
	d.u64(uint64(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			d.str(k)
			d.str(v)
		}
		return
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.str(k)
		d.str(m[k])
	}
}

func (d *digester) sum() digest {
	full := sha256.Sum256(d.buf)
	var out digest
	copy(out[:], full[:])
	return out
}

// context writes the proxy-wide settings every piece's rendering depends on.
func (d *digester) context(p *ir.Proxy) {
	d.str(Revision)
	d.str(string(p.Flavour))
	d.str(string(p.MTLS.Mode))
	d.str(p.MTLS.IdentityCert)
	d.str(p.MTLS.CA)
	d.u64(uint64(p.TransparentProxy.RedirectPortInbound))
	d.u64(uint64(p.TransparentProxy.RedirectPortOutbound))
	d.flag(p.TransparentProxy.Passthrough)
}

func (d *digester) timeouts(t *ir.Timeouts) {
	d.dur(t.ConnectTimeout)
	d.dur(t.IdleTimeout)
	d.dur(t.RequestTimeout)
	d.dur(t.StreamIdleTimeout)
	d.dur(t.MaxStreamDuration)
	d.dur(t.MaxConnectionDuration)
	d.dur(t.RequestHeadersTimeout)
}

func (d *digester) cluster(c *ir.Cluster) {
	d.str(c.Name)
	d.str(c.Service)
	d.str(string(c.Protocol))
	d.str(c.ExpectedSAN)
	d.dur(c.ConnectTimeout)
	d.dur(c.IdleTimeout)
	d.u64(uint64(len(c.Localities)))
	for i := range c.Localities {
		l := &c.Localities[i]
		d.str(l.Zone)
		d.str(l.SubZone)
		d.u64(uint64(l.Weight))
		d.u64(uint64(l.Priority))
		d.u64(uint64(len(l.Endpoints)))
		for _, e := range l.Endpoints {
			d.str(e.Address)
			d.u64(uint64(e.Port))
			d.u64(uint64(e.Weight))
		}
	}
}

func (d *digester) outbound(o *ir.Outbound) {
	d.str(o.Address)
	d.u64(uint64(o.Port))
	d.str(o.Hostname)
	d.str(o.Service)
	d.str(string(o.Protocol))
	d.timeouts(&o.Timeouts)
	d.u64(uint64(len(o.Routes)))
	for i := range o.Routes {
		r := &o.Routes[i]
		d.str(r.Name)
		d.str(r.Match.PathPrefix)
		d.str(r.Match.Path)
		d.strMap(r.Match.Headers)
		d.u64(uint64(len(r.Clusters)))
		for _, c := range r.Clusters {
			d.str(c.Name)
			d.u64(uint64(c.Weight))
		}
		d.flag(r.Retry != nil)
		if rt := r.Retry; rt != nil {
			d.u64(uint64(len(rt.On)))
			for _, on := range rt.On {
				d.str(on)
			}
			d.u64(uint64(rt.NumRetries))
			d.dur(rt.PerTryTimeout)
			d.dur(rt.BaseInterval)
			d.dur(rt.MaxInterval)
		}
		d.flag(r.RequestTimeout != nil)
		if r.RequestTimeout != nil {
			d.dur(*r.RequestTimeout)
		}
	}
}

func (d *digester) inbound(in *ir.Inbound) {
	d.str(in.Name)
	d.str(in.Address)
	d.u64(uint64(in.Port))
	d.str(in.ServiceAddress)
	d.u64(uint64(in.ServicePort))
	d.str(in.Service)
	d.strMap(in.Tags)
	d.str(string(in.Protocol))
	d.timeouts(&in.Timeouts)
	d.flag(in.Authorization != nil)
	if az := in.Authorization; az != nil {
		for _, list := range [][]ir.Principal{az.Allow, az.Deny} {
			d.u64(uint64(len(list)))
			for _, pr := range list {
				d.flag(pr.Any)
				d.str(pr.SPIFFEID)
			}
		}
	}
}

func (d *digester) secret(s *ir.Secret) {
	d.str(s.Name)
	d.str(s.CertificateChain)
	d.str(s.PrivateKey)
	d.str(s.TrustedCA)
}
