package match_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func TestRulesApplyToTheInboundsTheTargetRefSelects(t *testing.T) {
	_, res := timeouts(t, `
type: MeshTimeout
name: all-inbounds
mesh: default
spec:
  rules:
  - default: {idleTimeout: 1h, http: {requestTimeout: 15s}}
---
type: MeshTimeout
name: web-service
mesh: default
spec:
  targetRef: {kind: MeshService, name: web, sectionName: http}
  rules:
  - default: {http: {requestTimeout: 5s}}
---
type: MeshTimeout
name: admin-legacy
mesh: default
spec:
  targetRef: {kind: MeshService, name: web-admin}
  rules:
  - default: {idleTimeout: 10s}
  - default: {idleTimeout: 20s}
`)
	web := res["web-1"]
	http, admin := web.Inbound(8080), web.Inbound(9901)
	require.Equal(t, duration.Duration("5s"), requestTimeout(http.Rules),
		"MeshService web, port http, targets inbound 8080: web-service overrides all-inbounds there")
	require.Equal(t, duration.Duration("1h"), http.Rules.Conf.IdleTimeout)
	require.Equal(t, []string{"all-inbounds", "web-service"}, names(http.Rules))

	require.Equal(t, duration.Duration("15s"), requestTimeout(admin.Rules), "web-service does not reach the admin inbound")
	require.Equal(t, duration.Duration("20s"), admin.Rules.Conf.IdleTimeout,
		"web-admin has no MeshService: kuma.io/service selects the inbound; later rules win")
	require.Equal(t, []int{0, 0, 1}, []int{admin.Rules.Contributors[0].Index, admin.Rules.Contributors[1].Index, admin.Rules.Contributors[2].Index})

	backend := res["backend-1"].Inbound(8080)
	require.Equal(t, []string{"all-inbounds"}, names(backend.Rules))
}

func TestMeshServiceSelectorDecidesOverServiceTag(t *testing.T) {
	// MeshService web selects app=web: the admin inbound (kuma.io/service
	// web-admin) backs it too, so a policy on web reaches both inbounds.
	_, res := timeouts(t, `
type: MeshTimeout
name: web
mesh: default
spec:
  targetRef: {kind: MeshService, name: web}
  rules:
  - default: {idleTimeout: 7s}
`)
	web := res["web-1"]
	require.Equal(t, duration.Duration("7s"), web.Inbound(8080).Rules.Conf.IdleTimeout)
	require.Equal(t, duration.Duration("7s"), web.Inbound(9901).Rules.Conf.IdleTimeout)
	require.Empty(t, res["backend-1"].Policies)
}

func TestTopLevelSectionNameConfiguresOneInboundOnly(t *testing.T) {
	prep, res := timeouts(t, `
type: MeshTimeout
name: admin-port
mesh: default
spec:
  targetRef: {kind: Dataplane, name: web-1, sectionName: "9901"}
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 1s}
  rules:
  - default: {idleTimeout: 2s}
`)
	web := res["web-1"]
	require.Nil(t, web.Inbound(8080).Rules)
	require.Nil(t, web.Inbound(9901).Rules, "9901 names no unnamed inbound: admin has a name")
	require.Empty(t, web.Policies, "so the policy selects nothing")
	require.Len(t, prep.Skipped(), 1)
	require.Equal(t, "spec.to", prep.Skipped()[0].Field, "to[] under a sectionName is reported as not applied")

	_, res = timeouts(t, `
type: MeshTimeout
name: backend-port
mesh: default
spec:
  targetRef: {kind: Dataplane, labels: {team: payments}, sectionName: "8080"}
  rules:
  - default: {idleTimeout: 2s}
`)
	require.Equal(t, duration.Duration("2s"), res["backend-1"].Inbound(8080).Rules.Conf.IdleTimeout, "a port number names an unnamed inbound")
	require.Nil(t, res["backend-1"].To.AllDestinations)
}

func TestFromEntriesPerSource(t *testing.T) {
	// MeshTimeout accepts only Mesh in from[]; TestPolicy takes every kind
	// MeshTrafficPermission does.
	_, res := matchAll[testConf](t, load(t, world+`
---
type: TestPolicy
name: inbound
mesh: default
spec:
  targetRef: {kind: MeshService, name: backend}
  from:
  - targetRef: {kind: Mesh}
    default: {level: 1, sub: {a: mesh}}
  - targetRef: {kind: MeshService, name: web}
    default: {level: 5}
  - targetRef: {kind: MeshSubset, tags: {version: v1}}
    default: {sub: {b: v1}}
`))
	from := res["backend-1"].Inbound(8080).From
	require.Equal(t, 1, *from.AllSources.Conf.Level)
	require.Len(t, from.Sources, 2)
	require.Equal(t, []targetref.Kind{targetref.MeshSubset, targetref.MeshService},
		[]targetref.Kind{from.Sources[0].Source.Kind, from.Sources[1].Source.Kind}, "sources are listed least specific first")
	require.Equal(t, 5, *from.Sources[1].Conf.Level, "the MeshService web source includes the Mesh entry")
	require.Equal(t, &testSub{A: "mesh"}, from.Sources[1].Conf.Sub)

	webV1, ok := from.For(map[string]string{dataplane.ServiceTag: "web", "version": "v1"})
	require.True(t, ok)
	require.Equal(t, 5, *webV1.Conf.Level, "traffic from web v1 gets web's level")
	require.Equal(t, &testSub{A: "mesh", B: "v1"}, webV1.Conf.Sub, "and the v1 subset's sub.b on top of the Mesh entry")
	require.Equal(t, []int{0, 2, 1}, []int{webV1.Contributors[0].Index, webV1.Contributors[1].Index, webV1.Contributors[2].Index},
		"from[0] Mesh < from[2] MeshSubset < from[1] MeshService")

	other, _ := from.For(map[string]string{dataplane.ServiceTag: "payments"})
	require.Equal(t, 1, *other.Conf.Level, "other sources get the Mesh entry only")
	require.Len(t, other.Contributors, 1)

	require.Empty(t, res["web-1"].Inbound(8080).From.Sources, "the policy selects backend only")
}

