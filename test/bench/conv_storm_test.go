package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/pkg/store/postgres/pgtest"
	"github.com/atoll-mesh/atoll/test/framework"
)

// BenchmarkReconnectStorm kills atoll-cp with SIGKILL while N proxies are
// connected (1,000 services; transparent shape unless ATOLL_STORM_SHAPES
// says otherwise, see BenchmarkConvergence), starts it again on the
// same ports, and times until every proxy is re-attached and holds its
// whole configuration again (DESIGN §12: 10,000 proxies within 30 s, no
// OOM). The proxies (cmd/adsload) reconnect with Envoy's jittered
// exponential backoff and start fresh streams, so the control plane sends
// every configuration again.
//
// The store is PostgreSQL (a throwaway cluster; the benchmark skips when
// PostgreSQL is not installed): the memory store loses the mesh, its
// dataplanes and the token signing keys with the process, so nothing
// could re-attach. Proxy counts come from ATOLL_STORM_PROXIES (default
// 1000), protocols from ATOLL_CONVERGENCE_PROTOCOLS.
//
//	ATOLL_STORM_PROXIES=5000 go test -run '^$' -bench ReconnectStorm -benchtime=1x -timeout 1h ./test/bench/
func BenchmarkReconnectStorm(b *testing.B) {
	if testing.Short() {
		b.Skip("starts PostgreSQL, a control plane and thousands of proxies; skipped under -short")
	}
	s, err := loadConvSettings()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cluster, err := pgtest.Launch(ctx, pgtest.Options{})
	cancel()
	if err != nil {
		b.Skipf("PostgreSQL is needed for the reconnect storm (%v); %s", err, pgtest.InstallHint)
	}
	defer func() {
		if err := cluster.Close(); err != nil {
			b.Error(err)
		}
	}()
	var bins framework.Binaries
	defer bins.Cleanup()
	cpBin := filepath.Join(bins.Dir(b), "atoll-cp")
	loadBin := buildLoadGenerator(b)
	var results []convResult
	for _, shape := range s.stormShapes {
		for _, protocol := range s.protocols {
			for _, n := range s.stormProxies {
				b.Run(fmt.Sprintf("%s/%s/proxies=%d", shape, protocol, n), func(b *testing.B) {
					var r convResult
					for b.Loop() {
						r = runStorm(b, s, cpBin, loadBin, cluster, convMesh{
							name: "bench", shape: shape, services: min(1000, n), proxies: n, declared: 5, mtls: s.mtls,
						}, protocol)
					}
					results = append(results, r)
					if err := s.emit(r); err != nil {
						b.Error(err)
					}
				})
			}
		}
	}
	printStormTable(os.Stdout, results)
}

// runStorm is one sub-benchmark of BenchmarkReconnectStorm.
func runStorm(b *testing.B, s convSettings, cpBin, loadBin string, cluster *pgtest.Cluster, mesh convMesh, protocol string) convResult {
	db := cluster.NewDatabase(b)
	migrate := exec.Command(cpBin, "migrate", "up")
	migrate.Env = append(harnessEnv(), db.Env()...)
	if out, err := migrate.CombinedOutput(); err != nil {
		b.Fatalf("atoll-cp migrate up: %v\n%s", err, out)
	}
	n := mesh.proxies
	r := startConvRun(b, s, cpBin, loadBin, mesh, protocol, "postgres", db.Env()...)
	r.res.Benchmark = "storm"

	r.load.call("mark", time.Minute)
	r.rss.reset()
	killed := time.Now()
	r.cp.kill()
	r.cp.start()
	profile := r.cp.cpuProfile(s.profilePath(b.Name(), "storm"), 20*time.Second)
	type readiness struct {
		at  time.Time
		err error
	}
	cpReady := make(chan readiness, 1)
	go func() {
		at, err := r.cp.readyWithin(5 * time.Minute)
		cpReady <- readiness{at, err}
	}()
	w := r.load.wait("ready-since", n, s.timeout)
	if !w.OK {
		b.Fatalf("only %d of %d proxies were back with their configuration within %s (adsload log:\n%s)", w.Value, n, s.timeout, r.load.logTail(20))
	}
	after, err := readProc(r.cp.pid())
	must(b, err)
	peak := r.rss.max()
	ready := <-cpReady
	must(b, ready.err)
	profile()
	rep := r.load.call("report", 5*time.Minute)

	st := &stormResult{CPReadySeconds: ready.at.Sub(killed).Seconds(), CPUSeconds: after.cpu.Seconds(), PeakRSS: peak}
	var readyLat []time.Duration
	var lastAttach, lastReady time.Duration
	for _, p := range rep.Proxies {
		if p.ReadyAt == 0 || p.AttachedAt == 0 {
			b.Fatalf("%s is counted as back but has no times", p.Name)
		}
		d := time.Unix(0, p.ReadyAt).Sub(killed)
		readyLat = append(readyLat, d)
		lastReady = max(lastReady, d)
		lastAttach = max(lastAttach, time.Unix(0, p.AttachedAt).Sub(killed))
		st.FailedAttempts += p.Failures
	}
	st.Ready = summarize(readyLat)
	st.AllAttachedSeconds, st.AllReadySeconds = lastAttach.Seconds(), lastReady.Seconds()
	r.res.Storm = st
	b.ReportMetric(st.AllReadySeconds, "all-ready-s")
	b.ReportMetric(st.Ready.P99ms/1000, "ready-p99-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.Logf("storm: /ready %.1fs after SIGKILL; every proxy re-attached %.1fs and had its config %.1fs after it (p50 %.1fs, p99 %.1fs); %d failed attempts; new process %.1f CPU-s, peak RSS %s MiB",
		st.CPReadySeconds, st.AllAttachedSeconds, st.AllReadySeconds, st.Ready.P50ms/1000, st.Ready.P99ms/1000, st.FailedAttempts, st.CPUSeconds, mib(peak))
	return r.res
}
