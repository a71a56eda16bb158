package match

import (
	"cmp"
	"strings"

	"github.com/atoll-mesh/atoll/api/targetref"
)

// Well-known labels that order policies.
const (
	// OriginLabel says where a policy was written: "global" or "zone".
	OriginLabel = "kuma.io/origin"
	// PolicyRoleLabel holds Kuma's policy role: "system", "producer",
	// "consumer" or "workload-owner".
	PolicyRoleLabel = "kuma.io/policy-role"
	// DisplayNameLabel holds the name a user gave a policy whose stored name
	// was changed by multi-zone sync (hash suffix, namespace).
	DisplayNameLabel = "kuma.io/display-name"
	// NamespaceLabel holds the Kubernetes namespace of a resource.
	NamespaceLabel = "k8s.kuma.io/namespace"
)

// rank is the specificity of a top-level targetRef, lowest first.
type rank uint8

const (
	rankMesh rank = iota
	rankMeshSubset
	rankMeshService
	rankMeshServiceSubset
	rankDataplane
	rankDataplaneSection
	rankDataplaneLabels
	rankDataplaneLabelsSection
	rankDataplaneName
	rankDataplaneNameSection
)

// String names the rank the way the Kuma docs list it.
func (r rank) String() string {
	switch r {
	case rankMesh:
		return "Mesh"
	case rankMeshSubset:
		return "MeshSubset"
	case rankMeshService:
		return "MeshService"
	case rankMeshServiceSubset:
		return "MeshServiceSubset"
	case rankDataplane:
		return "Dataplane"
	case rankDataplaneSection:
		return "Dataplane with sectionName"
	case rankDataplaneLabels:
		return "Dataplane with labels"
	case rankDataplaneLabelsSection:
		return "Dataplane with labels/sectionName"
	case rankDataplaneName:
		return "Dataplane with name"
	default:
		return "Dataplane with name/sectionName"
	}
}

// topRank returns the specificity of a top-level targetRef, or false for
// kinds the matcher does not select proxies by.
func topRank(ref *targetref.TargetRef) (rank, bool) {
	switch ref.Kind {
	case targetref.Mesh:
		return rankMesh, true
	case targetref.MeshSubset:
		return rankMeshSubset, true
	case targetref.MeshService:
		return rankMeshService, true
	case targetref.MeshServiceSubset:
		return rankMeshServiceSubset, true
	case targetref.Dataplane:
		r := rankDataplane
		switch {
		case ref.Name != "":
			r = rankDataplaneName
		case len(ref.Labels) > 0:
			r = rankDataplaneLabels
		}
		if ref.SectionName != "" {
			r++
		}
		return r, true
	}
	return 0, false
}

// originRank orders the kuma.io/origin label: global before zone; no label
// means the policy was written on this control plane and ranks as zone.
func originRank(labels map[string]string) uint16 {
	if labels[OriginLabel] == "global" {
		return 0
	}
	return 1
}

// roleRank orders the kuma.io/policy-role label; no label ranks as system.
func roleRank(labels map[string]string) uint16 {
	switch labels[PolicyRoleLabel] {
	case "producer":
		return 1
	case "consumer":
		return 2
	case "workload-owner":
		return 3
	}
	return 0
}

// tierOf packs the attributes that come before the display name: top-level
// rank, origin and role.
func tierOf(r rank, labels map[string]string) uint16 {
	return uint16(r)<<3 | originRank(labels)<<2 | roleRank(labels)
}

// displayName is the name policies are ordered by.
func displayName(name string, labels map[string]string) string {
	if d := labels[DisplayNameLabel]; d != "" {
		return d
	}
	return name
}

// comparePolicies orders two policies least specific first: by tier, then
// by display name and name in inverted lexicographic order, so that the
// policy whose name sorts first comes last and wins.
func comparePolicies(aTier uint16, aDisplay, aName string, bTier uint16, bDisplay, bName string) int {
	if c := cmp.Compare(aTier, bTier); c != 0 {
		return c
	}
	if c := strings.Compare(bDisplay, aDisplay); c != 0 {
		return c
	}
	return strings.Compare(bName, aName)
}

// Limits of entryKey's fields.
const (
	maxPolicies = 1 << 24
	maxEntries  = 1 << 24
)

// entryKey orders the entries of the selected policies for one merge: by
// tier (12 bits), then the kind of the entry's own targetRef (4 bits), then
// the policy's position in the total order (24 bits), then the entry's index
// in its section (24 bits). Comparing two keys as integers compares them in
// that order.
func entryKey(tier uint16, kind uint8, ord, idx int) uint64 {
	return uint64(tier)<<52 | uint64(kind&0xf)<<48 | uint64(ord)<<24 | uint64(idx)
}

// toKindRank orders to[] entries for one destination, Mesh first, as in the
// second table of Kuma's "How policies are combined".
func toKindRank(ref *targetref.TargetRef) (uint8, bool) {
	switch ref.Kind {
	case targetref.Mesh:
		return 0, true
	case targetref.MeshService:
		if ref.SectionName != "" {
			return 2, true
		}
		return 1, true
	case targetref.MeshExternalService:
		return 3, true
	case targetref.MeshMultiZoneService:
		return 4, true
	case targetref.MeshHTTPRoute:
		return 5, true
	}
	return 0, false
}

// fromKindRank orders from[] entries for one source, broadest first.
func fromKindRank(kind targetref.Kind) (uint8, bool) {
	switch kind {
	case targetref.Mesh:
		return 0, true
	case targetref.MeshSubset:
		return 1, true
	case targetref.MeshService:
		return 2, true
	case targetref.MeshServiceSubset:
		return 3, true
	}
	return 0, false
}
