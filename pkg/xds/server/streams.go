package server

import (
	"context"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// streamID names a stream: go-control-plane numbers SotW and delta streams
// separately.
type streamID struct {
	delta bool
	n     int64
}

// stream is the server's view of one ADS stream. go-control-plane calls a
// stream's callbacks from that stream's goroutine only, so its fields need
// no lock.
type stream struct {
	id     streamID
	ctx    context.Context
	token  string // from the authorization metadata
	remote string

	// Set once the first request is admitted.
	admitted bool
	key      resource.Key
	nodeID   string
	sub      *liveSub
	sent     map[string]*sentResponse // by type URL
}

// sentResponse is the last response of a type on a stream.
type sentResponse struct {
	nonce, version string
	answered       bool
}

// protocol names the stream's xDS protocol for metrics.
func (st *stream) protocol() string {
	if st.id.delta {
		return "delta"
	}
	return "sotw"
}

// callbacks implements go-control-plane's server callbacks.
type callbacks struct{ s *Server }

var _ gserver.Callbacks = (*callbacks)(nil)

func (c *callbacks) open(ctx context.Context, id streamID) {
	st := &stream{id: id, ctx: ctx, token: headerToken(ctx), sent: map[string]*sentResponse{}}
	if p, ok := peer.FromContext(ctx); ok {
		st.remote = p.Addr.String()
	}
	c.s.mu.Lock()
	c.s.streams[id] = st
	c.s.mu.Unlock()
	c.s.metrics.streams.WithLabelValues(st.protocol()).Inc()
}

func (c *callbacks) get(id streamID) *stream {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.streams[id]
}

func (c *callbacks) closed(id streamID) {
	c.s.mu.Lock()
	st, ok := c.s.streams[id]
	delete(c.s.streams, id)
	c.s.mu.Unlock()
	if !ok {
		return
	}
	c.s.metrics.streams.WithLabelValues(st.protocol()).Dec()
	if st.admitted {
		c.s.streamEnded(st)
	}
}

// request handles a request of a stream: the first one is admitted or
// refused; later ones must keep the node; ACKs and NACKs are counted.
func (c *callbacks) request(id streamID, node *corev3.Node, typeURL, nonce string, errDetail *statuspb.Status) error {
	st := c.get(id)
	if st == nil {
		return status.Error(codes.Internal, "unknown stream")
	}
	if !st.admitted {
		if err := c.s.admit(st, node); err != nil {
			c.s.metrics.refused.WithLabelValues(err.code.String()).Inc()
			c.s.log.Info("refused an xDS stream", "remote", st.remote, "node", node.GetId(), "code", err.code.String(), "reason", err.msg)
			return err.grpcStatus()
		}
	} else if node != nil && node.GetId() != "" && node.GetId() != st.nodeID {
		c.s.metrics.refused.WithLabelValues(codes.PermissionDenied.String()).Inc()
		return status.Errorf(codes.PermissionDenied, "this stream was admitted for node %q and cannot switch to node %q", st.nodeID, node.GetId())
	}
	last := st.sent[typeURL]
	if nonce == "" || last == nil || last.nonce != nonce || last.answered {
		return nil // a subscription change, or an answer to a stale response
	}
	last.answered = true
	short := shortType(typeURL)
	if errDetail != nil {
		msg := errDetail.GetMessage()
		c.s.metrics.nacks.WithLabelValues(short).Inc()
		c.s.log.Warn("a proxy rejected its configuration", "node", st.nodeID, "type", short, "version", last.version, "error", msg)
		st.sub.update(func(s *insight.Subscription) {
			stats := statsOf(&s.Status, typeURL)
			s.Status.Total.ResponsesRejected++
			if stats != nil {
				stats.ResponsesRejected++
			}
			s.Status.LastNACK = fmt.Sprintf("%s version %s: %s", short, last.version, msg)
		})
		if o := c.s.opts.Observer; o != nil {
			o.Rejected(st.key, typeURL, last.version, msg)
		}
		return nil
	}
	c.s.metrics.acks.WithLabelValues(short).Inc()
	st.sub.update(func(s *insight.Subscription) {
		s.Status.Total.ResponsesAcknowledged++
		if stats := statsOf(&s.Status, typeURL); stats != nil {
			stats.ResponsesAcknowledged++
		}
	})
	if o := c.s.opts.Observer; o != nil {
		o.Acknowledged(st.key, typeURL, last.version)
	}
	return nil
}

// response records a response about to be sent.
func (c *callbacks) response(id streamID, typeURL, nonce, version string) {
	st := c.get(id)
	if st == nil || !st.admitted {
		return
	}
	st.sent[typeURL] = &sentResponse{nonce: nonce, version: version}
	c.s.metrics.responses.WithLabelValues(shortType(typeURL), st.protocol()).Inc()
	now := c.s.opts.Now()
	st.sub.update(func(s *insight.Subscription) {
		s.Status.LastUpdateTime = &now
		s.Status.Total.ResponsesSent++
		if stats := statsOf(&s.Status, typeURL); stats != nil {
			stats.ResponsesSent++
		}
	})
}

// OnStreamOpen registers a SotW stream.
func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	c.open(ctx, streamID{n: id})
	return nil
}

// OnStreamClosed ends a SotW stream.
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(streamID{n: id}) }

