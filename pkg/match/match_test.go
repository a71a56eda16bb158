package match_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// world is the mesh most tests run in: web-1 (inbounds http 8080 for web
// and admin 9901 for web-admin) calls backend-1 (8080, backend). MeshService
// web selects app=web, so both inbounds of web-1 back it; its port "http"
// targets inbound 8080. MeshService backend has a named port and an unnamed
// one. No MeshService exists for web-admin.
const world = `
type: MeshService
name: web
mesh: default
spec:
  selector:
    dataplaneTags:
      app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
type: MeshService
name: backend
mesh: default
labels:
  team: payments
spec:
  selector:
    dataplaneTags:
      app: backend
  ports:
  - name: http
    port: 8080
  - port: 9090
---
type: Dataplane
name: web-1
mesh: default
labels:
  team: web
networking:
  address: 10.0.0.1
  inbound:
  - port: 8080
    name: http
    tags:
      kuma.io/service: web
      app: web
      version: v1
  - port: 9901
    name: admin
    tags:
      kuma.io/service: web-admin
      app: web
---
type: Dataplane
name: backend-1
mesh: default
labels:
  team: payments
networking:
  address: 10.0.0.2
  inbound:
  - port: 8080
    tags:
      kuma.io/service: backend
      app: backend
`

// timeouts matches world plus the given MeshTimeouts.
func timeouts(t *testing.T, policies string) (*match.Prepared[meshtimeout.Conf], map[string]*match.Result[meshtimeout.Conf]) {
	t.Helper()
	return matchAll[meshtimeout.Conf](t, load(t, world+"\n---\n"+policies))
}

// requestTimeout returns the effective http.requestTimeout of a merged conf.
func requestTimeout(m *match.Merged[meshtimeout.Conf]) duration.Duration {
	if m == nil || m.Conf.HTTP == nil {
		return ""
	}
	return m.Conf.HTTP.RequestTimeout
}

// mt writes a MeshTimeout whose to[] Mesh entry sets requestTimeout.
func mt(name, targetRef, labels, timeout string) string {
	return `
type: MeshTimeout
name: ` + name + `
mesh: default
labels: {` + labels + `}
spec:
  targetRef: ` + targetRef + `
  to:
  - targetRef: {kind: Mesh}
    default:
      http:
        requestTimeout: ` + timeout + `
---`
}

func TestMoreSpecificTopLevelTargetRefWins(t *testing.T) {
	all := []string{
		mt("mesh-wide", "{kind: Mesh}", "", "1s"),
		mt("subset-v1", "{kind: MeshSubset, tags: {version: v1}}", "", "2s"),
		mt("service-web", "{kind: MeshService, name: web}", "", "3s"),
		mt("team-web", "{kind: Dataplane, labels: {team: web}}", "", "4s"),
		mt("web-1-only", "{kind: Dataplane, name: web-1}", "", "5s"),
	}
	order := []string{"mesh-wide", "subset-v1", "service-web", "team-web", "web-1-only"}
	// Dropping the most specific policy one by one hands the decision to the
	// next one: requestTimeout for every destination of web-1 is the value of
	// the most specific policy left.
	for n := len(all); n >= 1; n-- {
		t.Run(order[n-1], func(t *testing.T) {
			// Shuffle the input: only specificity may decide.
			input := append([]string(nil), all[:n]...)
			rand.Shuffle(len(input), func(i, j int) { input[i], input[j] = input[j], input[i] })
			policies := ""
			for _, p := range input {
				policies += p
			}
			_, res := timeouts(t, policies)
			web := res["web-1"]
			require.Equal(t, order[:n], policyNames(web), "policies apply least specific first")
			require.Equal(t, duration.Duration([]string{"1s", "2s", "3s", "4s", "5s"}[n-1]), requestTimeout(web.To.AllDestinations),
				"the effective requestTimeout comes from %s, the most specific policy", order[n-1])
			require.Equal(t, order[:n], names(web.To.AllDestinations))
		})
	}
	t.Run("backend-1 is selected only by the Mesh policy", func(t *testing.T) {
		_, res := timeouts(t, all[0]+all[1]+all[2]+all[3]+all[4])
		require.Equal(t, []string{"mesh-wide"}, policyNames(res["backend-1"]))
		require.Equal(t, duration.Duration("1s"), requestTimeout(res["backend-1"].To.AllDestinations))
	})
}

