// Command adsload simulates N data-plane proxies against a real atoll-cp
// data-plane server, for the convergence benchmarks of test/bench (DESIGN
// §12). It runs as its own process, so its CPU and memory are not the
// control plane's.
//
// Each proxy has its own TLS connection and its own ADS stream, presents
// the node id "<mesh>/<name>" with Envoy's node metadata (bootstrap's
// proxy-type key) and a dataplane token as "authorization: Bearer"
// metadata: one mesh-scoped token (-token-file, POST /tokens/dataplane
// without a name) or one per proxy (-tokens-file, lines "<name> <token>").
//
// # Requests
//
//   - SotW (-protocol=sotw) follows Envoy's ADS sequence: CDS and SDS as
//     wildcards; then EDS for the names the EDS clusters give; LDS (wildcard)
//     once the clusters are warm; then RDS for the route configurations the
//     listeners' HTTP connection managers name. Subscriptions follow later
//     responses. Every response is ACKed with its version and nonce after
//     the subscription changes it causes.
//   - Delta (-protocol=delta) subscribes to every type with an explicit
//     wildcard ("*") and ACKs every response by nonce.
//
// Neither reads the resources beyond what that needs: responses are read
// with protowire (see codec.go), never unmarshalled.
//
// # Reconnection
//
// A stream that breaks (or a connection that cannot be made) is retried on
// a new connection after Envoy's backoff: full jitter, uniform in
// [0, min(base·2^(n-1), max)) for the n-th consecutive failure (-backoff-base
// 500ms, -backoff-max 30s by default, Envoy's defaults); a stream that
// delivered the whole configuration resets n. A new stream starts fresh (no
// version_info, no initial_resource_versions), so the control plane sends
// the whole configuration again: the worst case of a reconnect storm.
//
// # Control protocol
//
// The harness drives the generator through standard input, one command per
// line, and reads one JSON object per line from standard output:
//
//	mark                         start a measurement: figures "since the mark" restart
//	wait COUNTER N TIMEOUT       block until COUNTER reaches N (or TIMEOUT, a Go duration)
//	report                       every proxy's figures since the mark (ProxyReport)
//	status                       the counters now
//	nack TYPE N                  proxies 0..N-1 reject every new response of TYPE (0 stops)
//	quit                         disconnect everything and exit (so does end of input)
//
// Counters: attached (streams with a response, now), ready (streams that
// delivered every -require type, now), ready-since (proxies that became
// ready since the mark), changed:TYPE (proxies that accepted a new version
// of TYPE since the mark: a SotW response with a new version_info, a delta
// response with resources), and watched:TYPE:NAME (proxies that saw the
// watched resource change since the mark; -watch lists them, and a
// resource's change is told by a hash of its bytes). Times are Unix
// nanoseconds taken right after the ACK was sent.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	addr, caFile            string
	delta                   bool
	mesh, nameFormat        string
	first, count            int
	tokenFile, tokensFile   string
	types, require          [numTypes]bool
	watch                   []string
	connectConcurrency      int
	backoffBase, backoffMax time.Duration
	verbose                 bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("adsload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var protocol, types, require, watch string
	fs.StringVar(&c.addr, "addr", "", "data-plane server address (host:port); required")
	fs.StringVar(&c.caFile, "ca", "", "PEM CA the server's certificate is verified with (the control plane's dp-server.crt); required")
	fs.StringVar(&protocol, "protocol", "sotw", "ADS flavour: sotw or delta")
	fs.StringVar(&c.mesh, "mesh", "default", "mesh of the dataplanes")
	fs.StringVar(&c.nameFormat, "name-format", "dp-%05d", "dataplane names, a fmt format of the proxy number")
	fs.IntVar(&c.first, "first", 0, "number of the first proxy")
	fs.IntVar(&c.count, "count", 0, "number of proxies; required")
	fs.StringVar(&c.tokenFile, "token-file", "", "one dataplane token for every proxy (a mesh-scoped token)")
	fs.StringVar(&c.tokensFile, "tokens-file", "", "one token per proxy: lines \"<name> <token>\"")
	fs.StringVar(&types, "types", "cds,eds,lds,rds", "types to ask for (cds, eds, lds, rds, sds)")
	fs.StringVar(&require, "require", "", "types a proxy must receive to count as ready; default: -types")
	fs.StringVar(&watch, "watch", "", "comma-separated TYPE:NAME of resources whose changes are timed, e.g. cds:backend")
	fs.IntVar(&c.connectConcurrency, "connect-concurrency", 64, "proxies making their first connection at once (0: no limit)")
	fs.DurationVar(&c.backoffBase, "backoff-base", 500*time.Millisecond, "reconnection backoff base")
	fs.DurationVar(&c.backoffMax, "backoff-max", 30*time.Second, "reconnection backoff cap")
	fs.BoolVar(&c.verbose, "v", false, "log every reconnection")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if c.addr == "" || c.caFile == "" || c.count <= 0 {
		errs = append(errs, errors.New("-addr, -ca and -count are required"))
	}
	if c.tokenFile != "" && c.tokensFile != "" {
		errs = append(errs, errors.New("give -token-file or -tokens-file, not both"))
	}
	switch protocol {
	case "sotw":
	case "delta":
		c.delta = true
	default:
		errs = append(errs, fmt.Errorf("-protocol %q: want sotw or delta", protocol))
	}
	if c.backoffBase <= 0 || c.backoffMax < c.backoffBase {
		errs = append(errs, errors.New("-backoff-base must be positive and at most -backoff-max"))
	}
	var err error
	if c.types, err = typeSet(types); err != nil {
		errs = append(errs, fmt.Errorf("-types: %w", err))
	}
	c.require = c.types
	if require != "" {
		if c.require, err = typeSet(require); err != nil {
			errs = append(errs, fmt.Errorf("-require: %w", err))
		}
	}
	for _, w := range strings.Split(watch, ",") {
		if w = strings.TrimSpace(w); w != "" {
			c.watch = append(c.watch, w)
		}
	}
	return c, errors.Join(errs...)
}

