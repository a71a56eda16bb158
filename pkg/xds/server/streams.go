package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/ads"
	"github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// stream is the server's view of one ADS stream; it implements
// ads.StreamHooks. The ADS server calls a stream's hooks one at a time, so
// its fields need no lock.
type stream struct {
	s      *Server
	info   ads.StreamInfo
	ctx    context.Context
	token  string // from the authorization metadata, or the node's once admitted
	remote string

	// Set once the first request is admitted.
	admitted  bool
	registers bool // the node carries its Dataplane: reconnecting registers it again
	key       resource.Key
	nodeID    string
	sub       *liveSub
}

// protocol names the stream's xDS protocol for metrics.
func (st *stream) protocol() string {
	if st.info.Delta {
		return "delta"
	}
	return "sotw"
}

// hooks implements ads.Hooks.
type hooks struct{ s *Server }

var _ ads.Hooks = hooks{}

// Open registers a stream.
func (h hooks) Open(ctx context.Context, info ads.StreamInfo) ads.StreamHooks {
	st := &stream{s: h.s, info: info, ctx: ctx, token: headerToken(ctx)}
	if p, ok := peer.FromContext(ctx); ok {
		st.remote = p.Addr.String()
	}
	h.s.metrics.streams.WithLabelValues(st.protocol()).Inc()
	return st
}

// Admit authenticates the first request of the stream, before anything
// else happens on it.
func (st *stream) Admit(node *corev3.Node) (string, error) {
	if err := st.s.admit(st, node); err != nil {
		st.s.metrics.refused.WithLabelValues(err.code.String()).Inc()
		st.s.log.Info("refused an xDS stream", "remote", st.remote, "node", node.GetId(), "code", err.code.String(), "reason", err.msg)
		return "", err.grpcStatus()
	}
	return st.nodeID, nil
}

// Check keeps a stream on the node it was admitted for.
func (st *stream) Check(node *corev3.Node) error {
	if node.GetId() != "" && node.GetId() != st.nodeID {
		st.s.metrics.refused.WithLabelValues(codes.PermissionDenied.String()).Inc()
		return status.Errorf(codes.PermissionDenied, "this stream was admitted for node %q and cannot switch to node %q", st.nodeID, node.GetId())
	}
	return nil
}

// Sent accounts a response.
func (st *stream) Sent(typeURL, version string) {
	st.s.metrics.sent[[2]string{shortType(typeURL), st.protocol()}].Inc()
	now := st.s.opts.Now()
	st.sub.update(func(s *insight.Subscription) {
		s.Status.LastUpdateTime = &now
		s.Status.Total.ResponsesSent++
		if stats := statsOf(&s.Status, typeURL); stats != nil {
			stats.ResponsesSent++
		}
	})
}

// Acknowledged accounts an ACK.
func (st *stream) Acknowledged(typeURL, version string) {
	st.s.metrics.acked[shortType(typeURL)].Inc()
	st.sub.update(func(s *insight.Subscription) {
		s.Status.Total.ResponsesAcknowledged++
		if stats := statsOf(&s.Status, typeURL); stats != nil {
			stats.ResponsesAcknowledged++
		}
	})
	if o := st.s.opts.Observer; o != nil {
		o.Acknowledged(st.key, typeURL, version)
	}
}

// Rejected accounts a NACK: the proxy keeps running on older configuration.
func (st *stream) Rejected(typeURL, version, msg string) {
	short := shortType(typeURL)
	st.s.metrics.rejected[short].Inc()
	st.s.log.Warn("a proxy rejected its configuration", "node", st.nodeID, "type", short, "version", version, "error", msg)
	st.sub.update(func(s *insight.Subscription) {
		stats := statsOf(&s.Status, typeURL)
		s.Status.Total.ResponsesRejected++
		if stats != nil {
			stats.ResponsesRejected++
		}
		s.Status.LastNACK = fmt.Sprintf("%s version %s: %s", short, version, msg)
	})
	if o := st.s.opts.Observer; o != nil {
		o.Rejected(st.key, typeURL, version, msg)
	}
}

