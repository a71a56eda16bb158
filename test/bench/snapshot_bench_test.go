package bench

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot/track"
	"github.com/atoll-mesh/atoll/policies/all"
)

// BenchmarkSnapshotBatching measures the snapshot tracker's batching window
// (Options.Quiet; MaxDelay is 10× it): how long one write takes to show in a
// new snapshot, and how many snapshots a burst of 100 writes (a bulk apply,
// written back to back through the manager, or spaced by 1 ms as over
// REST) turns into. The default was chosen from these figures.
func BenchmarkSnapshotBatching(b *testing.B) {
	for _, quiet := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond} {
		for _, spacing := range []time.Duration{0, time.Millisecond} {
			b.Run(fmt.Sprintf("quiet=%s/spacing=%s", quiet, spacing), func(b *testing.B) {
				reg, err := all.Registry()
				if err != nil {
					b.Fatal(err)
				}
				log := slog.New(slog.DiscardHandler)
				st := memory.New(reg)
				mgr := manager.New(reg, st, log)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if _, err := mgr.Apply(ctx, &resource.Resource{Type: resource.MeshType, Meta: resource.Meta{Name: "m"}, Spec: &mesh.Spec{}}, manager.ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				tr := track.New(st, reg, log, track.Options{Quiet: quiet, MaxDelay: 10 * quiet})
				go func() { _ = tr.Start(ctx) }()
				<-tr.Ready()
				write := func(i, j int) {
					dp := &resource.Resource{Type: resource.DataplaneType, Meta: resource.Meta{Mesh: "m", Name: fmt.Sprintf("dp-%d", j)},
						Spec: &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1", Inbound: []dataplane.Inbound{{
							Port: uint32(1000 + i%1000), Tags: map[string]string{dataplane.ServiceTag: "svc"}}}}}}
					if _, err := mgr.Apply(ctx, dp, manager.ApplyOptions{}); err != nil {
						b.Fatal(err)
					}
				}
				var latency, snapshots time.Duration
				i := 0
				for b.Loop() {
					i++
					for len(tr.Changed()) > 0 {
						<-tr.Changed()
						tr.TakeUpdates()
					}
					before := tr.Snapshot("m").Generation()
					start := time.Now()
					write(i, 0)
					<-tr.Changed()
					tr.TakeUpdates()
					latency += time.Since(start)
					for j := range 100 {
						write(i, j+1)
						if spacing > 0 {
							time.Sleep(spacing)
						}
					}
					time.Sleep(15 * quiet)
					snapshots += time.Duration(tr.Snapshot("m").Generation() - before - 1)
				}
				b.ReportMetric(float64(latency.Microseconds())/float64(i)/1000, "ms/write")
				b.ReportMetric(float64(snapshots)/float64(i), "snapshots/100-writes")
			})
		}
	}
}
