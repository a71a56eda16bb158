package agenttest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeEnvoyPackage is the stand-in Envoy's import path.
const fakeEnvoyPackage = "github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest/testdata/fakeenvoy"

// BuildFakeEnvoy compiles the stand-in Envoy (see testdata/fakeenvoy) as an
// executable named "envoy" in a temporary directory and returns its path.
func BuildFakeEnvoy(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "envoy")
	out, err := exec.Command(goTool, "build", "-o", bin, fakeEnvoyPackage).CombinedOutput()
	if err != nil {
		t.Fatalf("building the stand-in Envoy: %v\n%s", err, out)
	}
	return bin
}

// Event is one line of the stand-in Envoy's events file.
type Event struct {
	// At is when it happened.
	At time.Time
	// Name is start, crash, drain, signal or exit.
	Name string
	// Detail is the rest of the line: a pid, a query, a signal name.
	Detail string
}

// ReadEvents returns the events recorded in file so far (none when it does
// not exist yet).
func ReadEvents(t testing.TB, file string) []Event {
	t.Helper()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), " ", 3)
		if len(fields) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			t.Fatalf("events file %s: %q", file, sc.Text())
		}
		e := Event{At: time.Unix(0, ns), Name: fields[1]}
		if len(fields) == 3 {
			e.Detail = fields[2]
		}
		events = append(events, e)
	}
	return events
}

// Named returns the events called name.
func Named(events []Event, name string) []Event {
	var out []Event
	for _, e := range events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FakeEnvoyScript writes an executable shell script named "envoy" that runs
// the stand-in Envoy bin with the FAKE_ENVOY_* variables of env (names
// without the prefix: "EVENTS", "CRASH_STARTS", …), so that tests running
// in parallel configure their own stand-ins. It returns the script's path.
func FakeEnvoyScript(t testing.TB, bin string, env map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for k, v := range env {
		b.WriteString("FAKE_ENVOY_" + k + "=" + strconv.Quote(v) + "\nexport FAKE_ENVOY_" + k + "\n")
	}
	b.WriteString("exec " + strconv.Quote(bin) + " \"$@\"\n")
	script := filepath.Join(t.TempDir(), "envoy")
	if err := os.WriteFile(script, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}
