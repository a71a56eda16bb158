package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// xdsType indexes the resource types a simulated proxy asks for.
type xdsType int

// The types, in the order an Envoy proxy initialises them.
const (
	typeCDS xdsType = iota
	typeEDS
	typeLDS
	typeRDS
	typeSDS
	numTypes
)

// typeURL returns the type URL of t.
func (t xdsType) typeURL() string {
	switch t {
	case typeCDS:
		return "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	case typeEDS:
		return "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	case typeLDS:
		return "type.googleapis.com/envoy.config.listener.v3.Listener"
	case typeRDS:
		return "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	case typeSDS:
		return "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
	}
	return ""
}

// String returns the short name of t ("cds").
func (t xdsType) String() string {
	switch t {
	case typeCDS:
		return "cds"
	case typeEDS:
		return "eds"
	case typeLDS:
		return "lds"
	case typeRDS:
		return "rds"
	case typeSDS:
		return "sds"
	}
	return "unknown"
}

// parseType reads a short type name.
func parseType(s string) (xdsType, error) {
	for t := range numTypes {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown xDS type %q (want cds, eds, lds, rds or sds)", s)
}

// typeOfURL returns the type of a type URL, or -1.
func typeOfURL(url string) xdsType {
	for t := range numTypes {
		if t.typeURL() == url {
			return t
		}
	}
	return -1
}

// ADS method names.
const (
	sotwMethod  = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
	deltaMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
)

// proxy is one simulated proxy: its own TLS connection and ADS stream,
// reconnected with jittered exponential backoff when it breaks.
type proxy struct {
	g     *generator
	index int
	name  string
	token string
	node  *corev3.Node
	rec   record
}

// run keeps the proxy connected until ctx ends. The first session waits
// for a slot of the initial connection limit.
func (p *proxy) run(ctx context.Context, slots chan struct{}) {
	failures := 0
	first := true
	for ctx.Err() == nil {
		var release func()
		if first && slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			released := false
			release = func() {
				if !released {
					released = true
					<-slots
				}
			}
		}
		wasReady, err := p.session(ctx, release)
		if release != nil {
			release()
		}
		first = false
		p.rec.disconnected(p.g)
		if ctx.Err() != nil {
			return
		}
		if wasReady {
			failures = 0
		}
		failures++
		delay := p.g.cfg.backoff(failures)
		p.g.logf("proxy %s: stream ended (%v); reconnecting in %s", p.name, err, delay.Round(time.Millisecond))
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
	}
}

// backoff returns the delay before reconnection attempt n (1, 2, …):
// Envoy's full jitter, uniform in [0, min(base·2^(n-1), max)).
func (c config) backoff(n int) time.Duration {
	d := c.backoffBase
	for i := 1; i < n && d < c.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.backoffMax)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// session runs one connection and stream until it breaks; it reports
// whether the proxy had its whole configuration on it. release, when not
// nil, is called once the first response arrived.
func (p *proxy) session(ctx context.Context, release func()) (bool, error) {
	conn, err := grpc.NewClient("passthrough:///"+p.g.cfg.addr, p.g.dialOptions...)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.token != "" {
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+p.token)
	}
	method, desc := sotwMethod, &grpc.StreamDesc{StreamName: "StreamAggregatedResources", ServerStreams: true, ClientStreams: true}
	if p.g.cfg.delta {
		method, desc = deltaMethod, &grpc.StreamDesc{StreamName: "DeltaAggregatedResources", ServerStreams: true, ClientStreams: true}
	}
	// Fail fast: a new connection makes one attempt, and a refused or
	// broken one ends the session (the caller backs off).
	stream, err := conn.NewStream(sctx, desc, method, grpc.ForceCodecV2(wireCodec{}), grpc.MaxCallRecvMsgSize(1<<30))
	if err != nil {
		return false, err
	}
	s := &streamState{p: p, stream: stream, release: release, nodeSent: false}
	if p.g.cfg.delta {
		err = s.runDelta()
	} else {
		err = s.runSotW()
	}
	return s.ready, err
}

// streamState is the bookkeeping of one ADS stream, owned by the
// session's goroutine.
type streamState struct {
	p        *proxy
	stream   grpc.ClientStream
	release  func()
	nodeSent bool
	attached bool
	ready    bool
	received [numTypes]bool

	// SotW only, per type.
	requested [numTypes]bool
	names     [numTypes][]string // subscribed names; nil is a wildcard
	version   [numTypes]string   // last accepted
	nonce     [numTypes]string   // of the last response
}

// node returns the node for the first request of the stream, nil after.
func (s *streamState) node() *corev3.Node {
	if s.nodeSent {
		return nil
	}
	s.nodeSent = true
	return s.p.node
}

// wants reports whether the proxy asks for type t at all.
func (s *streamState) wants(t xdsType) bool { return s.p.g.cfg.types[t] }

// sotwRequest sends a SotW request for t with the current subscription;
// nack carries a rejection of the last response.
func (s *streamState) sotwRequest(t xdsType, nack string) error {
	s.requested[t] = true
	req := &discoveryv3.DiscoveryRequest{
		Node: s.node(), TypeUrl: t.typeURL(), ResourceNames: s.names[t],
		VersionInfo: s.version[t], ResponseNonce: s.nonce[t],
	}
	if nack != "" {
		req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: nack}
	}
	return s.stream.SendMsg(req)
}

