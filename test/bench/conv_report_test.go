package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// convSettings are the harness's settings, from the environment (a test
// binary has no flags of its own):
//
//	ATOLL_CONVERGENCE_PROXIES    proxy counts, comma-separated (1000)
//	ATOLL_CONVERGENCE_PROTOCOLS  sotw,delta
//	ATOLL_CONVERGENCE_SHAPES     transparent,declared
//	ATOLL_CONVERGENCE_CHANGES    changes timed per scenario (5)
//	ATOLL_CONVERGENCE_MTLS       builtin STRICT mTLS in the mesh (true)
//	ATOLL_CONVERGENCE_TIMEOUT    bound of each wait (10m)
//	ATOLL_STORM_PROXIES          proxy counts of BenchmarkReconnectStorm (1000)
//	ATOLL_STORM_SHAPES           its mesh shapes (transparent)
//	ATOLL_BENCH_JSON             append one JSON object per result to this file ("-": stdout)
//	ATOLL_BENCH_PPROF            save CPU and heap profiles of the control plane here
//	ATOLL_BENCH_CP_ENV           space-separated VAR=value added to the control plane's
//	                             environment only (GOGC=50, GOMEMLIMIT=1GiB)
//	ATOLL_BENCH_GOROUTINES       with ATOLL_BENCH_PPROF, also save goroutine samples taken
//	                             during the first change (they cost the CP CPU): true
type convSettings struct {
	proxies, stormProxies []int
	protocols, shapes     []string
	stormShapes           []string
	changes               int
	mtls                  bool
	timeout               time.Duration
	goroutines            bool
	jsonOut, pprofDir     string
}

