package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// convMesh is the mesh the convergence harness creates through the REST
// API: proxies dataplanes spread over services services (dataplane i
// serves svc-(i mod services)), each one endpoint, alternately http, tcp
// and grpc, in a mesh with builtin STRICT mTLS (unless mtls is false).
//
//   - transparent: every dataplane has transparent proxying, so every proxy
//     reaches every service (one outbound filter chain, cluster and load
//     assignment per service).
//   - declared: every dataplane declares outbounds to the declared services
//     after its own, so a service is called by declared·proxies/services
//     proxies.
//
// Eleven MeshTimeouts are there from the start, as in a used mesh: a
// mesh-wide one and ten that each configure one service.
type convMesh struct {
	name     string // mesh name
	shape    string // "transparent" or "declared"
	services int
	proxies  int
	declared int
	mtls     bool
}

// dataplaneName names dataplane i (adsload's default -name-format).
func dataplaneName(i int) string { return fmt.Sprintf("dp-%05d", i) }

// serviceOf returns the service dataplane i serves.
func (m convMesh) serviceOf(i int) int { return i % m.services }

// dataplaneJSON is dataplane i as universal JSON.
func (m convMesh) dataplaneJSON(i int) []byte {
	protocols := []string{"http", "tcp", "grpc"}
	svc := m.serviceOf(i)
	var extra string
	if m.shape == "transparent" {
		extra = `,"transparentProxying":{"redirectPortInbound":15006,"redirectPortOutbound":15001}`
	} else {
		var outs []string
		for k := range m.declared {
			outs = append(outs, fmt.Sprintf(`{"port":%d,"tags":{"kuma.io/service":%q}}`, 10001+k, svcName((svc+1+k)%m.services)))
		}
		extra = `,"outbound":[` + strings.Join(outs, ",") + `]`
	}
	return fmt.Appendf(nil, `{"type":"Dataplane","mesh":%q,"name":%q,"networking":{"address":"10.%d.%d.%d","inbound":[{"port":8080,"tags":{"kuma.io/service":%q,"kuma.io/protocol":%q}}]%s}}`,
		m.name, dataplaneName(i), i/62500, (i/250)%250, i%250+1, svcName(svc), protocols[svc%3], extra)
}

// calls reports whether dataplane i has an outbound to service svc.
func (m convMesh) calls(i, svc int) bool {
	if m.shape == "transparent" {
		return true
	}
	own := m.serviceOf(i)
	for k := range m.declared {
		if (own+1+k)%m.services == svc {
			return true
		}
	}
	return false
}

// timeoutJSON is a MeshTimeout whose one to[] entry targets to (a
// targetRef as JSON) with conf (a Conf as JSON).
func (m convMesh) timeoutJSON(name, to, conf string) []byte {
	return fmt.Appendf(nil, `{"type":"MeshTimeout","mesh":%q,"name":%q,"spec":{"to":[{"targetRef":%s,"default":%s}]}}`, m.name, name, to, conf)
}

// populate creates the mesh, its policies and its dataplanes through the
// API (8 writers) and returns a mesh-scoped dataplane token.
func (m convMesh) populate(tb testing.TB, cp *cpProcess) string {
	tb.Helper()
	meshJSON := fmt.Sprintf(`{"type":"Mesh","name":%q}`, m.name)
	if m.mtls {
		meshJSON = fmt.Sprintf(`{"type":"Mesh","name":%q,"mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","mode":"STRICT"}]}}`, m.name)
	}
	must(tb, cp.put("/meshes/"+m.name, []byte(meshJSON)))
	must(tb, cp.put("/meshes/"+m.name+"/meshtimeouts/mesh-defaults", m.timeoutJSON("mesh-defaults", `{"kind":"Mesh"}`, `{"idleTimeout":"20m"}`)))
	for i := range 10 {
		svc := svcName(i * 7 % m.services)
		must(tb, cp.put(fmt.Sprintf("/meshes/%s/meshtimeouts/to-%s", m.name, svc),
			m.timeoutJSON("to-"+svc, fmt.Sprintf(`{"kind":"MeshService","name":%q}`, svc), `{"http":{"requestTimeout":"5s"}}`)))
	}
	next := make(chan int)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if err := cp.put(fmt.Sprintf("/meshes/%s/dataplanes/%s", m.name, dataplaneName(i)), m.dataplaneJSON(i)); err != nil {
					errs <- err
					for range next {
					}
					return
				}
			}
		})
	}
	for i := range m.proxies {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	code, body, err := cp.do(http.MethodPost, "/tokens/dataplane", fmt.Appendf(nil, `{"mesh":%q}`, m.name))
	if err != nil || code != http.StatusOK {
		tb.Fatalf("POST /tokens/dataplane: %d %v %s", code, err, body)
	}
	return strings.TrimSpace(string(body))
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// buildLoadGenerator builds cmd/adsload into a temporary directory.
func buildLoadGenerator(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "./cmd/adsload").CombinedOutput()
	if err != nil {
		tb.Fatalf("building adsload: %v\n%s", err, out)
	}
	return filepath.Join(dir, "adsload")
}

