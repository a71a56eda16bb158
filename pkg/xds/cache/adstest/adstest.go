// Package adstest is a small, explicit ADS client for tests and benchmarks:
// a SotW client and a delta client over one gRPC stream each, with the
// request sequencing (node on the first request, version and nonce
// bookkeeping, ACK and NACK) spelled out so tests can drive every step.
package adstest

import (
	"context"
	"fmt"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// SotW is a state-of-the-world ADS client.
type SotW struct {
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *corev3.Node
	mu     sync.Mutex
	sent   bool
	state  map[string]*sotwState
}

type sotwState struct {
	names   []string
	version string // last ACKed
	nonce   string // of the last response
}

// NewSotW opens a SotW ADS stream on conn for node. Extra call options (for
// example per-RPC credentials) apply to the stream.
func NewSotW(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node, opts ...grpc.CallOption) (*SotW, error) {
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &SotW{stream: s, node: node, state: map[string]*sotwState{}}, nil
}

// request updates typeURL's state and sends the request made from it, as
// one step: the client may be used from several goroutines (one reading
// and ACKing, another subscribing).
func (c *SotW) request(typeURL string, make func(s *sotwState) *discoveryv3.DiscoveryRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.state[typeURL]
	if !ok {
		s = &sotwState{}
		c.state[typeURL] = s
	}
	req := make(s)
	if !c.sent {
		req.Node = c.node
		c.sent = true
	}
	return c.stream.Send(req)
}

// Subscribe asks for resources of typeURL by name (none: all of them).
func (c *SotW) Subscribe(typeURL string, names ...string) error {
	return c.request(typeURL, func(s *sotwState) *discoveryv3.DiscoveryRequest {
		s.names = names
		return &discoveryv3.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names, VersionInfo: s.version, ResponseNonce: s.nonce}
	})
}

// Recv returns the next response.
func (c *SotW) Recv() (*discoveryv3.DiscoveryResponse, error) {
	resp, err := c.stream.Recv()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.state[resp.GetTypeUrl()]
	if !ok {
		s = &sotwState{}
		c.state[resp.GetTypeUrl()] = s
	}
	s.nonce = resp.GetNonce()
	return resp, nil
}

// Ack accepts resp.
func (c *SotW) Ack(resp *discoveryv3.DiscoveryResponse) error {
	return c.request(resp.GetTypeUrl(), func(s *sotwState) *discoveryv3.DiscoveryRequest {
		s.version = resp.GetVersionInfo()
		return &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResourceNames: s.names, VersionInfo: s.version, ResponseNonce: resp.GetNonce()}
	})
}

// Nack rejects resp with message, keeping the last accepted version.
func (c *SotW) Nack(resp *discoveryv3.DiscoveryResponse, message string) error {
	return c.request(resp.GetTypeUrl(), func(s *sotwState) *discoveryv3.DiscoveryRequest {
		return &discoveryv3.DiscoveryRequest{
			TypeUrl: resp.GetTypeUrl(), ResourceNames: s.names, VersionInfo: s.version, ResponseNonce: resp.GetNonce(),
			ErrorDetail: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: message},
		}
	})
}

// CloseSend ends the client's side of the stream.
func (c *SotW) CloseSend() error { return c.stream.CloseSend() }

// Delta is an incremental (delta) ADS client.
type Delta struct {
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node   *corev3.Node
	mu     sync.Mutex
	sent   bool
	// Known holds, per type, the resources received and not removed, by
	// name, with their versions.
	known map[string]map[string]string
	// subs is the subscription of each type, to ignore resources a
	// response brings that the client is no longer subscribed to (it
	// crossed an unsubscription), as a proxy does.
	subs map[string]*deltaSub
}

type deltaSub struct {
	wildcard bool
	names    map[string]bool
}

// subscription returns the subscription of typeURL; the first one made
// without names is a wildcard.
func (c *Delta) subscription(typeURL string, names []string) *deltaSub {
	s, ok := c.subs[typeURL]
	if !ok {
		s = &deltaSub{wildcard: len(names) == 0, names: map[string]bool{}}
		c.subs[typeURL] = s
	}
	return s
}

func (c *Delta) subscribe(typeURL string, names []string) {
	s := c.subscription(typeURL, names)
	for _, n := range names {
		if n == "*" {
			s.wildcard = true
		} else {
			s.names[n] = true
		}
	}
}