// Closed unregisters the stream.
func (st *stream) Closed() {
	st.s.metrics.streams.WithLabelValues(st.protocol()).Dec()
	if st.admitted {
		st.s.streamEnded(st)
	}
}

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
	doc := nodeString(node, bootstrap.MetadataDataplane)
	st.registers = doc != ""
	if doc != "" {
		_, aerr = s.register(st.ctx, key, token, doc)
	} else {
		_, aerr = s.authenticate(st.ctx, key, token)
	}
	if aerr != nil {
		return aerr
	}
	st.admitted, st.key, st.nodeID, st.token = true, key, node.GetId(), token
	flavour := flavourOf(node)
	now := s.opts.Now()
	st.sub = s.insights.open(key, insight.Subscription{
		ID:                     fmt.Sprintf("%s-%s-%d", s.opts.InstanceID, st.protocol(), st.info.ID),
		ControlPlaneInstanceID: s.opts.InstanceID,
		ConnectTime:            &now,
		Version:                versionOf(node),
	})
	s.mu.Lock()
	s.open[st] = struct{}{}
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
	delete(s.open, st)
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

// Recheck verifies again the tokens of the open xDS streams of mesh (every
// mesh when mesh is ""), and ends the streams whose token is no longer
// valid — revoked, or signed by a key the mesh no longer has — by closing
// their connections. A proxy that reconnects is refused with the reason.
// Streams are left alone when the check cannot be made (the store is
// unavailable) or only the dataplane is gone. It returns how many streams
// it ended. The control plane calls it when a mesh's revocation list or
// signing keys change.
func (s *Server) Recheck(ctx context.Context, mesh string) int {
	s.mu.Lock()
	r := s.router
	var streams []*stream
	for st := range s.open {
		if mesh == "" || st.key.Mesh == mesh {
			streams = append(streams, st)
		}
	}
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	ended := 0
	for _, st := range streams {
		if ctx.Err() != nil {
			break
		}
		_, aerr := s.authenticate(ctx, st.key, st.token)
		if aerr == nil || (aerr.code != codes.Unauthenticated && aerr.code != codes.PermissionDenied) {
			continue
		}
		if r.closeConn(st.remote) {
			ended++
			s.metrics.refused.WithLabelValues(aerr.code.String()).Inc()
			s.log.Warn("ended the xDS stream of a proxy whose token is no longer valid", "node", st.nodeID, "remote", st.remote, "reason", aerr.msg)
		}
	}
	return ended
}

// DataplaneDeleted ends the open xDS streams of key if its Dataplane is
// gone from the store, so that a proxy whose dataplane was deleted does not
// keep running on its last configuration unseen: its reconnection is
// refused until the dataplane is created again. Streams whose node carries
// its Dataplane (atoll-dp and proxyless registration) are left open: they
// would register it again at once and undo the deletion; they get no
// updates until they reconnect. It returns how many streams it ended. The
// control plane calls it on Dataplane deletions.
func (s *Server) DataplaneDeleted(ctx context.Context, key resource.Key) int {
	s.mu.Lock()
	if s.conns[key] == 0 { // the usual case, also when a whole mesh is deleted
		s.mu.Unlock()
		return 0
	}
	r := s.router
	var streams []*stream
	for st := range s.open {
		if st.key == key && !st.registers {
			streams = append(streams, st)
		}
	}
	s.mu.Unlock()
	if r == nil || len(streams) == 0 {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	if _, err := s.opts.Resources.Get(ctx, resource.DataplaneType, key); !errors.Is(err, store.ErrNotFound) {
		return 0 // back already, or the store cannot tell: leave the streams
	}
	ended := 0
	for _, st := range streams {
		if r.closeConn(st.remote) {
			ended++
			s.log.Info("ended the xDS stream of a proxy whose dataplane was deleted", "node", st.nodeID, "remote", st.remote)
		}
	}
	return ended
}
