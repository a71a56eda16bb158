package match_test

import (
	"fmt"
	"testing"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// benchMesh is a mesh of n services, each backed by one dataplane, and 100
// MeshTimeouts of every top-level kind:
//   - 10 Mesh-wide (5 zone, 5 global), each with a Mesh to[] entry, one
//     MeshService to[] entry and rules;
//   - 20 MeshService (each selects one service) with to[] Mesh and a port;
//   - 20 MeshSubset on one of 10 tiers, with a to[] entry selecting the 10
//     services of a group by labels;
//   - 20 Dataplane by labels (one of 20 teams) with to[] and from[];
//   - 30 Dataplane by name with to[] for two services.
type benchMesh struct {
	services   []*resource.Resource
	dataplanes []*resource.Resource
	policies   []*resource.Resource
}

func newBenchMesh(n int) benchMesh {
	var m benchMesh
	svc := func(i int) string { return fmt.Sprintf("svc-%04d", i%n) }
	for i := range n {
		m.services = append(m.services, &resource.Resource{
			Type: resource.MeshServiceType,
			Meta: resource.Meta{Name: svc(i), Mesh: "default", Labels: map[string]string{"group": fmt.Sprint(i / 10)}},
			Spec: &meshservice.Spec{
				Selector: meshservice.Selector{DataplaneTags: map[string]string{"app": svc(i)}},
				Ports:    []meshservice.Port{{Name: "http", Port: 8080}, {Port: 9090}},
			},
		})
		m.dataplanes = append(m.dataplanes, &resource.Resource{
			Type: resource.DataplaneType,
			Meta: resource.Meta{Name: fmt.Sprintf("dp-%04d", i), Mesh: "default", Labels: map[string]string{"team": fmt.Sprint(i % 20)}},
			Spec: &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1", Inbound: []dataplane.Inbound{{
				Port: 8080, Name: "http",
				Tags: map[string]string{dataplane.ServiceTag: svc(i), "app": svc(i), "tier": fmt.Sprint(i % 10), "version": "v1"},
			}}}},
		})
	}
	add := func(name string, labels map[string]string, spec *meshtimeout.Spec) {
		m.policies = append(m.policies, &resource.Resource{
			Type: "MeshTimeout", Meta: resource.Meta{Name: name, Mesh: "default", Labels: labels}, Spec: spec,
		})
	}
	conf := func(d string) meshtimeout.Conf {
		return meshtimeout.Conf{IdleTimeout: duration.Duration(d), HTTP: &meshtimeout.HTTP{RequestTimeout: duration.Duration(d)}}
	}
	to := func(ref targetref.TargetRef, d string) targetref.To[meshtimeout.Conf] {
		return targetref.To[meshtimeout.Conf]{TargetRef: ref, Default: conf(d)}
	}
	mesh := targetref.TargetRef{Kind: targetref.Mesh}
	msvc := func(i int, section string) targetref.TargetRef {
		return targetref.TargetRef{Kind: targetref.MeshService, Name: svc(i), SectionName: section}
	}
	for i := range 10 {
		origin := map[string]string{match.OriginLabel: []string{"zone", "global"}[i%2]}
		add(fmt.Sprintf("mesh-%02d", i), origin, &meshtimeout.Spec{
			To:    []targetref.To[meshtimeout.Conf]{to(mesh, "10s"), to(msvc(i*97, ""), "11s")},
			Rules: []targetref.Rule[meshtimeout.Conf]{{Default: conf("12s")}},
		})
	}
	for i := range 20 {
		add(fmt.Sprintf("service-%02d", i), nil, &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.MeshService, Name: svc(i * 37)},
			To:        []targetref.To[meshtimeout.Conf]{to(mesh, "20s"), to(msvc(i*37+1, "http"), "21s")},
		})
	}
	for i := range 20 {
		add(fmt.Sprintf("subset-%02d", i), nil, &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.MeshSubset, Tags: map[string]string{"tier": fmt.Sprint(i % 10)}},
			To: []targetref.To[meshtimeout.Conf]{to(targetref.TargetRef{
				Kind: targetref.MeshService, Labels: map[string]string{"group": fmt.Sprint(i)},
			}, "30s")},
		})
	}
	for i := range 20 {
		add(fmt.Sprintf("team-%02d", i), nil, &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.Dataplane, Labels: map[string]string{"team": fmt.Sprint(i)}},
			To:        []targetref.To[meshtimeout.Conf]{to(msvc(i*13, ""), "40s")},
			From:      []targetref.From[meshtimeout.Conf]{{TargetRef: mesh, Default: conf("41s")}},
		})
	}
	for i := range 30 {
		add(fmt.Sprintf("dp-%02d", i), nil, &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.Dataplane, Name: fmt.Sprintf("dp-%04d", i*31)},
			To:        []targetref.To[meshtimeout.Conf]{to(msvc(i*31+1, ""), "50s"), to(msvc(i*31+2, "9090"), "51s")},
		})
	}
	return m
}

// BenchmarkMatch is the per-proxy cost: one Match call at 1,000 services and
// 100 policies, cycling through the dataplanes.
func BenchmarkMatch(b *testing.B) {
	m := newBenchMesh(1000)
	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{Mesh: "default", MeshServices: m.services}, m.policies)
	if err != nil {
		b.Fatal(err)
	}
	specs := make([]*dataplane.Spec, len(m.dataplanes))
	for i, dp := range m.dataplanes {
		specs[i] = dp.Spec.(*dataplane.Spec)
	}
	policies, destinations := 0, 0
	for i, dp := range m.dataplanes {
		res := prep.Match(dp.Meta, specs[i])
		policies += len(res.Policies)
		destinations += len(res.To.Destinations)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dp := m.dataplanes[i%len(m.dataplanes)]
		_ = prep.Match(dp.Meta, specs[i%len(specs)])
		i++
	}
	b.ReportMetric(float64(policies)/float64(len(m.dataplanes)), "policies/proxy")
	b.ReportMetric(float64(destinations)/float64(len(m.dataplanes)), "destinations/proxy")
}

// BenchmarkPrepare is the per-snapshot cost of ordering and indexing 100
// policies against 1,000 services.
func BenchmarkPrepare(b *testing.B) {
	m := newBenchMesh(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := match.Prepare[meshtimeout.Conf](match.Inputs{Mesh: "default", MeshServices: m.services}, m.policies); err != nil {
			b.Fatal(err)
		}
	}
}
