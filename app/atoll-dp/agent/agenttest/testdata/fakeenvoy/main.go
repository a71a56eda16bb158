// Command fakeenvoy stands in for Envoy in atoll-dp's tests. It accepts the
// flags atoll-dp passes (and refuses others, as Envoy does), reads the admin
// address from the bootstrap given with -c, and serves the admin endpoints
// atoll-dp uses: GET /ready (LIVE, or DRAINING after a drain) and POST
// /drain_listeners. It appends what happens to the file named by
// FAKE_ENVOY_EVENTS, one "<unix nanoseconds> <event> [detail]" line each:
// start, crash, drain, sigterm, exit.
//
// Behaviour switches (environment):
//
//	FAKE_ENVOY_EVENTS           the events file (required to run)
//	FAKE_ENVOY_CRASH_STARTS=N   exit 1 right after start while fewer than N starts are recorded
//	FAKE_ENVOY_READY_DELAY=D    answer /ready 503 PRE_INITIALIZING for D after start
//	FAKE_ENVOY_IGNORE_SIGTERM=1 ignore SIGTERM (to test killing)
//
// POST /crash (not an Envoy endpoint) makes it exit with status 2 at once.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println()
		fmt.Println("fakeenvoy  version: 0123abcd/1.99.0-fake/Clean/RELEASE/BoringSSL")
		return
	}
	fs := flag.NewFlagSet("fakeenvoy", flag.ContinueOnError)
	config := fs.String("c", "", "bootstrap file")
	drainTime := fs.Int("drain-time-s", 600, "drain time")
	fs.String("drain-strategy", "gradual", "drain strategy")
	logLevel := fs.String("log-level", "info", "log level")
	fs.Bool("disable-hot-restart", false, "disable hot restart")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(1)
	}
	events := os.Getenv("FAKE_ENVOY_EVENTS")
	if events == "" || *config == "" {
		fmt.Fprintln(os.Stderr, "fakeenvoy: FAKE_ENVOY_EVENTS and -c are required")
		os.Exit(1)
	}
	record := func(event string, detail ...string) {
		f, err := os.OpenFile(events, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakeenvoy:", err)
			os.Exit(1)
		}
		fmt.Fprintln(f, strings.Join(append([]string{strconv.FormatInt(time.Now().UnixNano(), 10), event}, detail...), " "))
		f.Close()
	}
	starts := countStarts(events)
	record("start", strconv.Itoa(os.Getpid()))
	if n, _ := strconv.Atoi(os.Getenv("FAKE_ENVOY_CRASH_STARTS")); starts < n {
		record("crash")
		fmt.Fprintln(os.Stderr, "[fakeenvoy] crashing on purpose")
		os.Exit(1)
	}

	port, err := adminPort(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeenvoy:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeenvoy:", err)
		os.Exit(1)
	}
	fmt.Printf("[fakeenvoy] started pid=%d admin=%s drain-time-s=%d\n", os.Getpid(), ln.Addr(), *drainTime)
	fmt.Fprintf(os.Stderr, "[fakeenvoy] log-level=%s\n", *logLevel)

	readyDelay, _ := time.ParseDuration(os.Getenv("FAKE_ENVOY_READY_DELAY"))
	started := time.Now()
	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case draining.Load():
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "DRAINING")
		case time.Since(started) < readyDelay:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "PRE_INITIALIZING")
		default:
			fmt.Fprintln(w, "LIVE")
		}
	})
	mux.HandleFunc("POST /drain_listeners", func(w http.ResponseWriter, r *http.Request) {
		draining.Store(true)
		record("drain", r.URL.RawQuery)
		fmt.Fprintln(w, "OK")
	})
	mux.HandleFunc("POST /crash", func(http.ResponseWriter, *http.Request) {
		record("crash")
		os.Exit(2)
	})
	go func() { _ = http.Serve(ln, mux) }()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		record("signal", sig.String())
		if os.Getenv("FAKE_ENVOY_IGNORE_SIGTERM") == "1" {
			continue
		}
		record("exit")
		os.Exit(0)
	}
}

// countStarts counts the start events already recorded.
func countStarts(events string) int {
	f, err := os.Open(events)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 1 && fields[1] == "start" {
			n++
		}
	}
	return n
}

// adminPort reads admin.address.socket_address.port_value of a JSON bootstrap.
func adminPort(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Admin struct {
			Address struct {
				SocketAddress struct {
					PortValue int `json:"port_value"`
				} `json:"socket_address"`
			} `json:"address"`
		} `json:"admin"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return 0, fmt.Errorf("bootstrap %s: %w", file, err)
	}
	if doc.Admin.Address.SocketAddress.PortValue == 0 {
		return 0, fmt.Errorf("bootstrap %s has no admin port", file)
	}
	return doc.Admin.Address.SocketAddress.PortValue, nil
}