func TestNonMatchingPoliciesAreExcluded(t *testing.T) {
	prep, res := timeouts(t,
		mt("other-dp", "{kind: Dataplane, name: web-2}", "", "1s")+
			mt("other-labels", "{kind: Dataplane, labels: {team: search}}", "", "1s")+
			mt("other-subset", "{kind: MeshSubset, tags: {version: v2}}", "", "1s")+
			mt("other-service", "{kind: MeshService, name: search}", "", "1s")+
			mt("gateways", "{kind: Mesh, proxyTypes: [Gateway]}", "", "1s")+
			mt("gateway-kind", "{kind: MeshGateway, name: edge}", "", "1s")+`
type: MeshTimeout
name: other-mesh
mesh: other
spec:
  to:
  - targetRef: {kind: Mesh}
    default: {idleTimeout: 1s}
`)
	for dp, r := range res {
		require.Empty(t, r.Policies, "no policy selects %s", dp)
		require.Nil(t, r.To.AllDestinations)
	}
	require.Equal(t, []match.Skipped{{
		Type: "MeshTimeout", Mesh: "default", Name: "gateway-kind", Field: "spec.targetRef.kind",
		Reason: "top-level kind MeshGateway is not supported by the matcher; the policy applies to no proxy",
	}}, prep.Skipped())
}

func TestProxyTypesAndGatewayTags(t *testing.T) {
	f := load(t, world+"\n---\n"+
		mt("gateways", "{kind: Mesh, proxyTypes: [Gateway]}", "", "1s")+
		mt("sidecars", "{kind: Mesh, proxyTypes: [Sidecar]}", "", "2s")+
		mt("edge-subset", "{kind: MeshSubset, tags: {kuma.io/service: edge}}", "", "3s")+`
type: Dataplane
name: edge-1
mesh: default
networking:
  address: 10.0.0.9
  gateway:
    type: BUILTIN
    tags:
      kuma.io/service: edge
`)
	_, res := matchAll[meshtimeout.Conf](t, f)
	require.Equal(t, []string{"gateways", "edge-subset"}, policyNames(res["edge-1"]), "gateway tags count for MeshSubset")
	require.Empty(t, res["edge-1"].Inbounds, "a builtin gateway has no inbounds")
	require.Equal(t, []string{"sidecars"}, policyNames(res["web-1"]))
}

func TestServiceAndDataplaneReferences(t *testing.T) {
	f := load(t, `
type: MeshService
name: pinned
mesh: default
spec:
  selector:
    dataplaneRef:
      name: db-1.data
---
type: Dataplane
name: db-1.data
mesh: default
labels:
  k8s.kuma.io/namespace: data
networking:
  address: 10.0.0.3
  inbound:
  - port: 5432
    tags:
      kuma.io/service: db
---
type: Dataplane
name: db-2
mesh: default
labels:
  k8s.kuma.io/namespace: data
networking:
  address: 10.0.0.4
  inbound:
  - port: 5432
    tags:
      kuma.io/service: db
---`+
		mt("by-dataplane-ref", "{kind: MeshService, name: pinned}", "", "1s")+
		mt("by-namespace-suffix", "{kind: Dataplane, name: db-1, namespace: data}", "", "2s")+
		mt("by-namespace-label", "{kind: Dataplane, name: db-2, namespace: data}", "", "3s")+
		mt("wrong-namespace", "{kind: Dataplane, name: db-2, namespace: other}", "", "4s"))
	_, res := matchAll[meshtimeout.Conf](t, f)
	require.Equal(t, []string{"by-dataplane-ref", "by-namespace-suffix"}, policyNames(res["db-1.data"]),
		"a MeshService's dataplaneRef selects the dataplane; name.namespace names it")
	require.Equal(t, []string{"by-namespace-label"}, policyNames(res["db-2"]), "the namespace label names it too")
}

func TestResultsNameTheTypeWithoutPolicies(t *testing.T) {
	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{Type: "MeshTimeout", Mesh: "default"}, nil)
	require.NoError(t, err)
	res := prep.Match(resource.Meta{Name: "dp", Mesh: "default"}, dpSpec("web"))
	require.Equal(t, "MeshTimeout", res.Type)
	_, ok := res.To.For(service("backend", 0))
	require.False(t, ok, "no policy, no conf: the plugin keeps its defaults")

	_, err = match.Prepare[meshtimeout.Conf](match.Inputs{Type: "MeshRetry"}, []*resource.Resource{{
		Type: "MeshTimeout", Meta: resource.Meta{Name: "t"}, Spec: &meshtimeout.Spec{},
	}})
	require.ErrorContains(t, err, "expected type MeshRetry")
}

func TestMatchIsSafeForConcurrentUse(t *testing.T) {
	f := load(t, world+"\n---\n"+mt("a", "{kind: Mesh}", "", "1s")+mt("b", "{kind: MeshService, name: web}", "", "2s"))
	prep, want := matchAll[meshtimeout.Conf](t, f)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, dp := range f.dataplanes {
				got, err := prep.MatchResource(dp)
				require.NoError(t, err)
				require.Equal(t, policyNames(want[dp.Meta.Name]), policyNames(got))
			}
		})
	}
	wg.Wait()
}
