package translate

import (
	"errors"
	"fmt"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// Check runs Validate and CheckConsistency in one pass over r.
func Check(r *Resources) error { return check(r, true, true) }

// Validate runs PGV's ValidateAll on every resource of r and on every typed
// config packed in an Any inside it, at any depth (filters, transport
// sockets, protocol options, api_listeners). An Any whose type is not linked
// into the program is an error. Problems are joined, each prefixed with the
// resource it was found in.
func Validate(r *Resources) error { return check(r, true, false) }

// CheckConsistency reports references that lead nowhere: an HTTP connection
// manager (in a filter chain or an api_listener) naming a route configuration
// that is missing, a route or tcp_proxy naming a missing cluster, an EDS
// cluster without a load assignment, a TLS context naming a missing SDS
// secret, and duplicate names within a type.
func CheckConsistency(r *Resources) error { return check(r, false, true) }

type checker struct {
	validate bool
	errs     []error
	// Referenced names, each with the first resource referring to it.
	routes, clusters, secrets map[string]string
}

type validatable interface{ ValidateAll() error }

func check(r *Resources, validate, consistency bool) error {
	c := &checker{
		validate: validate,
		routes:   map[string]string{},
		clusters: map[string]string{},
		secrets:  map[string]string{},
	}
	for _, m := range r.Listeners {
		c.resource("listener", m.GetName(), m)
	}
	for _, m := range r.Routes {
		c.resource("route configuration", m.GetName(), m)
	}
	for _, m := range r.Clusters {
		c.resource("cluster", m.GetName(), m)
	}
	for _, m := range r.Endpoints {
		c.resource("cluster load assignment", m.GetClusterName(), m)
	}
	for _, m := range r.Secrets {
		c.resource("secret", m.GetName(), m)
	}
	if consistency {
		c.consistency(r)
	}
	return errors.Join(c.errs...)
}

func (c *checker) resource(kind, name string, m proto.Message) {
	owner := fmt.Sprintf("%s %q", kind, name)
	if c.validate {
		if v, ok := m.(validatable); ok {
			if err := v.ValidateAll(); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%s: %w", owner, err))
			}
		}
	}
	c.walk(owner, m.ProtoReflect())
}

// walk visits every message under m, unpacking Anys.
func (c *checker) walk(owner string, m protoreflect.Message) {
	c.collect(owner, m.Interface())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					c.child(owner, mv.Message())
					return true
				})
			}
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				c.child(owner, l.Get(i).Message())
			}
		default:
			c.child(owner, v.Message())
		}
		return true
	})
}

func (c *checker) child(owner string, m protoreflect.Message) {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		c.walk(owner, m)
		return
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: unpacking %s: %w", owner, a.GetTypeUrl(), err))
		return
	}
	if c.validate {
		if v, ok := inner.(validatable); ok {
			if err := v.ValidateAll(); err != nil {
				c.errs = append(c.errs, fmt.Errorf("%s: %s: %w", owner, inner.ProtoReflect().Descriptor().FullName(), err))
			}
		}
	}
	c.walk(owner, inner.ProtoReflect())
}

// collect records the names m refers to.
func (c *checker) collect(owner string, m proto.Message) {
	ref := func(set map[string]string, name string) {
		if _, ok := set[name]; !ok {
			set[name] = owner
		}
	}
	switch m := m.(type) {
	case *hcmv3.Rds:
		ref(c.routes, m.GetRouteConfigName())
	case *routev3.RouteAction:
		if name := m.GetCluster(); name != "" {
			ref(c.clusters, name)
		}
		for _, w := range m.GetWeightedClusters().GetClusters() {
			ref(c.clusters, w.GetName())
		}
	case *tcpproxyv3.TcpProxy:
		if name := m.GetCluster(); name != "" {
			ref(c.clusters, name)
		}
		for _, w := range m.GetWeightedClusters().GetClusters() {
			ref(c.clusters, w.GetName())
		}
	case *tlsv3.SdsSecretConfig:
		if m.GetSdsConfig().GetAds() != nil {
			ref(c.secrets, m.GetName())
		}
	}
}

func (c *checker) consistency(r *Resources) {
	routes := names(c, "route configuration", r.Routes, (*routev3.RouteConfiguration).GetName)
	clusters := names(c, "cluster", r.Clusters, (*clusterv3.Cluster).GetName)
	secrets := names(c, "secret", r.Secrets, (*tlsv3.Secret).GetName)
	names(c, "listener", r.Listeners, (*listenerv3.Listener).GetName)
	endpoints := map[string]bool{}
	for _, e := range r.Endpoints {
		if endpoints[e.GetClusterName()] {
			c.errs = append(c.errs, fmt.Errorf("cluster load assignment %q is defined twice", e.GetClusterName()))
		}
		endpoints[e.GetClusterName()] = true
	}
	missing := func(kind string, refs map[string]string, have map[string]bool) {
		for _, name := range sortedKeys(refs) {
			if !have[name] {
				c.errs = append(c.errs, fmt.Errorf("%s refers to %s %q, which is missing", refs[name], kind, name))
			}
		}
	}
	missing("route configuration", c.routes, routes)
	missing("cluster", c.clusters, clusters)
	missing("secret", c.secrets, secrets)
	for _, cl := range r.Clusters {
		if cl.GetType() != clusterv3.Cluster_EDS {
			continue
		}
		name := cl.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = cl.GetName()
		}
		if !endpoints[name] {
			c.errs = append(c.errs, fmt.Errorf("cluster %q is an EDS cluster without a load assignment %q", cl.GetName(), name))
		}
	}
}

// names indexes the names of ms, reporting duplicates.
func names[T any](c *checker, kind string, ms []T, name func(T) string) map[string]bool {
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		n := name(m)
		if out[n] {
			c.errs = append(c.errs, fmt.Errorf("%s %q is defined twice", kind, n))
		}
		out[n] = true
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