func typeSet(list string) ([numTypes]bool, error) {
	var set [numTypes]bool
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		t, err := parseType(s)
		if err != nil {
			return set, err
		}
		set[t] = true
	}
	return set, nil
}

// generator runs the proxies and answers the control protocol.
type generator struct {
	cfg         config
	stderr      io.Writer
	logMu       sync.Mutex
	dialOptions []grpc.DialOption
	watched     [numTypes]map[string]bool
	proxies     []*proxy

	// markMu orders marks with the proxies' records: records hold it for
	// reading, a mark for writing.
	markMu sync.RWMutex
	epoch  uint64
	counters
	nack [numTypes]atomic.Int64
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "adsload:", err)
		return 2
	}
	g, err := newGenerator(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "adsload:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var slots chan struct{}
	if cfg.connectConcurrency > 0 {
		slots = make(chan struct{}, cfg.connectConcurrency)
	}
	for _, p := range g.proxies {
		wg.Go(func() { p.run(ctx, slots) })
	}
	out := json.NewEncoder(stdout)
	_ = out.Encode(map[string]any{"event": "started", "count": len(g.proxies), "at": time.Now().UnixNano()})
	g.serve(stdin, out)
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(stderr, "adsload: some proxies did not stop within 10s")
	}
	return 0
}

func newGenerator(cfg config, stderr io.Writer) (*generator, error) {
	ca, err := os.ReadFile(cfg.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s holds no PEM certificate", cfg.caFile)
	}
	tokens, err := readTokens(cfg)
	if err != nil {
		return nil, err
	}
	g := &generator{cfg: cfg, stderr: stderr}
	g.watchCount = map[string]*atomic.Int64{}
	for _, w := range cfg.watch {
		ts, name, ok := strings.Cut(w, ":")
		t, err := parseType(ts)
		if !ok || err != nil || name == "" {
			return nil, fmt.Errorf("-watch %q: want TYPE:NAME, e.g. cds:backend", w)
		}
		if g.watched[t] == nil {
			g.watched[t] = map[string]bool{}
		}
		g.watched[t][name] = true
		g.watchCount[w] = &atomic.Int64{}
	}
	g.dialOptions = []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})),
		// Many idle connections: small buffers, a write buffer released
		// between writes.
		grpc.WithReadBufferSize(16 << 10),
		grpc.WithWriteBufferSize(16 << 10),
		grpc.WithSharedWriteBuffer(true),
		grpc.WithUserAgent("adsload"),
		grpc.WithDisableRetry(),
	}
	for i := range cfg.count {
		name := fmt.Sprintf(cfg.nameFormat, cfg.first+i)
		token := tokens[""]
		if t, ok := tokens[name]; ok {
			token = t
		}
		if token == "" && cfg.tokensFile != "" {
			return nil, fmt.Errorf("%s has no token for %s", cfg.tokensFile, name)
		}
		g.proxies = append(g.proxies, &proxy{g: g, index: i, name: name, token: token, node: envoyNode(cfg.mesh, name)})
	}
	return g, nil
}

// readTokens returns the tokens by dataplane name; "" is the shared one.
func readTokens(cfg config) (map[string]string, error) {
	out := map[string]string{}
	switch {
	case cfg.tokenFile != "":
		b, err := os.ReadFile(cfg.tokenFile)
		if err != nil {
			return nil, err
		}
		out[""] = strings.TrimSpace(string(b))
	case cfg.tokensFile != "":
		b, err := os.ReadFile(cfg.tokensFile)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, tok, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
				out[name] = strings.TrimSpace(tok)
			}
		}
	}
	return out, nil
}