func TestDataplaneSpecificityLevels(t *testing.T) {
	// Dataplane < labels < labels/sectionName < name < name/sectionName; a
	// sectionName policy applies to its inbound only, so rules show it.
	rule := func(name, ref, timeout string) string {
		return `
type: MeshTimeout
name: ` + name + `
mesh: default
spec:
  targetRef: ` + ref + `
  rules:
  - default:
      http:
        requestTimeout: ` + timeout + `
---`
	}
	_, res := timeouts(t,
		rule("a-name-section", "{kind: Dataplane, name: web-1, sectionName: http}", "5s")+
			rule("b-name", "{kind: Dataplane, name: web-1}", "4s")+
			rule("c-labels-section", "{kind: Dataplane, labels: {team: web}, sectionName: admin}", "3s")+
			rule("d-labels", "{kind: Dataplane, labels: {team: web}}", "2s")+
			rule("e-all", "{kind: Dataplane}", "1s"))
	web := res["web-1"]
	http, admin := web.Inbound(8080), web.Inbound(9901)
	require.Equal(t, duration.Duration("5s"), requestTimeout(http.Rules), "name/sectionName beats name on inbound http")
	require.Equal(t, []string{"e-all", "d-labels", "b-name", "a-name-section"}, names(http.Rules))
	require.Equal(t, duration.Duration("4s"), requestTimeout(admin.Rules), "name beats labels/sectionName on inbound admin")
	require.Equal(t, []string{"e-all", "d-labels", "c-labels-section", "b-name"}, names(admin.Rules))
}

func TestZoneOriginBeatsGlobalOfSameKind(t *testing.T) {
	// "a-global" would win the name tie-break, but origin is compared first.
	_, res := timeouts(t,
		mt("a-global", "{kind: Mesh}", "kuma.io/origin: global", "1s")+
			mt("z-zone", "{kind: Mesh}", "kuma.io/origin: zone", "2s"))
	web := res["web-1"]
	require.Equal(t, []string{"a-global", "z-zone"}, policyNames(web))
	require.Equal(t, duration.Duration("2s"), requestTimeout(web.To.AllDestinations), "the zone policy overrides the global one")
	require.Equal(t, "global", web.Policies[0].Origin)

	// A more specific global policy still beats a zone Mesh policy.
	_, res = timeouts(t,
		mt("global-dp", "{kind: Dataplane, name: web-1}", "kuma.io/origin: global", "1s")+
			mt("zone-mesh", "{kind: Mesh}", "kuma.io/origin: zone", "2s"))
	require.Equal(t, duration.Duration("1s"), requestTimeout(res["web-1"].To.AllDestinations))
}

func TestLexicographicallySmallestNameWins(t *testing.T) {
	_, res := timeouts(t,
		mt("bbb", "{kind: Mesh}", "", "2s")+mt("aaa", "{kind: Mesh}", "", "1s")+mt("ccc", "{kind: Mesh}", "", "3s"))
	require.Equal(t, []string{"ccc", "bbb", "aaa"}, policyNames(res["web-1"]), "inverted lexicographic order")
	require.Equal(t, duration.Duration("1s"), requestTimeout(res["web-1"].To.AllDestinations), "aaa wins")

	// A synced policy is ordered by its display name, not its stored name.
	_, res = timeouts(t,
		mt("zzz-synced-5f7d", "{kind: Mesh}", "kuma.io/display-name: aaa", "1s")+mt("bbb", "{kind: Mesh}", "", "2s"))
	require.Equal(t, duration.Duration("1s"), requestTimeout(res["web-1"].To.AllDestinations))
}