// runSotW behaves like Envoy on a SotW ADS stream: clusters (and secrets)
// first, wildcard; then the load assignments the EDS clusters name; then
// listeners, wildcard, once the clusters are warm; then the route
// configurations the listeners name. Every response is ACKed (or NACKed
// when the generator is told to), after any subscription change it
// causes, as Envoy does.
func (s *streamState) runSotW() error {
	for _, t := range []xdsType{typeCDS, typeSDS} {
		if s.wants(t) {
			if err := s.sotwRequest(t, ""); err != nil {
				return err
			}
		}
	}
	if !s.wants(typeCDS) && s.wants(typeLDS) {
		if err := s.sotwRequest(typeLDS, ""); err != nil {
			return err
		}
	}
	resp := &sotwResponse{opts: decodeOptions{watched: s.p.g.watched, refs: true}}
	for {
		if err := s.stream.RecvMsg(resp); err != nil {
			return err
		}
		t := typeOfURL(resp.typeURL)
		if t < 0 {
			continue
		}
		s.nonce[t] = resp.nonce
		changed := resp.version != s.version[t]
		if reason := s.p.g.nackReason(s.p.index, t); reason != "" && changed {
			if err := s.sotwRequest(t, reason); err != nil {
				return err
			}
			s.p.rec.nacked(s.p.g)
			continue
		}
		var follow []xdsType
		switch t {
		case typeCDS:
			follow = s.resubscribe(follow, typeEDS, resp.refs)
			if !s.wants(typeEDS) || len(resp.refs) == 0 {
				follow = s.startLDS(follow)
			}
		case typeEDS:
			follow = s.startLDS(follow)
		case typeLDS:
			follow = s.resubscribe(follow, typeRDS, resp.refs)
		}
		for _, f := range follow {
			if err := s.sotwRequest(f, ""); err != nil {
				return err
			}
		}
		s.version[t] = resp.version
		if err := s.sotwRequest(t, ""); err != nil {
			return err
		}
		s.arrived(t, changed, resp.count, resp.sizeBytes, resp.watched)
	}
}

// resubscribe changes the named subscription of t to names, if it differs.
func (s *streamState) resubscribe(follow []xdsType, t xdsType, names []string) []xdsType {
	if !s.wants(t) {
		return follow
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 && !s.requested[t] {
		return follow // never ask for nothing: an empty SotW request is a wildcard
	}
	if s.requested[t] && slices.Equal(names, s.names[t]) {
		return follow
	}
	s.names[t] = slices.Clone(names)
	if s.names[t] == nil {
		s.names[t] = []string{}
	}
	return append(follow, t)
}

// startLDS asks for listeners once.
func (s *streamState) startLDS(follow []xdsType) []xdsType {
	if s.wants(typeLDS) && !s.requested[typeLDS] {
		return append(follow, typeLDS)
	}
	return follow
}

// runDelta subscribes to every type with an explicit wildcard, as Envoy's
// delta ADS does for CDS and LDS (EDS and RDS are wildcards here too, so
// no name bookkeeping is needed), and ACKs every response.
func (s *streamState) runDelta() error {
	for t := range numTypes {
		if !s.wants(t) {
			continue
		}
		if err := s.stream.SendMsg(&discoveryv3.DeltaDiscoveryRequest{Node: s.node(), TypeUrl: t.typeURL(), ResourceNamesSubscribe: []string{"*"}}); err != nil {
			return err
		}
	}
	resp := &deltaResponse{opts: decodeOptions{watched: s.p.g.watched}}
	for {
		if err := s.stream.RecvMsg(resp); err != nil {
			return err
		}
		t := typeOfURL(resp.typeURL)
		if t < 0 {
			continue
		}
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.typeURL, ResponseNonce: resp.nonce}
		nack := s.p.g.nackReason(s.p.index, t)
		if nack != "" {
			req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: nack}
		}
		if err := s.stream.SendMsg(req); err != nil {
			return err
		}
		if nack != "" {
			s.p.rec.nacked(s.p.g)
			continue
		}
		s.arrived(t, resp.count > 0 || resp.removed > 0, resp.count, resp.sizeBytes, resp.watched)
	}
}

// arrived records an accepted response, after its ACK was sent.
func (s *streamState) arrived(t xdsType, changed bool, count, size int, watched []resourceInfo) {
	s.received[t] = true
	if !s.attached {
		s.attached = true
		if s.release != nil {
			s.release()
		}
	}
	becameReady := false
	if !s.ready && s.complete() {
		s.ready, becameReady = true, true
	}
	s.p.rec.response(s.p.g, t, changed, count, size, watched, becameReady)
}

// complete reports whether every type the proxy needs has arrived.
func (s *streamState) complete() bool {
	for t := range numTypes {
		if !s.p.g.cfg.require[t] || s.received[t] {
			continue
		}
		// A SotW proxy asks for EDS and RDS only when a cluster or a
		// listener names them; one that was given nothing to ask for has
		// nothing to wait for.
		if parent, ok := namedBy(t); ok && !s.p.g.cfg.delta && s.received[parent] && !s.requested[t] {
			continue
		}
		return false
	}
	return true
}

// namedBy returns the type whose resources name the resources of t, for
// the types a SotW proxy subscribes to by name.
func namedBy(t xdsType) (xdsType, bool) {
	switch t {
	case typeEDS:
		return typeCDS, true
	case typeRDS:
		return typeLDS, true
	}
	return 0, false
}