// OnStreamRequest admits, checks and accounts a SotW request.
func (c *callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	return c.request(streamID{n: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
}

// OnStreamResponse accounts a SotW response.
func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.response(streamID{n: id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

// OnDeltaStreamOpen registers a delta stream.
func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	c.open(ctx, streamID{delta: true, n: id})
	return nil
}

// OnDeltaStreamClosed ends a delta stream.
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.closed(streamID{delta: true, n: id})
}

// OnStreamDeltaRequest admits, checks and accounts a delta request.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	return c.request(streamID{delta: true, n: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetErrorDetail())
}

// OnStreamDeltaResponse accounts a delta response.
func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.response(streamID{delta: true, n: id}, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

// OnFetchRequest refuses REST xDS, which the server does not offer.
func (c *callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "REST xDS is not served; use ADS")
}

// OnFetchResponse does nothing.
func (c *callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}

// admit authenticates the first request of a stream and registers the
// proxy as connected.
func (s *Server) admit(st *stream, node *corev3.Node) *authError {
	if node.GetId() == "" {
		return refuse(0, codes.InvalidArgument, nil, "the first request of an xDS stream must carry the node, whose id is \"<mesh>/<dataplane name>\"")
	}
	key, err := bootstrap.ParseNodeID(node.GetId())
	if err != nil {
		return refuse(0, codes.InvalidArgument, err, "%v", err)
	}
	token := st.token
	if token == "" {
		token = nodeString(node, bootstrap.MetadataToken)
	}
	// A proxy whose agent registered its dataplane carries the document:
	// register it again if it was deregistered while the proxy was away.
	var aerr *authError
	if doc := nodeString(node, bootstrap.MetadataDataplane); doc != "" {
		_, aerr = s.register(st.ctx, key, token, doc)
	} else {
		_, aerr = s.authenticate(st.ctx, key, token)
	}
	if aerr != nil {
		return aerr
	}
	st.admitted, st.key, st.nodeID = true, key, node.GetId()
	flavour := flavourOf(node)
	now := s.opts.Now()
	st.sub = s.insights.open(key, insight.Subscription{
		ID:                     fmt.Sprintf("%s-%s-%d", s.opts.InstanceID, st.protocol(), st.id.n),
		ControlPlaneInstanceID: s.opts.InstanceID,
		ConnectTime:            &now,
		Version:                versionOf(node),
	})
	s.mu.Lock()
	s.conns[key]++
	first := s.conns[key] == 1
	if first {
		s.notifier.enqueue(trackerEvent{key: key, flavour: flavour, connected: true})
	}
	s.mu.Unlock()
	if first {
		s.lifecycle.connected(key)
	}
	s.log.Debug("admitted an xDS stream", "node", st.nodeID, "protocol", st.protocol(), "flavour", flavour, "remote", st.remote)
	return nil
}

// streamEnded unregisters an admitted stream.
func (s *Server) streamEnded(st *stream) {
	st.sub.close(s.opts.Now())
	s.insights.closed(st.key)
	s.mu.Lock()
	s.conns[st.key]--
	last := s.conns[st.key] <= 0
	if last {
		delete(s.conns, st.key)
		s.notifier.enqueue(trackerEvent{key: st.key})
	}
	s.mu.Unlock()
	if last {
		s.lifecycle.disconnected(st.key)
	}
	s.log.Debug("an xDS stream ended", "node", st.nodeID, "protocol", st.protocol())
}

// connected reports whether a stream of key is open on this instance.
func (s *Server) connected(key resource.Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[key] > 0
}

// flavourOf reads the proxy type from the node metadata the bootstraps
// write; a node without it is a gRPC client when its user agent says so.
func flavourOf(node *corev3.Node) ir.Flavour {
	switch nodeString(node, bootstrap.MetadataProxyType) {
	case bootstrap.ProxyProxyless:
		return ir.FlavourProxyless
	case bootstrap.ProxyEnvoy:
		return ir.FlavourEnvoy
	}
	if strings.HasPrefix(strings.ToLower(node.GetUserAgentName()), "grpc") {
		return ir.FlavourProxyless
	}
	return ir.FlavourEnvoy
}

// versionOf reads the software versions of a node.
func versionOf(node *corev3.Node) *insight.Version {
	v := &insight.Version{}
	if a := nodeString(node, bootstrap.MetadataAgentVersion); a != "" {
		v.KumaDp = &insight.Component{Version: a}
	}
	envoy := nodeString(node, bootstrap.MetadataEnvoyVersion)
	if bv := node.GetUserAgentBuildVersion(); bv != nil && bv.GetVersion() != nil {
		sv := bv.GetVersion()
		envoy = fmt.Sprintf("%d.%d.%d", sv.GetMajorNumber(), sv.GetMinorNumber(), sv.GetPatch())
	}
	if envoy != "" {
		v.Envoy = &insight.Component{Version: envoy}
	}
	if name := node.GetUserAgentName(); strings.HasPrefix(strings.ToLower(name), "grpc") {
		v.Dependencies = map[string]string{name: node.GetUserAgentVersion()}
	}
	if v.KumaDp == nil && v.Envoy == nil && v.Dependencies == nil {
		return nil
	}
	return v
}

// shortType names an xDS type for metrics and messages ("cds").
func shortType(typeURL string) string {
	switch typeURL {
	case "type.googleapis.com/envoy.config.listener.v3.Listener":
		return "lds"
	case "type.googleapis.com/envoy.config.route.v3.RouteConfiguration":
		return "rds"
	case "type.googleapis.com/envoy.config.cluster.v3.Cluster":
		return "cds"
	case "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment":
		return "eds"
	case "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret":
		return "sds"
	}
	return "other"
}

// statsOf returns the per-type counters of typeURL, or nil for types the
// insight does not break out (SDS counts in the total only).
func statsOf(s *insight.SubscriptionStatus, typeURL string) *insight.DiscoveryStats {
	switch shortType(typeURL) {
	case "lds":
		return &s.LDS
	case "rds":
		return &s.RDS
	case "cds":
		return &s.CDS
	case "eds":
		return &s.EDS
	}
	return nil
}