func TestNoTargetRefActsAsMesh(t *testing.T) {
	_, res := timeouts(t, `
type: MeshTimeout
name: bbb-implicit
mesh: default
spec:
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 1m}
---`+mt("aaa-explicit", "{kind: Mesh}", "", "1s")+mt("dp", "{kind: Dataplane, name: backend-1}", "", "9s"))
	for _, dp := range []string{"web-1", "backend-1"} {
		require.Equal(t, "bbb-implicit", res[dp].Policies[0].Name, "a policy without targetRef applies to %s", dp)
		require.Equal(t, "Mesh", res[dp].Policies[0].Specificity)
	}
	web := res["web-1"].To.AllDestinations
	require.Equal(t, []string{"bbb-implicit", "aaa-explicit"}, names(web), "it ranks as Mesh: the name decides")
	require.Equal(t, duration.Duration("1m"), web.Conf.IdleTimeout)
	require.Equal(t, duration.Duration("1s"), requestTimeout(web))
}

func TestToEntriesMergeFieldByField(t *testing.T) {
	_, res := timeouts(t, `
type: MeshTimeout
name: mesh-defaults
mesh: default
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Mesh}
    default:
      idleTimeout: 1h
      http: {requestTimeout: 15s, streamIdleTimeout: 30m}
---
type: MeshTimeout
name: web-to-backend
mesh: default
spec:
  targetRef: {kind: Dataplane, name: web-1}
  to:
  - targetRef: {kind: MeshService, name: backend}
    default:
      http: {requestTimeout: 5s}
`)
	to := res["web-1"].To
	got, ok := to.For(service("backend", 0))
	require.True(t, ok)
	require.Equal(t, duration.Duration("5s"), requestTimeout(got), "web-to-backend (Dataplane) overrides requestTimeout of mesh-defaults (Mesh)")
	require.Equal(t, duration.Duration("1h"), got.Conf.IdleTimeout, "idleTimeout of mesh-defaults is kept")
	require.Equal(t, duration.Duration("30m"), got.Conf.HTTP.StreamIdleTimeout, "and so is http.streamIdleTimeout")
	require.Equal(t, "MeshTimeout default/mesh-defaults spec.to[0]\nMeshTimeout default/web-to-backend spec.to[0]", got.Explain())
	confs := got.Confs()
	require.Len(t, confs, 2, "the unmerged confs are there for policies that do not merge")
	require.Equal(t, duration.Duration("15s"), confs[0].HTTP.RequestTimeout)
	require.Equal(t, duration.Duration("5s"), confs[1].HTTP.RequestTimeout)

	other, ok := to.For(service("payments", 0))
	require.True(t, ok)
	require.Equal(t, duration.Duration("15s"), requestTimeout(other), "other destinations keep the mesh default")

	port, _ := to.For(service("backend", 8080))
	require.Equal(t, got, port, "a port nobody names falls back to the whole service")

	_, ok = res["backend-1"].To.For(service("backend", 0))
	require.True(t, ok)
	require.Equal(t, duration.Duration("15s"), requestTimeout(res["backend-1"].To.AllDestinations), "backend-1 is not web-1")
}

func TestToKindRanksAfterTopLevelAndBeforeName(t *testing.T) {
	_, res := timeouts(t, `
type: MeshTimeout
name: aaa-mesh-wide
mesh: default
spec:
  to:
  - targetRef: {kind: Mesh}
    default: {http: {requestTimeout: 1s}}
---
type: MeshTimeout
name: zzz-backend
mesh: default
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {http: {requestTimeout: 2s}}
---
type: MeshTimeout
name: web-everything
mesh: default
spec:
  targetRef: {kind: Dataplane, name: web-1}
  to:
  - targetRef: {kind: Mesh}
    default: {http: {requestTimeout: 3s}}
`)
	got, _ := res["web-1"].To.For(service("backend", 0))
	require.Equal(t, []string{"aaa-mesh-wide", "zzz-backend", "web-everything"}, names(got),
		"among Mesh policies the MeshService entry beats the Mesh entry despite its name; the Dataplane policy beats both")
	require.Equal(t, duration.Duration("3s"), requestTimeout(got))

	got, _ = res["backend-1"].To.For(service("backend", 0))
	require.Equal(t, duration.Duration("2s"), requestTimeout(got), "backend-1 has no Dataplane policy: zzz-backend wins")
}

