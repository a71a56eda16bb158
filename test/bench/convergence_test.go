package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/atoll-mesh/atoll/test/framework"
)

// BenchmarkConvergence is the end-to-end convergence harness of DESIGN §12:
// a real atoll-cp process (memory store), a mesh of 1,000 services created
// through the REST API, and N simulated proxies in a second process
// (cmd/adsload), each with its own TLS connection and ADS stream. Once
// every proxy holds its configuration it times, from the REST call that
// applies a change to the ACK of each affected proxy:
//
//   - one-service: a MeshTimeout whose to[] targets one MeshService
//     (svc-0500) changes that service's cluster; only the proxies that call
//     it may receive anything (checked).
//   - mesh-wide: a MeshTimeout whose to[] targets the Mesh changes every
//     cluster of every proxy.
//
// It also records the control plane's CPU and RSS (from /proc) while the
// proxies connect, at steady state and during the changes, and checks that
// a proxy rejecting a configuration (NACK) is not sent it again.
//
// Shapes: "transparent" (every proxy reaches all 1,000 services) and
// "declared" (5 declared outbounds per proxy). Settings come from the
// environment (see convSettings); run it alone with -benchtime=1x:
//
//	ATOLL_CONVERGENCE_PROXIES=1000,5000 go test -run '^$' -bench Convergence -benchtime=1x -timeout 2h ./test/bench/
func BenchmarkConvergence(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a control plane and thousands of proxies; skipped under -short")
	}
	s, err := loadConvSettings()
	if err != nil {
		b.Fatal(err)
	}
	var bins framework.Binaries
	defer bins.Cleanup()
	cpBin := filepath.Join(bins.Dir(b), "atoll-cp")
	loadBin := buildLoadGenerator(b)
	var results []convResult
	for _, shape := range s.shapes {
		for _, protocol := range s.protocols {
			for _, n := range s.proxies {
				b.Run(fmt.Sprintf("%s/%s/proxies=%d", shape, protocol, n), func(b *testing.B) {
					var r convResult
					for b.Loop() {
						r = runConvergence(b, s, cpBin, loadBin, convMesh{
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
	printConvergenceTable(os.Stdout, results)
}

// convRun is a control plane with a populated mesh and N connected proxies.
type convRun struct {
	b        *testing.B
	s        convSettings
	mesh     convMesh
	cp       *cpProcess
	load     *loadGenerator
	rss      *rssSampler
	res      convResult
	target   int // the service the one-service change targets
	baseline procStats
	heap0    uint64
}

// startConvRun starts atoll-cp with extraEnv, populates the mesh, connects
// the proxies and measures the steady state.
func startConvRun(b *testing.B, s convSettings, cpBin, loadBin string, mesh convMesh, protocol, store string, extraEnv ...string) *convRun {
	r := &convRun{b: b, s: s, mesh: mesh, target: mesh.services / 2}
	r.res = convResult{
		Benchmark: "convergence", Shape: mesh.shape, Protocol: protocol, Store: store, Proxies: mesh.proxies, Services: mesh.services,
		MTLS: mesh.mtls, Machine: thisMachine(),
	}
	r.cp = newCPProcess(b, cpBin, extraEnv...)
	r.cp.start()
	r.cp.waitReady(2 * time.Minute)
	r.rss = newRSSSampler(r.cp)

	setup := time.Now()
	token := mesh.populate(b, r.cp)
	tokenFile := filepath.Join(b.TempDir(), "token")
	must(b, os.WriteFile(tokenFile, []byte(token), 0o600))
	b.Logf("created the mesh, %d services and %d dataplanes through the API in %s", mesh.services, mesh.proxies, time.Since(setup).Round(time.Millisecond))
	time.Sleep(time.Second) // the snapshot of the mesh catches up
	var err error
	r.heap0, err = r.cp.liveHeap("")
	must(b, err)
	r.baseline, err = readProc(r.cp.pid())
	must(b, err)
	r.res.BaselineRSS = r.baseline.rss

	types := "cds,eds,lds,rds"
	if mesh.mtls {
		types += ",sds"
	}
	r.rss.reset()
	start := time.Now()
	profile := r.cp.cpuProfile(s.profilePath(b.Name(), "connect"), 20*time.Second)
	r.load = startLoadGenerator(b, loadBin,
		"-addr", r.cp.dpAddr, "-ca", filepath.Join(r.cp.workDir, "dp-server.crt"), "-protocol", protocol,
		"-mesh", mesh.name, "-count", fmt.Sprint(mesh.proxies), "-token-file", tokenFile, "-types", types,
		"-watch", "cds:"+svcName(r.target))
	w := r.load.wait("ready", mesh.proxies, s.timeout)
	if !w.OK {
		b.Fatalf("only %d of %d proxies got their configuration within %s (adsload log:\n%s)", w.Value, mesh.proxies, s.timeout, r.load.logTail(20))
	}
	connected, err := readProc(r.cp.pid())
	must(b, err)
	if ls, err := readProc(r.load.pid); err == nil {
		r.res.LoadConnectCPUSeconds = ls.cpu.Seconds()
	}
	r.res.ConnectSeconds = time.Unix(0, w.At).Sub(start).Seconds()
	r.res.ConnectCPUSeconds = (connected.cpu - r.baseline.cpu).Seconds()
	r.res.PeakRSS = r.rss.max()
	profile()

	// Steady state: let the connection work (insight writes) settle, then
	// measure idle CPU over 5 s, RSS and live heap.
	time.Sleep(3 * time.Second)
	idle0, err := readProc(r.cp.pid())
	must(b, err)
	time.Sleep(5 * time.Second)
	idle1, err := readProc(r.cp.pid())
	must(b, err)
	r.res.IdleCPU = (idle1.cpu - idle0.cpu).Seconds() / 5
	r.res.SteadyRSS = idle1.rss
	if ls, err := readProc(r.load.pid); err == nil {
		r.res.LoadRSS = ls.rss
	}
	heap, err := r.cp.liveHeap(s.profilePath(b.Name(), "heap"))
	must(b, err)
	n := float64(mesh.proxies)
	r.res.RSSPerProxy = (float64(idle1.rss) - float64(r.baseline.rss)) / n
	r.res.HeapPerProxy = (float64(heap) - float64(r.heap0)) / n
	b.Logf("%d proxies connected with their configuration in %.1fs (%.1f CPU-s); steady RSS %s MiB (%.0f KiB/proxy), live heap %.0f KiB/proxy, idle CPU %.2f cores; load generator: %.1f CPU-s to connect, RSS %s MiB",
		mesh.proxies, r.res.ConnectSeconds, r.res.ConnectCPUSeconds, mib(idle1.rss), r.res.RSSPerProxy/1024, r.res.HeapPerProxy/1024, r.res.IdleCPU,
		r.res.LoadConnectCPUSeconds, mib(r.res.LoadRSS))
	return r
}

// runConvergence is one sub-benchmark of BenchmarkConvergence.
func runConvergence(b *testing.B, s convSettings, cpBin, loadBin string, mesh convMesh, protocol string) convResult {
	r := startConvRun(b, s, cpBin, loadBin, mesh, protocol, "memory")
	target := svcName(r.target)

	affected := make([]bool, mesh.proxies)
	for i := range affected {
		affected[i] = mesh.calls(i, r.target)
	}
	r.res.OneService = r.measureChanges("one-service", affected, "watched:cds:"+target,
		func(p proxyReport) int64 { return p.Watched["cds:"+target] },
		func(i int) error {
			return r.cp.put("/meshes/bench/meshtimeouts/bench-one-service", mesh.timeoutJSON("bench-one-service",
				fmt.Sprintf(`{"kind":"MeshService","name":%q}`, target), fmt.Sprintf(`{"connectionTimeout":"%dms"}`, 3000+i)))
		})
	all := make([]bool, mesh.proxies)
	for i := range all {
		all[i] = true
	}
	meshWide := func(i int) error {
		return r.cp.put("/meshes/bench/meshtimeouts/bench-mesh-wide", mesh.timeoutJSON("bench-mesh-wide", `{"kind":"Mesh"}`, fmt.Sprintf(`{"connectionTimeout":"%dms"}`, 2000+i)))
	}
	r.res.MeshWide = r.measureChanges("mesh-wide", all, "changed:cds",
		func(p proxyReport) int64 { return p.Types["cds"].First }, meshWide)
	r.checkNACK(meshWide)

	one, wide := r.res.OneService, r.res.MeshWide
	b.ReportMetric(r.res.ConnectSeconds, "connect-s")
	b.ReportMetric(one.Latency.P50ms, "one-p50-ms")
	b.ReportMetric(one.Latency.P99ms, "one-p99-ms")
	b.ReportMetric(wide.Latency.P50ms, "mesh-p50-ms")
	b.ReportMetric(wide.Latency.P99ms, "mesh-p99-ms")
	b.ReportMetric(r.res.RSSPerProxy/1024, "RSS-KiB/proxy")
	return r.res
}

// measureChanges applies s.changes changes with apply and times, for each,
// the ACK of every affected proxy (arrival reads it from a report), and
// checks that no other proxy received anything.
func (r *convRun) measureChanges(name string, affected []bool, counter string, arrival func(proxyReport) int64, apply func(i int) error) *changeResult {
	b := r.b
	want := 0
	for _, a := range affected {
		if a {
			want++
		}
	}
	res := &changeResult{Changes: r.s.changes, Affected: want, Responses: map[string]float64{}}
	var lats, converged []time.Duration
	var cpu, loadCPU time.Duration
	var bytes float64
	r.rss.reset()
	for i := 1; i <= r.s.changes; i++ {
		r.load.call("mark", time.Minute)
		before, err := readProc(r.cp.pid())
		must(b, err)
		loadBefore, err := readProc(r.load.pid)
		must(b, err)
		var profile func()
		if i == 1 {
			profile = r.cp.cpuProfile(r.s.profilePath(b.Name(), name), 10*time.Second)
		}
		start := time.Now()
		must(b, apply(i))
		if i == 1 && r.s.goroutines {
			// Sampling every goroutine's stack costs the control plane
			// CPU (40 % of a one-service change at 5,000 proxies), so it
			// is asked for apart from the CPU profile.
			r.cp.goroutines(r.s.profilePath(b.Name(), name+"-goroutines"), 10, 250*time.Millisecond)
		}
		w := r.load.wait(counter, want, r.s.timeout)
		if !w.OK {
			b.Fatalf("%s change %d: only %d of %d affected proxies got it within %s", name, i, w.Value, want, r.s.timeout)
		}
		time.Sleep(time.Second) // anything else that arrives now is a stray update
		rep := r.load.call("report", 5*time.Minute)
		after, err := readProc(r.cp.pid())
		must(b, err)
		cpu += after.cpu - before.cpu
		if loadAfter, err := readProc(r.load.pid); err == nil {
			loadCPU += loadAfter.cpu - loadBefore.cpu
		}
		if profile != nil {
			profile()
		}
		var last time.Duration
		for k, p := range rep.Proxies {
			if !affected[k] {
				if p.responses() > 0 {
					res.UnaffectedUpdated++
					if res.UnaffectedUpdated <= 3 {
						b.Logf("%s change %d: %s does not call the changed service but received %v", name, i, p.Name, p.Types)
					}
				}
				continue
			}
			at := arrival(p)
			if at == 0 {
				b.Fatalf("%s change %d: %s was counted but has no arrival time", name, i, p.Name)
			}
			d := time.Unix(0, at).Sub(start)
			lats = append(lats, d)
			last = max(last, d)
			for t, tr := range p.Types {
				res.Responses[t] += float64(tr.Responses)
				bytes += float64(tr.Bytes)
			}
		}
		converged = append(converged, last)
	}
	samples := float64(want * r.s.changes)
	for t := range res.Responses {
		res.Responses[t] /= samples
	}
	res.Bytes = bytes / samples
	res.Latency, res.Converged = summarize(lats), summarize(converged)
	res.CPUSeconds = cpu.Seconds() / float64(r.s.changes)
	res.LoadCPUSeconds = loadCPU.Seconds() / float64(r.s.changes)
	res.PeakRSS = r.rss.max()
	b.Logf("%s: %d changes × %d affected proxies: change→ACK p50 %.0f ms, p99 %.0f ms, max %.0f ms; last ACK p50 %.0f ms; %v responses/proxy (%.0f B); %.2f CPU-s per change (load generator %.2f); %d unaffected proxies updated",
		name, r.s.changes, want, res.Latency.P50ms, res.Latency.P99ms, res.Latency.MaxMs, res.Converged.P50ms, res.Responses, res.Bytes, res.CPUSeconds, res.LoadCPUSeconds, res.UnaffectedUpdated)
	return res
}

// checkNACK has the first proxies reject the next mesh-wide change and
// checks that each was sent the rejected configuration once, not again
// and again, while the others accepted it.
func (r *convRun) checkNACK(apply func(i int) error) {
	b := r.b
	rejecting := min(10, r.mesh.proxies-1)
	r.load.call(fmt.Sprintf("nack cds %d", rejecting), time.Minute)
	defer r.load.call("nack cds 0", time.Minute)
	r.load.call("mark", time.Minute)
	must(b, apply(1000))
	if w := r.load.wait("changed:cds", r.mesh.proxies-rejecting, r.s.timeout); !w.OK {
		b.Fatalf("NACK check: only %d of %d accepting proxies got the change", w.Value, r.mesh.proxies-rejecting)
	}
	time.Sleep(2 * time.Second)
	rep := r.load.call("report", 5*time.Minute)
	for k, p := range rep.Proxies[:rejecting] {
		if p.NACKs != 1 {
			b.Errorf("NACK check: proxy %d rejected %d responses of one change; want exactly 1 (no re-send storm)", k, p.NACKs)
		}
	}
}
