package ir

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

func sample() *Proxy {
	p := &Proxy{
		Identity: Identity{Mesh: "default", Dataplane: "web-1", Services: []string{"web", "admin", "web"}},
		Flavour:  FlavourEnvoy,
		Node:     Node{ID: "default.web-1", Address: "10.0.0.1", AdminPort: 9901},
		MTLS:     NewMTLS(MTLSStrict),
		Inbounds: []Inbound{
			{Address: "10.0.0.1", Port: 9000, Service: "admin", Protocol: ProtocolHTTP, Timeouts: DefaultTimeouts()},
			{Address: "10.0.0.1", Port: 8080, ServicePort: 18080, Service: "web", Protocol: ProtocolGRPC,
				Tags: map[string]string{"kuma.io/service": "web", "version": "v1"}, Timeouts: DefaultTimeouts()},
		},
		Outbounds: []Outbound{
			{Address: "127.0.0.1", Port: 10002, Service: "db", Protocol: ProtocolTCP,
				Routes: []Route{{Clusters: []WeightedCluster{{Name: "db"}}}}},
			{Address: "127.0.0.1", Port: 10001, Service: "backend", Protocol: ProtocolHTTP,
				Routes: []Route{
					{Name: "a", Match: RouteMatch{PathPrefix: "/a"}, Clusters: []WeightedCluster{{Name: "backend-v2", Weight: 1}, {Name: "backend-v1", Weight: 9}}},
					{Name: "all", Clusters: []WeightedCluster{{Name: "backend-v1"}}, Retry: &Retry{On: []string{"5xx"}, NumRetries: 2}},
				},
				Timeouts: Timeouts{RequestTimeout: 3 * time.Second, MaxStreamDuration: time.Second}},
		},
		Clusters: []Cluster{
			{Name: "db", Service: "db", ExpectedSAN: SPIFFEID("default", "db"),
				Localities: []Locality{{Endpoints: []Endpoint{{Address: "10.0.0.9", Port: 5432}}}}},
			{Name: "backend-v2", Service: "backend", ExpectedSAN: SPIFFEID("default", "backend")},
			{Name: "backend-v1", Service: "backend", ExpectedSAN: SPIFFEID("default", "backend"),
				Localities: []Locality{
					{Zone: "b", Priority: 1, Endpoints: []Endpoint{{Address: "10.1.0.2", Port: 80}}},
					{Zone: "a", Endpoints: []Endpoint{{Address: "10.0.0.3", Port: 80}, {Address: "10.0.0.2", Port: 80}}},
				}},
		},
		Secrets: []Secret{
			{Name: MeshCAName, TrustedCA: "ca"},
			{Name: IdentityCertName, CertificateChain: "cert", PrivateKey: "key"},
		},
	}
	return p
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestYAMLGolden pins the YAML form of the IR, which golden tests of the
// translators and policies are written in.
func TestYAMLGolden(t *testing.T) {
	p := sample()
	p.Normalize()
	got, err := EncodeYAML(p)
	require.NoError(t, err)
	golden := filepath.Join("testdata", "sample.yaml")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./pkg/xds/... -update to create it")
	require.Empty(t, cmp.Diff(string(want), string(got)), "run with -update if the change is intended")
}

func TestYAMLRoundTrip(t *testing.T) {
	p := sample()
	p.Normalize()
	data, err := EncodeYAML(p)
	require.NoError(t, err)
	require.Contains(t, string(data), "requestTimeout: 3s", "durations read as Go durations")
	back, err := DecodeYAML(data)
	require.NoError(t, err)
	if diff := cmp.Diff(p, back); diff != "" {
		t.Fatalf("round trip changed the proxy (-want +got):\n%s", diff)
	}
}

func TestDecodeYAMLRejectsUnknownFields(t *testing.T) {
	_, err := DecodeYAML([]byte("identity: {mesh: default}\nflavor: envoy\n"))
	require.ErrorContains(t, err, "field flavor not found")
}

func TestNormalizeMakesOrderIrrelevant(t *testing.T) {
	a, b := sample(), sample()
	b.Inbounds[0], b.Inbounds[1] = b.Inbounds[1], b.Inbounds[0]
	b.Clusters[0], b.Clusters[2] = b.Clusters[2], b.Clusters[0]
	b.Secrets[0], b.Secrets[1] = b.Secrets[1], b.Secrets[0]
	a.Normalize()
	b.Normalize()
	require.Empty(t, cmp.Diff(a, b))
	require.Equal(t, []string{"admin", "web"}, a.Identity.Services)
	require.Equal(t, "backend-v1", a.Outbounds[0].Routes[0].Clusters[0].Name, "weighted clusters sorted")
	require.Equal(t, "a", a.Outbounds[0].Routes[0].Name, "route order kept: first match wins")
	require.Equal(t, "a", a.Clusters[0].Localities[0].Zone, "priority 0 first")
	require.Equal(t, "10.0.0.2", a.Clusters[0].Localities[0].Endpoints[0].Address)

	ha, err := a.Hash()
	require.NoError(t, err)
	hb, err := b.Hash()
	require.NoError(t, err)
	require.Equal(t, ha, hb)
}

func TestHashIsStableAndSensitive(t *testing.T) {
	p := sample()
	p.Normalize()
	h1, err := p.Hash()
	require.NoError(t, err)
	require.Len(t, h1, 32)
	// The hash is a pure function of content: the same on every run and in
	// every process, so a restarted control plane offers the same version.
	require.Equal(t, "d650de179a76bf39ab309f3c08731cd7", h1, "update this literal only if the IR schema changed on purpose")

	p.Outbounds[0].Timeouts.RequestTimeout++
	h2, err := p.Hash()
	require.NoError(t, err)
	require.NotEqual(t, h1, h2)

	p = sample()
	p.Normalize()
	p.Secrets[1].CertificateChain = "rotated"
	h3, err := p.Hash()
	require.NoError(t, err)
	require.NotEqual(t, h1, h3, "a rotated certificate is a new version")
}

func TestValidate(t *testing.T) {
	p := sample()
	require.NoError(t, p.Validate())

	p.Identity.Mesh = ""
	p.Flavour = "sidecar"
	p.Inbounds[0].Address = "web.local"
	p.Outbounds[1].Routes[1].Clusters[0].Name = "missing"
	p.Clusters[0].ExpectedSAN = ""
	p.Clusters[2].Localities[0].Endpoints[0].Port = 0
	p.TransparentProxy.RedirectPortInbound = 15006
	err := p.Validate()
	require.Error(t, err)
	got := strings.Split(err.Error(), "\n")
	require.ElementsMatch(t, []string{
		`identity.mesh: must not be empty`,
		`flavour: must be "envoy" or "proxyless", got "sidecar"`,
		`transparentProxy: needs both redirect ports or neither`,
		`clusters[0].expectedSAN: must be set when mTLS is on`,
		`clusters[2].localities[0].endpoints[0].port: must be a port between 1 and 65535, got 0`,
		`inbounds[0].address: must be an IP address, got "web.local"`,
		`outbounds[1].routes[1].clusters[0].name: cluster "missing" is not defined`,
	}, got)
}

func TestStreamDeadline(t *testing.T) {
	require.Equal(t, time.Duration(0), Timeouts{}.StreamDeadline())
	require.Equal(t, time.Second, Timeouts{RequestTimeout: time.Second}.StreamDeadline())
	require.Equal(t, time.Second, Timeouts{MaxStreamDuration: time.Second}.StreamDeadline())
	require.Equal(t, time.Second, Timeouts{RequestTimeout: 2 * time.Second, MaxStreamDuration: time.Second}.StreamDeadline())
}

// TestNoEnvoyImports keeps the IR free of Envoy and protobuf types (DESIGN §3).
func TestNoEnvoyImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(dep, "github.com/envoyproxy/") || strings.HasPrefix(dep, "google.golang.org/protobuf"),
			"pkg/xds/ir must not depend on %s", dep)
	}
}
