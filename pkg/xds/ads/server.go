// Package ads serves the Aggregated Discovery Service to proxies from
// pkg/xds/cache: state-of-the-world (SotW) streams, which Envoy and gRPC
// speak, and incremental (delta) streams, which Envoy speaks. It replaces
// go-control-plane's server and snapshot cache (see
// docs/decisions/0011-own-ads-server.md) and keeps their protocol
// behaviour, with two differences on purpose: a NACKed version is never
// sent again (go-control-plane #962), and responses are built from
// resource encodings the cache made once and every stream shares.
//
// # Per stream
//
// A stream keeps, per type, its subscription (wildcard, or a sorted set of
// names that usually costs nothing: see names), the nonce and version of its
// last response, and what the proxy holds — the cache.List it was last sent
// — instead of a map of every resource's version. Requests are read by the
// stream's gRPC goroutine; a Publish wakes a short-lived goroutine that
// answers from the new snapshot, so an idle stream has one goroutine and
// Publish never waits for a stream. Each type has at most one response in
// flight: after a response, the next waits for the proxy's ACK or NACK.
//
// # Protocol
//
// The first request must carry the node; Hooks.Admit authenticates it before
// the stream has any state. Later requests may repeat the node but not
// change it (StreamHooks.Check). An ACK or NACK is a request whose
// response_nonce is the nonce of the type's last response; the first
// answer to a response is reported to the hooks, later ones are not. SotW
// requests with a stale nonce are ignored, as the xDS protocol says.
// Subscriptions follow go-control-plane: a first request without names is a
// (legacy) wildcard, "*" is an explicit wildcard, SotW answers exactly the
// names asked for (gRPC asks only for what its routes use), LDS and CDS are
// sent whole, and delta streams get only changed resources and the names of
// removed ones, honouring initial_resource_versions.
package ads

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// Hooks is what the data-plane server does around the protocol:
// authentication, insights, metrics.
type Hooks interface {
	// Open is called when a stream starts, before its first request is
	// read. ctx is the stream's context (metadata, peer).
	Open(ctx context.Context, info StreamInfo) StreamHooks
}

// StreamInfo describes a stream.
type StreamInfo struct {
	// ID numbers the streams of a protocol from 1.
	ID int64
	// Delta is set for incremental xDS streams.
	Delta bool
}

// StreamHooks follow one stream. They are called from the stream's
// goroutines one at a time (never concurrently) and must not block for
// long.
type StreamHooks interface {
	// Admit authenticates the node of the stream's first request and
	// returns the node id whose snapshots the stream is served. An error
	// (a gRPC status) ends the stream before it has any state.
	Admit(node *corev3.Node) (string, error)
	// Check is called with the node of every later request that carries
	// one; an error ends the stream.
	Check(node *corev3.Node) error
	// Sent: a response of typeURL with version was sent.
	Sent(typeURL, version string)
	// Acknowledged: the proxy accepted version of typeURL.
	Acknowledged(typeURL, version string)
	// Rejected: the proxy refused version of typeURL with message.
	Rejected(typeURL, version, message string)
	// Closed: the stream ended.
	Closed()
}

// Options configure a Server.
type Options struct {
	// Cache is where the proxies' resources come from. Required.
	Cache *cache.Cache
	// Hooks are told what streams do. Required.
	Hooks Hooks
	// Log receives the server's messages; nil discards them.
	Log *slog.Logger
}

// Server is the ADS service. Register it on a gRPC server created with
// ServerOption.
type Server struct {
	cache *cache.Cache
	hooks Hooks
	log   *slog.Logger

	sotwIDs, deltaIDs atomic.Int64
}

// New returns an ADS service.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Cache == nil:
		return nil, errors.New("ads: a cache is required")
	case opts.Hooks == nil:
		return nil, errors.New("ads: hooks are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{cache: opts.Cache, hooks: opts.Hooks, log: opts.Log}, nil
}

// ServerOption is the gRPC server option the service needs: gRPC's proto
// codec, except that responses, which the service builds from encoded
// resources, are sent as they are.
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(newCodec()) }

// Register registers the service as envoy.service.discovery.v3's
// AggregatedDiscoveryService on r, whose server must use ServerOption.
func (s *Server) Register(r grpc.ServiceRegistrar) { r.RegisterService(&serviceDesc, s) }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "envoy.service.discovery.v3.AggregatedDiscoveryService",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "StreamAggregatedResources",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*Server).serveSotW(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}, {
		StreamName:    "DeltaAggregatedResources",
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(*Server).serveDelta(ss) },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "envoy/service/discovery/v3/ads.proto",
}
