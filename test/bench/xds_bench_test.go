package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/build"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
	"github.com/atoll-mesh/atoll/policies/all"
)

// BenchmarkConfigGeneration measures the configuration of one proxy (IR
// build, translation to Envoy resources, version) in a STRICT-mTLS mesh of
// N services with two instances each, where every proxy reaches every
// service through transparent proxying (N outbounds, N clusters; DESIGN §12:
// ≤ 1 ms CPU per proxy at 1,000 services). Certificate issuance is left out.
//
//   - cold/pure: one proxy with nothing shared, as inspect does it
//     (build.Build + translate.Translate).
//   - cold/pipeline: one proxy through the reconciler's path with fresh
//     caches (build.Batch, translate.Cache).
//   - amortised: every proxy of the mesh (2N) after a change, as a
//     reconciliation round does it: a new batch for the new snapshot (so
//     the shared outbound part is built and validated again once) and a
//     warm translation cache. ns/op and allocs/op are per proxy.
//   - amortised-cold-cache: the same with an empty translation cache, so the
//     shared part is also rendered again once per round.
func BenchmarkConfigGeneration(b *testing.B) {
	plugins, err := all.PluginRegistry()
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 1000} {
		shape := meshShape{meshName: "bench", services: n, perService: 2, transparent: true, mtls: true, policies: 10}
		if n == 1000 {
			defer benchScoped(b, meshShape{meshName: "bench", services: n, perService: 2, transparent: true, mtls: true, policies: 10, scoped: 100})
		}
		snap := shape.snapshot(b)
		dps := snap.Dataplanes()
		b.Run(fmt.Sprintf("cold/pure/services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := build.Build(build.Input{Snapshot: snap, Dataplane: dps[0].Name(), Identity: benchIdentity, Plugins: plugins})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := translate.Translate(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("cold/pipeline/services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g := newGenerator(snap, translate.NewCache())
				if _, _, err := g.generate(dps[0].Name()); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, warm := range []bool{true, false} {
			name := "amortised"
			if !warm {
				name = "amortised-cold-cache"
			}
			b.Run(fmt.Sprintf("%s/services=%d/proxies=%d", name, n, len(dps)), func(b *testing.B) {
				cache := translate.NewCache()
				g := newGenerator(snap, cache)
				for _, dp := range dps { // warm up: the first round after start
					if _, _, err := g.generate(dp.Name()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i%len(dps) == 0 { // a new round: new snapshot, new batch
						if !warm {
							cache = translate.NewCache()
						}
						g = newGenerator(snap, cache)
					}
					if _, _, err := g.generate(dps[i%len(dps)].Name()); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(g.batch.Parts()), "parts/round")
			})
		}
	}
}

// benchScoped is the amortised case with 100 policies that select the
// proxies of one service each: 101 distinct outbound parts instead of one.
func benchScoped(b *testing.B, shape meshShape) {
	snap := shape.snapshot(b)
	dps := snap.Dataplanes()
	b.Run(fmt.Sprintf("amortised/services=%d/proxies=%d/scoped-policies=%d", shape.services, len(dps), shape.scoped), func(b *testing.B) {
		cache := translate.NewCache()
		g := newGenerator(snap, cache)
		for _, dp := range dps {
			if _, _, err := g.generate(dp.Name()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(dps) == 0 {
				g = newGenerator(snap, cache)
			}
			if _, _, err := g.generate(dps[i%len(dps)].Name()); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(g.batch.Parts()), "parts/round")
	})
}

// BenchmarkPolicyChangeLatency measures, with the real store, manager,
// snapshot tracker and reconciler (publishing to a counting fake), the time
// from writing a MeshTimeout that touches one service to the moment every
// proxy that calls that service has been published its new configuration;
// the snapshot batching window is included. 1,000 services; N connected
// proxies spread over them.
//
//   - declared: each proxy declares outbounds to 5 services, so a change to
//     one service reaches ~5N/1000 proxies.
//   - transparent: every proxy reaches every service, so the change reaches
//     all N.
//
// After the loop it checks that only those proxies were published to.
func BenchmarkPolicyChangeLatency(b *testing.B) {
	for _, proxies := range []int{1000, 5000} {
		for _, transparent := range []bool{false, true} {
			shape := meshShape{meshName: "bench", services: 1000, perService: proxies / 1000, policies: 10}
			mode := "declared"
			if transparent {
				shape.transparent, mode = true, "transparent"
			} else {
				shape.declared = 5
			}
			b.Run(fmt.Sprintf("%s/proxies=%d", mode, proxies), func(b *testing.B) {
				cp := startControlPlane(b, shape)
				target := svcName(500)
				var affected []resource.Key
				_, rest := shape.resources()
				for _, r := range rest {
					if r.Type != resource.DataplaneType {
						continue
					}
					if transparent || calls(shape, r.Meta.Name, 500) {
						affected = append(affected, r.Key())
					}
				}
				before := cp.pub.total()
				var lat []time.Duration
				i := 0
				for b.Loop() {
					i++
					done := cp.pub.expect(affected)
					start := time.Now()
					res := timeout("bench", "change", nil, targetref.TargetRef{Kind: targetref.MeshService, Name: target}, "", fmt.Sprintf("%ds", i%50+1))
					if _, err := cp.mgr.Apply(context.Background(), res, manager.ApplyOptions{}); err != nil {
						b.Fatal(err)
					}
					select {
					case <-done:
					case <-time.After(time.Minute):
						b.Fatal("the change never reached every affected proxy")
					}
					lat = append(lat, time.Since(start))
				}
				b.StopTimer()
				time.Sleep(300 * time.Millisecond) // let stray publishes, if any, arrive
				if got, want := cp.pub.total()-before, i*len(affected); got != want {
					b.Fatalf("%d publishes for %d changes to %d affected proxies; want exactly %d", got, i, len(affected), want)
				}
				b.ReportMetric(float64(len(affected)), "proxies/change")
				b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			})
		}
	}
}

// calls reports whether a generated dataplane declares an outbound to
// service svc.
func calls(s meshShape, name string, svc int) bool {
	var i int
	fmt.Sscanf(name, "dp-%05d", &i)
	own := i % s.services
	for k := range s.declared {
		if (own+1+k)%s.services == svc {
			return true
		}
	}
	return false
}