// loadGenerator is a running adsload process driven through its control
// protocol (see the command's documentation).
type loadGenerator struct {
	tb      testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	dec     *json.Decoder
	logPath string
	pid     int
}

// loadReply is one answer of adsload.
type loadReply struct {
	Event   string        `json:"event"`
	Error   string        `json:"error"`
	OK      bool          `json:"ok"`
	Value   int64         `json:"value"`
	At      int64         `json:"at"`
	Epoch   uint64        `json:"epoch"`
	Proxies []proxyReport `json:"proxies"`
}

// proxyReport mirrors adsload's ProxyReport.
type proxyReport struct {
	Name        string                `json:"name"`
	Ready       bool                  `json:"ready"`
	ReadyAt     int64                 `json:"readyAt"`
	AttachedAt  int64                 `json:"attachedAt"`
	Disconnects int                   `json:"disconnects"`
	Failures    int                   `json:"failures"`
	NACKs       int                   `json:"nacks"`
	Types       map[string]typeReport `json:"types"`
	Watched     map[string]int64      `json:"watched"`
}

// typeReport mirrors adsload's TypeReport.
type typeReport struct {
	Responses int   `json:"n"`
	Changed   int   `json:"changed"`
	First     int64 `json:"first"`
	Last      int64 `json:"last"`
	Bytes     int64 `json:"bytes"`
	Resources int64 `json:"resources"`
}

// responses counts every response the proxy accepted.
func (r proxyReport) responses() int {
	n := 0
	for _, t := range r.Types {
		n += t.Responses
	}
	return n
}

// startLoadGenerator runs adsload with args and waits for it to start.
func startLoadGenerator(tb testing.TB, bin string, args ...string) *loadGenerator {
	tb.Helper()
	l := &loadGenerator{tb: tb, logPath: filepath.Join(tb.TempDir(), "adsload.log")}
	logFile, err := os.Create(l.logPath)
	must(tb, err)
	l.cmd = exec.Command(bin, args...)
	l.cmd.Stderr = logFile
	l.stdin, err = l.cmd.StdinPipe()
	must(tb, err)
	stdout, err := l.cmd.StdoutPipe()
	must(tb, err)
	must(tb, l.cmd.Start())
	l.pid = l.cmd.Process.Pid
	l.dec = json.NewDecoder(stdout)
	tb.Cleanup(func() {
		l.quit()
		_ = logFile.Close()
	})
	var started loadReply
	must(tb, l.dec.Decode(&started))
	return l
}

// call sends one command and decodes its answer, failing after timeout.
func (l *loadGenerator) call(command string, timeout time.Duration) loadReply {
	l.tb.Helper()
	if _, err := io.WriteString(l.stdin, command+"\n"); err != nil {
		l.tb.Fatalf("adsload %q: %v", command, err)
	}
	type result struct {
		r   loadReply
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r loadReply
		err := l.dec.Decode(&r)
		ch <- result{r, err}
	}()
	select {
	case res := <-ch:
		switch {
		case res.err != nil:
			l.tb.Fatalf("adsload %q: %v\n%s", command, res.err, l.logTail(20))
		case res.r.Event == "error":
			l.tb.Fatalf("adsload %q: %s", command, res.r.Error)
		}
		return res.r
	case <-time.After(timeout):
		_ = l.cmd.Process.Kill()
		l.tb.Fatalf("adsload %q did not answer within %s", command, timeout)
	}
	return loadReply{}
}

// wait blocks until counter reaches n; the reply says whether it did.
func (l *loadGenerator) wait(counter string, n int, timeout time.Duration) loadReply {
	return l.call(fmt.Sprintf("wait %s %d %s", counter, n, timeout), timeout+time.Minute)
}

// quit stops the generator (idempotent).
func (l *loadGenerator) quit() {
	if l.cmd.ProcessState != nil {
		return
	}
	_, _ = io.WriteString(l.stdin, "quit\n")
	_ = l.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- l.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = l.cmd.Process.Kill()
		<-done
	}
}

func (l *loadGenerator) logTail(n int) string {
	b, _ := os.ReadFile(l.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
