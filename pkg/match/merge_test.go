package match_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func TestMeshTimeoutMerge(t *testing.T) {
	http := func(req, idle string) *meshtimeout.HTTP {
		return &meshtimeout.HTTP{RequestTimeout: dur(req), StreamIdleTimeout: dur(idle)}
	}
	for _, tc := range []struct {
		name              string
		base, patch, want meshtimeout.Conf
	}{
		{"absent fields keep the base",
			meshtimeout.Conf{ConnectionTimeout: "5s", IdleTimeout: "1h"},
			meshtimeout.Conf{IdleTimeout: "10m"},
			meshtimeout.Conf{ConnectionTimeout: "5s", IdleTimeout: "10m"}},
		{"0s disables, so it overrides",
			meshtimeout.Conf{IdleTimeout: "1h"},
			meshtimeout.Conf{IdleTimeout: "0s"},
			meshtimeout.Conf{IdleTimeout: "0s"}},
		{"http merges field by field",
			meshtimeout.Conf{HTTP: http("15s", "30m")},
			meshtimeout.Conf{HTTP: http("5s", "")},
			meshtimeout.Conf{HTTP: http("5s", "30m")}},
		{"http only in the base is kept",
			meshtimeout.Conf{HTTP: http("15s", "")},
			meshtimeout.Conf{IdleTimeout: "1m"},
			meshtimeout.Conf{IdleTimeout: "1m", HTTP: http("15s", "")}},
		{"http only in the patch is taken",
			meshtimeout.Conf{},
			meshtimeout.Conf{HTTP: http("", "1m")},
			meshtimeout.Conf{HTTP: http("", "1m")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, patch := clone(tc.base), clone(tc.patch)
			require.Equal(t, tc.want, tc.base.Merge(tc.patch))
			require.Equal(t, base, tc.base, "the base is not changed")
			require.Equal(t, patch, tc.patch, "the patch is not changed")
		})
	}
}

func dur(s string) duration.Duration { return duration.Duration(s) }

func clone(c meshtimeout.Conf) meshtimeout.Conf {
	if c.HTTP != nil {
		h := *c.HTTP
		c.HTTP = &h
	}
	return c
}

func TestListsReplaceButAppendListsConcatenate(t *testing.T) {
	f := load(t, world+`
---
type: TestPolicy
name: mesh-wide
mesh: default
spec:
  default:
    level: 1
    backends: [a, b]
    appendHeaders: [x-mesh]
    sub: {a: mesh, b: mesh}
---
type: TestPolicy
name: web-team
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {team: web}}
  default:
    backends: [c]
    appendHeaders: [x-team]
    sub: {b: team}
---
type: TestPolicy
name: web-1-only
mesh: default
spec:
  targetRef: {kind: Dataplane, name: web-1}
  default:
    backends: []
    appendHeaders: [x-web-1]
`)
	_, res := matchAll[testConf](t, f)
	web := res["web-1"].Default
	require.Equal(t, 1, *web.Conf.Level, "an absent scalar keeps mesh-wide's value")
	require.Equal(t, []string{}, web.Conf.Backends, "an explicit empty list replaces: web-1-only clears backends")
	require.Equal(t, []string{"x-mesh", "x-team", "x-web-1"}, web.Conf.AppendHeaders, "append* lists concatenate, least specific first")
	require.Equal(t, &testSub{A: "mesh", B: "team"}, web.Conf.Sub, "nested objects merge field by field")

	backend := res["backend-1"].Default
	require.Equal(t, []string{"a", "b"}, backend.Conf.Backends)
	require.Equal(t, []string{"x-mesh"}, backend.Conf.AppendHeaders)
}