// wants reports whether the client is subscribed to name.
func (c *Delta) wants(typeURL, name string) bool {
	s, ok := c.subs[typeURL]
	return !ok || s.wildcard || s.names[name]
}

// NewDelta opens a delta ADS stream on conn for node.
func NewDelta(ctx context.Context, conn grpc.ClientConnInterface, node *corev3.Node, opts ...grpc.CallOption) (*Delta, error) {
	s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &Delta{stream: s, node: node, known: map[string]map[string]string{}, subs: map[string]*deltaSub{}}, nil
}

func (c *Delta) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sent {
		req.Node = c.node
		c.sent = true
	}
	return c.stream.Send(req)
}

// Subscribe subscribes to resources of typeURL by name (none: a wildcard
// subscription).
func (c *Delta) Subscribe(typeURL string, names ...string) error {
	c.mu.Lock()
	c.subscribe(typeURL, names)
	c.mu.Unlock()
	return c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names})
}

// Unsubscribe unsubscribes from resources of typeURL by name ("*": the
// wildcard); the client drops the named resources, as a proxy does.
func (c *Delta) Unsubscribe(typeURL string, names ...string) error {
	c.mu.Lock()
	s := c.subscription(typeURL, nil)
	for _, n := range names {
		if n == "*" {
			s.wildcard = false
			continue
		}
		delete(s.names, n)
		delete(c.known[typeURL], n)
	}
	c.mu.Unlock()
	return c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesUnsubscribe: names})
}

// Resume starts a subscription to typeURL as a proxy that reconnected does:
// with the versions of the resources it still holds (initial_resource_versions),
// which also become what Known reports.
func (c *Delta) Resume(typeURL string, held map[string]string, names ...string) error {
	c.mu.Lock()
	k := map[string]string{}
	for n, v := range held {
		k[n] = v
	}
	c.known[typeURL] = k
	c.subscribe(typeURL, names)
	c.mu.Unlock()
	return c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: names, InitialResourceVersions: held})
}

// Recv returns the next response and applies it to Known.
func (c *Delta) Recv() (*discoveryv3.DeltaDiscoveryResponse, error) {
	resp, err := c.stream.Recv()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.known[resp.GetTypeUrl()]
	if !ok {
		k = map[string]string{}
		c.known[resp.GetTypeUrl()] = k
	}
	for _, r := range resp.GetResources() {
		if c.wants(resp.GetTypeUrl(), r.GetName()) {
			k[r.GetName()] = r.GetVersion()
		}
	}
	for _, name := range resp.GetRemovedResources() {
		delete(k, name)
	}
	return resp, nil
}

// Known returns a copy of the resources of typeURL the client holds.
func (c *Delta) Known(typeURL string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.known[typeURL] {
		out[k] = v
	}
	return out
}

// Ack accepts resp.
func (c *Delta) Ack(resp *discoveryv3.DeltaDiscoveryResponse) error {
	return c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
}

// Nack rejects resp with message.
func (c *Delta) Nack(resp *discoveryv3.DeltaDiscoveryResponse, message string) error {
	return c.send(&discoveryv3.DeltaDiscoveryRequest{
		TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: message},
	})
}

// CloseSend ends the client's side of the stream.
func (c *Delta) CloseSend() error { return c.stream.CloseSend() }

// Responses collects responses received in the background, for tests that
// count them.
type Responses[T any] struct {
	mu   sync.Mutex
	got  []T
	err  error
	more chan struct{}
}

// Collect receives from recv until it fails, acting on each response with
// handle (for example to ACK it), and keeps them.
func Collect[T any](recv func() (T, error), handle func(T) error) *Responses[T] {
	r := &Responses[T]{more: make(chan struct{}, 1)}
	go func() {
		for {
			v, err := recv()
			if err == nil && handle != nil {
				err = handle(v)
			}
			r.mu.Lock()
			if err != nil {
				r.err = err
			} else {
				r.got = append(r.got, v)
			}
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// All returns the responses so far and the error that ended collection.
func (r *Responses[T]) All() ([]T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.got...), r.err
}

// Wait blocks until at least n responses arrived, the stream failed or ctx
// ended.
func (r *Responses[T]) Wait(ctx context.Context, n int) ([]T, error) {
	for {
		got, err := r.All()
		if len(got) >= n {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		select {
		case <-r.more:
		case <-ctx.Done():
			return got, fmt.Errorf("waiting for %d responses, got %d: %w", n, len(got), ctx.Err())
		}
	}
}