func TestToSectionNameSelectsOnePort(t *testing.T) {
	prep, res := timeouts(t, `
type: MeshTimeout
name: backend-ports
mesh: default
spec:
  to:
  - targetRef: {kind: MeshService, name: backend}
    default: {connectionTimeout: 1s, http: {requestTimeout: 10s}}
  - targetRef: {kind: MeshService, name: backend, sectionName: http}
    default: {http: {requestTimeout: 2s}}
  - targetRef: {kind: MeshService, name: backend, sectionName: "9090"}
    default: {http: {requestTimeout: 3s}}
  - targetRef: {kind: MeshService, name: backend, sectionName: grpc}
    default: {http: {requestTimeout: 4s}}
`)
	to := res["web-1"].To
	http, _ := to.For(service("backend", 8080))
	require.Equal(t, duration.Duration("2s"), requestTimeout(http), "sectionName http is port 8080")
	require.Equal(t, duration.Duration("1s"), http.Conf.ConnectionTimeout, "the whole-service entry still applies")
	unnamed, _ := to.For(service("backend", 9090))
	require.Equal(t, duration.Duration("3s"), requestTimeout(unnamed), "a number names an unnamed port")
	whole, _ := to.For(service("backend", 0))
	require.Equal(t, duration.Duration("10s"), requestTimeout(whole))
	require.Equal(t, []match.Skipped{{
		Type: "MeshTimeout", Mesh: "default", Name: "backend-ports", Field: "spec.to[3].targetRef.sectionName",
		Reason: `"grpc" names no port of MeshService backend`,
	}}, prep.Skipped(), "an unknown port is reported, not guessed")
}

func TestToSelectsMeshServicesByLabelsAndFallsBackToServiceTag(t *testing.T) {
	_, res := timeouts(t, `
type: MeshTimeout
name: payments
mesh: default
spec:
  to:
  - targetRef: {kind: MeshService, labels: {team: payments}}
    default: {idleTimeout: 2m}
  - targetRef: {kind: MeshService, name: legacy_svc_80}
    default: {idleTimeout: 3m}
  - targetRef: {kind: MeshExternalService, name: httpbin}
    default: {idleTimeout: 4m}
`)
	to := res["web-1"].To
	got, ok := to.For(service("backend", 0))
	require.True(t, ok)
	require.Equal(t, duration.Duration("2m"), got.Conf.IdleTimeout, "labels select MeshService backend")
	got, _ = to.For(service("legacy_svc_80", 0))
	require.Equal(t, duration.Duration("3m"), got.Conf.IdleTimeout, "a name without MeshService stands for kuma.io/service")
	got, _ = to.For(match.Destination{Kind: "MeshExternalService", Name: "httpbin"})
	require.Equal(t, duration.Duration("4m"), got.Conf.IdleTimeout)
	_, ok = to.For(service("web", 0))
	require.False(t, ok, "nothing applies to web")
}

func TestToMeshExternalServicesByLabels(t *testing.T) {
	f := load(t, world+`
---
type: MeshTimeout
name: external
mesh: default
spec:
  to:
  - targetRef: {kind: MeshExternalService, labels: {external: "true"}}
    default: {idleTimeout: 5m}
`)
	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{
		Mesh: "default", MeshServices: f.services,
		Destinations: map[targetref.Kind][]resource.Meta{targetref.MeshExternalService: {
			{Name: "httpbin", Mesh: "default", Labels: map[string]string{"external": "true"}},
			{Name: "internal", Mesh: "default"},
		}},
	}, f.policies)
	require.NoError(t, err)
	res, err := prep.MatchResource(f.dataplanes[1])
	require.NoError(t, err)
	require.Equal(t, []match.Destination{{Kind: targetref.MeshExternalService, Name: "httpbin"}},
		[]match.Destination{res.To.Destinations[0].Destination}, "only the labelled MeshExternalService is configured")
}