func TestRouteEntriesApplyOnTopOfTheOutbound(t *testing.T) {
	// MeshTimeout's validation does not accept MeshHTTPRoute in to[] yet;
	// TestPolicy does.
	_, res := matchAll[testConf](t, load(t, world+`
---
type: TestPolicy
name: aaa-route
mesh: default
spec:
  to:
  - targetRef: {kind: MeshHTTPRoute, name: slow-reports}
    default: {level: 60}
---
type: TestPolicy
name: web
mesh: default
spec:
  targetRef: {kind: Dataplane, name: web-1}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {level: 5, sub: {a: web}}
`))
	to := res["web-1"].To
	got, ok := to.ForRoute(service("backend", 8080), "slow-reports")
	require.True(t, ok)
	require.Equal(t, 60, *got.Conf.Level, "the route's entry is more specific than its outbound's, whatever the policies' kinds")
	require.Equal(t, &testSub{A: "web"}, got.Conf.Sub, "the outbound's other fields still apply")
	require.Equal(t, []string{"web", "aaa-route"}, names(got))

	plain, _ := to.ForRoute(service("backend", 8080), "other-route")
	require.Equal(t, 5, *plain.Conf.Level, "other routes get the outbound's conf")
	only, _ := to.ForRoute(service("payments", 0), "slow-reports")
	require.Equal(t, []string{"aaa-route"}, names(only), "an outbound without entries leaves the route's own")
}

func TestMatchIsDeterministic(t *testing.T) {
	f := load(t, world+"\n---\n"+
		mt("a", "{kind: Mesh}", "kuma.io/origin: zone", "1s")+
		mt("b", "{kind: Mesh}", "kuma.io/origin: global", "2s")+
		mt("c", "{kind: MeshService, name: web}", "", "3s")+
		mt("d", "{kind: Dataplane, labels: {team: web}}", "", "4s")+
		mt("e", "{kind: MeshSubset, tags: {app: web}}", "", "5s"))
	_, want := matchAll[meshtimeout.Conf](t, f)
	for range 10 {
		rand.Shuffle(len(f.policies), func(i, j int) { f.policies[i], f.policies[j] = f.policies[j], f.policies[i] })
		rand.Shuffle(len(f.services), func(i, j int) { f.services[i], f.services[j] = f.services[j], f.services[i] })
		_, got := matchAll[meshtimeout.Conf](t, f)
		require.Empty(t, cmp.Diff(want, got, cmpopts.IgnoreUnexported(match.FromResult[meshtimeout.Conf]{}, match.Merged[meshtimeout.Conf]{})),
			"the input order of policies and services never changes the result")
	}
}

func TestPrepareRejectsProgrammingErrors(t *testing.T) {
	timeout := &resource.Resource{Type: "MeshTimeout", Meta: resource.Meta{Name: "t", Mesh: "default"}, Spec: &meshtimeout.Spec{}}
	other := &resource.Resource{Type: "Other", Meta: resource.Meta{Name: "o", Mesh: "default"}, Spec: &otherSpec{}}
	_, err := match.Prepare[meshtimeout.Conf](match.Inputs{}, []*resource.Resource{timeout, other})
	require.ErrorContains(t, err, "Prepare takes policies of one type")

	badService := &resource.Resource{Type: "MeshService", Meta: resource.Meta{Name: "s"}, Spec: &meshtimeout.Spec{}}
	_, err = match.Prepare[meshtimeout.Conf](match.Inputs{MeshServices: []*resource.Resource{badService}}, nil)
	require.ErrorContains(t, err, "not *meshservice.Spec")

	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{}, nil)
	require.NoError(t, err)
	_, err = prep.MatchResource(timeout)
	require.ErrorContains(t, err, "not *dataplane.Spec")

	res := prep.Match(resource.Meta{Name: "dp", Mesh: "default"}, dpSpec("web"))
	require.Empty(t, res.Policies, "no policies, nothing applies")
	require.Equal(t, []uint32{8080}, slices.Collect(func(yield func(uint32) bool) {
		for _, in := range res.Inbounds {
			yield(in.Port)
		}
	}), "every inbound is listed, even without confs")
}

// otherSpec is a spec of a second test type, to mix types by mistake.
type otherSpec struct{}

func (s *otherSpec) Validate() validate.Errors          { return nil }
func (s *otherSpec) GetTargetRef() *targetref.TargetRef { return nil }