// envoyNode is the node an Envoy started by atoll-dp presents.
func envoyNode(mesh, name string) *corev3.Node {
	md, _ := structpb.NewStruct(map[string]any{
		"atoll.io/proxy-type":       "envoy",
		"atoll.io/atoll-dp-version": "adsload",
		"atoll.io/envoy-version":    "1.36.2",
	})
	return &corev3.Node{Id: mesh + "/" + name, Cluster: name, UserAgentName: "envoy", Metadata: md}
}

func (g *generator) logf(format string, args ...any) {
	if !g.cfg.verbose {
		return
	}
	g.logMu.Lock()
	defer g.logMu.Unlock()
	fmt.Fprintf(g.stderr, format+"\n", args...)
}

// nackReason returns the rejection message proxy i gives a response of
// type t, or "" when it accepts it.
func (g *generator) nackReason(i int, t xdsType) string {
	if int64(i) < g.nack[t].Load() {
		return "adsload: rejected on request (nack " + t.String() + ")"
	}
	return ""
}

// serve answers commands until the input ends or says quit.
func (g *generator) serve(stdin io.Reader, out *json.Encoder) {
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var reply any
		switch f[0] {
		case "quit":
			return
		case "mark":
			reply = g.mark()
		case "wait":
			reply = g.wait(f[1:])
		case "report":
			reply = g.report()
		case "status":
			reply = g.status()
		case "nack":
			reply = g.setNACK(f[1:])
		default:
			reply = map[string]any{"event": "error", "error": fmt.Sprintf("unknown command %q", f[0])}
		}
		if err := out.Encode(reply); err != nil {
			return
		}
	}
}

func (g *generator) mark() any {
	g.markMu.Lock()
	defer g.markMu.Unlock()
	g.epoch++
	g.readySince.Store(0)
	for _, c := range g.watchCount {
		c.Store(0)
	}
	for t := range numTypes {
		g.changedCount[t].Store(0)
	}
	return map[string]any{"event": "marked", "epoch": g.epoch, "at": time.Now().UnixNano()}
}

// counter returns the named counter.
func (g *generator) counter(name string) (*atomic.Int64, bool) {
	switch name {
	case "attached":
		return &g.attached, true
	case "ready":
		return &g.ready, true
	case "ready-since":
		return &g.readySince, true
	}
	if w, ok := strings.CutPrefix(name, "watched:"); ok {
		c, ok := g.watchCount[w]
		return c, ok
	}
	if ts, ok := strings.CutPrefix(name, "changed:"); ok {
		if t, err := parseType(ts); err == nil {
			return &g.changedCount[t], true
		}
	}
	return nil, false
}

func (g *generator) wait(args []string) any {
	if len(args) != 3 {
		return map[string]any{"event": "error", "error": "usage: wait COUNTER N TIMEOUT"}
	}
	c, ok := g.counter(args[0])
	n, err1 := strconv.ParseInt(args[1], 10, 64)
	timeout, err2 := time.ParseDuration(args[2])
	if !ok || err1 != nil || err2 != nil {
		return map[string]any{"event": "error", "error": fmt.Sprintf("wait %s: bad counter, count or timeout", strings.Join(args, " "))}
	}
	deadline := time.Now().Add(timeout)
	for c.Load() < n && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	v := c.Load()
	return map[string]any{"event": "wait", "counter": args[0], "ok": v >= n, "value": v, "at": time.Now().UnixNano()}
}

func (g *generator) report() any {
	g.markMu.RLock()
	defer g.markMu.RUnlock()
	out := make([]ProxyReport, len(g.proxies))
	for i, p := range g.proxies {
		out[i] = p.rec.report(p.name, g.epoch)
	}
	return map[string]any{"event": "report", "epoch": g.epoch, "at": time.Now().UnixNano(), "proxies": out}
}

func (g *generator) status() any {
	return map[string]any{
		"event": "status", "count": len(g.proxies), "attached": g.attached.Load(), "ready": g.ready.Load(),
		"readySince": g.readySince.Load(), "at": time.Now().UnixNano(),
	}
}

func (g *generator) setNACK(args []string) any {
	if len(args) != 2 {
		return map[string]any{"event": "error", "error": "usage: nack TYPE N"}
	}
	t, err := parseType(args[0])
	n, err2 := strconv.ParseInt(args[1], 10, 64)
	if err != nil || err2 != nil {
		return map[string]any{"event": "error", "error": fmt.Sprintf("nack %s: bad type or count", strings.Join(args, " "))}
	}
	g.nack[t].Store(n)
	return map[string]any{"event": "nack", "type": t.String(), "count": n}
}