func loadConvSettings() (convSettings, error) {
	s := convSettings{changes: 5, mtls: true, timeout: 10 * time.Minute}
	var err error
	if s.proxies, err = intList(envOr("ATOLL_CONVERGENCE_PROXIES", "1000")); err != nil {
		return s, fmt.Errorf("ATOLL_CONVERGENCE_PROXIES: %w", err)
	}
	if s.stormProxies, err = intList(envOr("ATOLL_STORM_PROXIES", "1000")); err != nil {
		return s, fmt.Errorf("ATOLL_STORM_PROXIES: %w", err)
	}
	s.protocols = strings.Split(envOr("ATOLL_CONVERGENCE_PROTOCOLS", "sotw,delta"), ",")
	for _, p := range s.protocols {
		if p != "sotw" && p != "delta" {
			return s, fmt.Errorf("ATOLL_CONVERGENCE_PROTOCOLS: %q is not sotw or delta", p)
		}
	}
	s.shapes = strings.Split(envOr("ATOLL_CONVERGENCE_SHAPES", "transparent,declared"), ",")
	s.stormShapes = strings.Split(envOr("ATOLL_STORM_SHAPES", "transparent"), ",")
	for _, sh := range append(slices.Clone(s.shapes), s.stormShapes...) {
		if sh != "transparent" && sh != "declared" {
			return s, fmt.Errorf("ATOLL_CONVERGENCE_SHAPES, ATOLL_STORM_SHAPES: %q is not transparent or declared", sh)
		}
	}
	if v := os.Getenv("ATOLL_CONVERGENCE_CHANGES"); v != "" {
		if s.changes, err = strconv.Atoi(v); err != nil || s.changes < 1 {
			return s, fmt.Errorf("ATOLL_CONVERGENCE_CHANGES: %q is not a positive number", v)
		}
	}
	if v := os.Getenv("ATOLL_CONVERGENCE_MTLS"); v != "" {
		if s.mtls, err = strconv.ParseBool(v); err != nil {
			return s, fmt.Errorf("ATOLL_CONVERGENCE_MTLS: %w", err)
		}
	}
	if v := os.Getenv("ATOLL_CONVERGENCE_TIMEOUT"); v != "" {
		if s.timeout, err = time.ParseDuration(v); err != nil {
			return s, fmt.Errorf("ATOLL_CONVERGENCE_TIMEOUT: %w", err)
		}
	}
	s.jsonOut, s.pprofDir = os.Getenv("ATOLL_BENCH_JSON"), os.Getenv("ATOLL_BENCH_PPROF")
	s.goroutines = os.Getenv("ATOLL_BENCH_GOROUTINES") == "true"
	if s.pprofDir != "" {
		if err := os.MkdirAll(s.pprofDir, 0o755); err != nil {
			return s, err
		}
	}
	return s, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a list of positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// profilePath returns where to save a profile, or "" when profiles are off.
func (s convSettings) profilePath(bench, phase string) string {
	if s.pprofDir == "" {
		return ""
	}
	name := strings.NewReplacer("/", "-", "=", "").Replace(bench)
	return fmt.Sprintf("%s/%s-%s.pprof", s.pprofDir, name, phase)
}

// machine describes where a result was measured.
type machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpuModel"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	Date   string `json:"date"`
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.Model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// latencies summarises change→ACK times.
type latencies struct {
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50Ms"`
	P99ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
}

func summarize(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	return latencies{Samples: len(ds), P50ms: ms(percentile(ds, 0.50)), P99ms: ms(percentile(ds, 0.99)), MaxMs: ms(slices.Max(ds))}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// changeResult is one scenario of changes.
type changeResult struct {
	// Changes timed, and the proxies each one affects.
	Changes  int `json:"changes"`
	Affected int `json:"affectedProxies"`
	// Latency: change applied (PUT sent) → ACK sent by an affected proxy,
	// over every affected proxy of every change.
	Latency latencies `json:"latency"`
	// Converged: change → the last affected proxy's ACK, per change.
	Converged latencies `json:"converged"`
	// UnaffectedUpdated counts proxies outside the affected set that
	// received anything (over all changes); it must be 0.
	UnaffectedUpdated int `json:"unaffectedUpdated"`
	// Responses per affected proxy and change, by type, and their bytes.
	Responses map[string]float64 `json:"responsesPerProxy"`
	Bytes     float64            `json:"bytesPerProxy"`
	// CPU the control plane used per change (PUT to 1 s after the last
	// ACK), and the load generator in the same time.
	CPUSeconds     float64 `json:"cpuSecondsPerChange"`
	LoadCPUSeconds float64 `json:"loadGeneratorCPUSecondsPerChange"`
	// PeakRSS during the changes.
	PeakRSS uint64 `json:"peakRSSBytes"`
}

// convResult is one run of BenchmarkConvergence or BenchmarkReconnectStorm.
type convResult struct {
	Benchmark string  `json:"benchmark"`
	Shape     string  `json:"shape"`
	Protocol  string  `json:"protocol"`
	Store     string  `json:"store"`
	Proxies   int     `json:"proxies"`
	Services  int     `json:"services"`
	MTLS      bool    `json:"mtls"`
	Machine   machine `json:"machine"`

	// Connect: the load generator starts → every proxy has its config.
	ConnectSeconds    float64 `json:"connectSeconds"`
	ConnectCPUSeconds float64 `json:"connectCPUSeconds"`
	// RSS before the proxies connect, at steady state, and the peak.
	BaselineRSS uint64 `json:"baselineRSSBytes"`
	SteadyRSS   uint64 `json:"steadyRSSBytes"`
	PeakRSS     uint64 `json:"peakRSSBytes"`
	// Per connected proxy: RSS and live heap growth over the baseline.
	RSSPerProxy  float64 `json:"rssBytesPerProxy"`
	HeapPerProxy float64 `json:"liveHeapBytesPerProxy"`
	// IdleCPU is the CPU used per second at steady state, in cores.
	IdleCPU float64 `json:"idleCPUCores"`
	// LoadRSS and LoadConnectCPUSeconds are the load generator's RSS at
	// steady state and CPU while the proxies connected: the share of the
	// machine it took.
	LoadRSS               uint64  `json:"loadGeneratorRSSBytes"`
	LoadConnectCPUSeconds float64 `json:"loadGeneratorConnectCPUSeconds"`

	OneService *changeResult `json:"oneService,omitempty"`
	MeshWide   *changeResult `json:"meshWide,omitempty"`
	Storm      *stormResult  `json:"storm,omitempty"`
}

// stormResult is a reconnect storm: SIGKILL, restart, every proxy back.
type stormResult struct {
	// CPReadySeconds: kill → the new process answers /ready.
	CPReadySeconds float64 `json:"cpReadySeconds"`
	// AllAttachedSeconds and AllReadySeconds: kill → the last proxy's
	// first response, and its whole configuration.
	AllAttachedSeconds float64 `json:"allAttachedSeconds"`
	AllReadySeconds    float64 `json:"allReadySeconds"`
	// Ready: kill → each proxy has its whole configuration again.
	Ready latencies `json:"ready"`
	// Attempts that failed (refused or broken) before proxies got back.
	FailedAttempts int `json:"failedAttempts"`
	// CPU of the new process until every proxy was ready, and its peak RSS.
	CPUSeconds float64 `json:"cpuSeconds"`
	PeakRSS    uint64  `json:"peakRSSBytes"`
}

// emit appends r to the JSON output, if any.
func (s convSettings) emit(r convResult) error {
	if s.jsonOut == "" {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if s.jsonOut == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	f, err := os.OpenFile(s.jsonOut, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}

func mib(b uint64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

// printConvergenceTable prints the convergence results.
func printConvergenceTable(w io.Writer, rs []convResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nConvergence (%s, %d CPUs, %s, %s)\n", rs[0].Machine.Model, rs[0].Machine.CPUs, rs[0].Machine.Go, rs[0].Machine.Date[:10])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\tprotocol\tproxies\tconnect s\t1-svc affected\t1-svc p50 ms\t1-svc p99 ms\t1-svc max ms\tunaffected upd\tmesh p50 ms\tmesh p99 ms\tmesh max ms\tCPU s/mesh chg\tRSS MiB\tpeak MiB\tRSS KiB/proxy\theap KiB/proxy\t")
	for _, r := range rs {
		one, mesh := r.OneService, r.MeshWide
		if one == nil {
			one = &changeResult{}
		}
		if mesh == nil {
			mesh = &changeResult{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%d\t%.0f\t%.0f\t%.0f\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%s\t%s\t%.0f\t%.0f\t\n",
			r.Shape, r.Protocol, r.Proxies, r.ConnectSeconds,
			one.Affected, one.Latency.P50ms, one.Latency.P99ms, one.Latency.MaxMs, one.UnaffectedUpdated,
			mesh.Latency.P50ms, mesh.Latency.P99ms, mesh.Latency.MaxMs, mesh.CPUSeconds,
			mib(r.SteadyRSS), mib(max(r.PeakRSS, one.PeakRSS, mesh.PeakRSS)), r.RSSPerProxy/1024, r.HeapPerProxy/1024)
	}
	_ = tw.Flush()
}

// printStormTable prints the reconnect storm results.
func printStormTable(w io.Writer, rs []convResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nReconnect storm after SIGKILL (%s, %d CPUs, %s, %s)\n", rs[0].Machine.Model, rs[0].Machine.CPUs, rs[0].Machine.Go, rs[0].Machine.Date[:10])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shape\tprotocol\tstore\tproxies\tCP ready s\tall attached s\tall ready s\tready p50 s\tready p99 s\tfailed attempts\tCPU s\tpeak RSS MiB\t")
	for _, r := range rs {
		s := r.Storm
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%s\t\n",
			r.Shape, r.Protocol, r.Store, r.Proxies, s.CPReadySeconds, s.AllAttachedSeconds, s.AllReadySeconds,
			s.Ready.P50ms/1000, s.Ready.P99ms/1000, s.FailedAttempts, s.CPUSeconds, mib(s.PeakRSS))
	}
	_ = tw.Flush()
}
