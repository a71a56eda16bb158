package build

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/policy"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// Batch builds the proxies of one snapshot, sharing their outbound parts:
// proxies whose outbound inputs are equal (flavour, transparent proxying,
// declared outbounds, reachable services, and each plugin's OutboundKey)
// get the very same OutboundPart, built, normalized and validated once. It
// is safe for concurrent use; a Batch lives as long as its snapshot is
// current.
type Batch struct {
	snap    *snapshot.Snapshot
	plugins *policy.Registry

	mu    sync.Mutex
	parts map[string]*partEntry
}

type partEntry struct {
	once sync.Once
	part *OutboundPart
	err  error
}

// Result is one proxy built by a Batch.
type Result struct {
	// Proxy is the proxy's configuration, normalized and valid, equal to
	// what Build returns. Its Outbounds and Clusters are Outbound's:
	// shared, read-only.
	Proxy *ir.Proxy
	// Outbound is the shared outbound part.
	Outbound *OutboundPart
}

// NewBatch returns a Batch for snap; plugins may be nil.
func NewBatch(snap *snapshot.Snapshot, plugins *policy.Registry) *Batch {
	return &Batch{snap: snap, plugins: plugins, parts: map[string]*partEntry{}}
}

// Snapshot returns the batch's snapshot.
func (b *Batch) Snapshot() *snapshot.Snapshot { return b.snap }

// Parts returns how many distinct outbound parts the batch has built.
func (b *Batch) Parts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.parts)
}

// Build builds one proxy of the batch's snapshot; see Input for the
// parameters.
func (b *Batch) Build(dataplaneName string, flavour ir.Flavour, id *Identity) (*Result, error) {
	c, err := newCtx(b.snap, b.plugins, dataplaneName, flavour)
	if err != nil {
		return nil, err
	}
	part, err := b.part(c)
	if err != nil {
		return nil, err
	}
	p := &ir.Proxy{}
	if err := c.inboundCore(p, id); err != nil {
		return nil, err
	}
	for _, m := range c.matched {
		if err := m.Inbound(p); err != nil {
			return nil, c.errorf("inbound policies: %w", err)
		}
	}
	p.Normalize()
	if err := errors.Join(p.Validate(), part.conflicts(p)); err != nil {
		return nil, c.errorf("invalid configuration: %w", err)
	}
	p.Outbounds, p.Clusters = part.Outbounds, part.Clusters
	return &Result{Proxy: p, Outbound: part}, nil
}

// part returns the outbound part of c's proxy, building it on first use.
func (b *Batch) part(c *ctx) (*OutboundPart, error) {
	key := c.outboundKey()
	b.mu.Lock()
	e, ok := b.parts[key]
	if !ok {
		e = &partEntry{}
		b.parts[key] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.part, e.err = c.buildPart(key) })
	return e.part, e.err
}

// buildPart builds, normalizes and validates an outbound part.
func (c *ctx) buildPart(key string) (*OutboundPart, error) {
	part := c.outboundCore()
	part.Key = key
	p := part.Proxy()
	for _, m := range c.matched {
		if err := m.Outbound(p); err != nil {
			return nil, c.errorf("outbound policies: %w", err)
		}
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return nil, c.errorf("invalid configuration: %w", err)
	}
	part.Outbounds, part.Clusters = p.Outbounds, p.Clusters
	if part.Flavour == ir.FlavourEnvoy {
		part.listen = make(map[listenKey]struct{}, len(part.Outbounds))
		for i := range part.Outbounds {
			part.listen[listenKey{part.Outbounds[i].Address, part.Outbounds[i].Port}] = struct{}{}
		}
	}
	return part, nil
}

// conflicts reports inbounds of p that listen where an outbound of the part
// does, the one check of ir.Proxy.Validate that spans both parts.
func (o *OutboundPart) conflicts(p *ir.Proxy) error {
	var errs []error
	for i := range p.Inbounds {
		in := &p.Inbounds[i]
		if _, taken := o.listen[listenKey{in.Address, in.Port}]; taken {
			errs = append(errs, fmt.Errorf("inbounds[%d]: address %s is used by another inbound or outbound", i, net.JoinHostPort(in.Address, strconv.Itoa(int(in.Port)))))
		}
	}
	return errors.Join(errs...)
}

// outboundKey identifies everything the outbound part depends on besides
// the snapshot: flavour, transparent proxying, declared outbounds, reachable
// services and the plugins' outbound keys.
func (c *ctx) outboundKey() string {
	x := snapshot.NewHasher()
	x.String(string(c.flavour))
	tp := c.transparentProxy()
	x.Uint64(uint64(tp.RedirectPortInbound))
	x.Uint64(uint64(tp.RedirectPortOutbound))
	x.Bool(tp.Passthrough)
	net := &c.dp.Spec.Networking
	x.Uint64(uint64(len(net.Outbound)))
	for i := range net.Outbound {
		hashOutbound(x, &net.Outbound[i])
	}
	if t := net.TransparentProxying; t != nil {
		x.Uint64(uint64(len(t.ReachableServices)))
		for _, s := range t.ReachableServices {
			x.String(s)
		}
		if t.ReachableBackends != nil {
			x.Uint64(uint64(len(t.ReachableBackends.Refs)))
			for _, r := range t.ReachableBackends.Refs {
				x.String(r.Kind)
				x.String(r.Name)
				x.String(r.Namespace)
				x.Uint64(uint64(r.Port))
				x.StringMap(r.Labels)
			}
		}
	}
	for _, m := range c.matched {
		x.String(m.OutboundKey())
	}
	return x.Sum().String()
}

func hashOutbound(x *snapshot.Hasher, o *dataplane.Outbound) {
	x.Uint64(uint64(o.Port))
	x.String(o.Address)
	x.StringMap(o.Tags)
	if r := o.BackendRef; r != nil {
		x.String(r.Kind)
		x.String(r.Name)
		x.Uint64(uint64(r.Port))
		x.StringMap(r.Labels)
	}
}
