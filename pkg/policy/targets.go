package policy

import (
	"slices"
	"strings"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot"
)

// Targets summarises which proxies a policy can affect: those its top-level
// targetRef selects, and of those, the ones that call a destination its to[]
// entries name (or all of them when it configures inbound traffic or every
// destination).
type Targets struct {
	// Proxy is the top-level targetRef; nil selects every proxy.
	Proxy *targetref.TargetRef
	// AllDestinations is set when the policy configures traffic to any
	// destination (a to[] entry of kind Mesh, or one selecting by labels).
	AllDestinations bool
	// Destinations are the services (MeshService names or kuma.io/service
	// values) and other destinations to[] entries name.
	Destinations []string
	// Inbound is set when the policy configures the selected proxies'
	// inbound traffic (rules[], from[] or a proxy-wide default).
	Inbound bool
}

// TargetsOf reads the targets of a targetRef policy spec with conf type C
// through the interfaces pkg/match uses (Targeted, ToLister, FromLister,
// RulesLister, Defaulter).
func TargetsOf[C any](spec resource.Spec) Targets {
	var t Targets
	if s, ok := spec.(match.Targeted); ok {
		t.Proxy = s.GetTargetRef()
	}
	if s, ok := spec.(match.ToLister[C]); ok {
		for _, to := range s.GetTo() {
			ref := to.TargetRef
			switch {
			case ref.Kind == targetref.Mesh || ref.Name == "" || ref.Kind == targetref.MeshHTTPRoute:
				t.AllDestinations = true
			default:
				t.Destinations = append(t.Destinations, ref.Name)
			}
		}
	}
	if s, ok := spec.(match.FromLister[C]); ok && len(s.GetFrom()) > 0 {
		t.Inbound = true
	}
	if s, ok := spec.(match.RulesLister[C]); ok && len(s.GetRules()) > 0 {
		t.Inbound = true
	}
	if s, ok := spec.(match.Defaulter[C]); ok && s.GetDefault() != nil {
		t.Inbound, t.AllDestinations = true, true
	}
	slices.Sort(t.Destinations)
	t.Destinations = slices.Compact(t.Destinations)
	return t
}

// SelectsProxy reports whether the top-level targetRef may select dp. It
// over-approximates what pkg/match decides (sectionName and proxyTypes are
// not looked at, label selectors of services select everything).
func (t Targets) SelectsProxy(snap *snapshot.Snapshot, dp *snapshot.Dataplane) bool {
	ref := t.Proxy
	if ref == nil {
		return true
	}
	meta := &dp.Resource.Meta
	switch ref.Kind {
	case targetref.Mesh:
		return true
	case targetref.Dataplane:
		if ref.Name != "" {
			return meta.Name == ref.Name || meta.Name == ref.Name+"."+ref.Namespace || strings.HasPrefix(meta.Name, ref.Name+".")
		}
		return subset(ref.Labels, meta.Labels)
	case targetref.MeshSubset:
		return inboundWith(dp, func(tags map[string]string) bool { return subset(ref.Tags, tags) })
	case targetref.MeshService, targetref.MeshServiceSubset:
		if ref.Name == "" {
			return true
		}
		if inboundWith(dp, func(tags map[string]string) bool { return tags[dataplane.ServiceTag] == ref.Name }) {
			return true
		}
		if svc := snap.Service(ref.Name); svc != nil {
			_, found := slices.BinarySearch(svc.Backers, meta.Name)
			return found
		}
		return false
	}
	return true
}

// inboundWith reports whether an inbound (or the gateway) of dp that is not
// Ignored has tags satisfying ok.
func inboundWith(dp *snapshot.Dataplane, ok func(map[string]string) bool) bool {
	for i := range dp.Spec.Networking.Inbound {
		in := &dp.Spec.Networking.Inbound[i]
		if in.State != dataplane.StateIgnored && ok(in.Tags) {
			return true
		}
	}
	gw := dp.Spec.Networking.Gateway
	return gw != nil && ok(gw.Tags)
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}
