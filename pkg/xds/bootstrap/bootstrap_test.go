package bootstrap_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/xds"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testCA is a fixed PEM block; the generator copies it, never parses it.
const testCA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"

func node() bootstrap.Node {
	return bootstrap.Node{
		Mesh: "default", Name: "web-1", Service: "web", AgentVersion: "0.1.0", EnvoyVersion: "1.36.2",
		Dataplane: `{"type":"Dataplane","mesh":"default","name":"web-1","networking":{"address":"10.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./pkg/xds/bootstrap -update to create it")
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run with -update if the change is intended:\n%s", path, diff)
	}
}

func TestEnvoyGolden(t *testing.T) {
	cases := []struct {
		name string
		p    bootstrap.EnvoyParams
	}{
		{"envoy-dns", bootstrap.EnvoyParams{
			Node: node(), XDSServer: "cp.example.com:5678", CACert: []byte(testCA), Token: "the.token.value", AdminPort: 9901,
		}},
		{"envoy-ip-no-admin", bootstrap.EnvoyParams{
			Node: bootstrap.Node{Mesh: "m", Name: "n"}, XDSServer: "10.0.0.1:5678", CACert: []byte(testCA), Token: "t.o.k",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := bootstrap.Envoy(tc.p)
			require.NoError(t, err)
			golden(t, tc.name+".golden.json", got)

			// What Envoy reads back is valid, deeply.
			var b bootstrapv3.Bootstrap
			require.NoError(t, protojson.Unmarshal(got, &b))
			require.NoError(t, bootstrap.ValidateDeep(&b))
			require.Equal(t, tc.p.Node.ID(), b.GetNode().GetId())
			ads := b.GetDynamicResources().GetAdsConfig()
			require.Equal(t, "DELTA_GRPC", ads.GetApiType().String())
			require.Equal(t, "Bearer "+tc.p.Token, ads.GetGrpcServices()[0].GetInitialMetadata()[0].GetValue())

			again, err := bootstrap.Envoy(tc.p)
			require.NoError(t, err)
			require.Equal(t, string(got), string(again), "generation is deterministic")
		})
	}
}

func TestEnvoyRejectsBadInput(t *testing.T) {
	ok := bootstrap.EnvoyParams{Node: node(), XDSServer: "cp:5678", CACert: []byte(testCA)}
	cases := map[string]struct {
		mutate func(*bootstrap.EnvoyParams)
		want   string
	}{
		"no ca":          {func(p *bootstrap.EnvoyParams) { p.CACert = nil }, "CA certificate"},
		"bad server":     {func(p *bootstrap.EnvoyParams) { p.XDSServer = "cp" }, "xDS server address"},
		"port zero":      {func(p *bootstrap.EnvoyParams) { p.XDSServer = "cp:0" }, "port must be"},
		"no mesh":        {func(p *bootstrap.EnvoyParams) { p.Node.Mesh = "" }, "node mesh"},
		"slash in name":  {func(p *bootstrap.EnvoyParams) { p.Node.Name = "a/b" }, "node name"},
		"no host":        {func(p *bootstrap.EnvoyParams) { p.XDSServer = ":5678" }, "host is empty"},
		"admin too high": {func(p *bootstrap.EnvoyParams) { p.AdminPort = 70000 }, "PortValue"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := ok
			tc.mutate(&p)
			_, err := bootstrap.Envoy(p)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func grpcParams(dir string) bootstrap.GRPCParams {
	return bootstrap.GRPCParams{
		Node:            bootstrap.Node{Mesh: "default", Name: "client-1", Service: "client", AgentVersion: "0.1.0"},
		XDSServer:       "cp.example.com:5678",
		ServerCAFile:    dir + "/cp-ca.pem",
		CertificateFile: dir + "/cert.pem",
		PrivateKeyFile:  dir + "/key.pem",
		CABundleFile:    dir + "/ca.pem",
		Token:           "the.token.value",
	}
}

func TestGRPCGolden(t *testing.T) {
	withCallCreds := grpcParams("/var/run/atoll")
	withCallCreds.TokenFile = "/var/run/atoll/token"
	plain := grpcParams("/var/run/atoll")
	plain.CertificateFile, plain.PrivateKeyFile, plain.CABundleFile = "", "", ""
	cases := map[string]bootstrap.GRPCParams{
		"grpc-mtls":       grpcParams("/var/run/atoll"),
		"grpc-call-creds": withCallCreds,
		"grpc-plaintext":  plain,
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := bootstrap.GRPC(p)
			require.NoError(t, err)
			golden(t, name+".golden.json", got)

			var doc map[string]any
			require.NoError(t, json.Unmarshal(got, &doc))
			require.Equal(t, "grpc/server?xds.resource.listening_address=%s", doc["server_listener_resource_name_template"])
			if p.CertificateFile != "" {
				providers := doc["certificate_providers"].(map[string]any)
				require.Contains(t, providers, ir.IdentityCertName)
				require.Contains(t, providers, ir.MeshCAName)
			}
		})
	}
}

// TestGRPCParsedByGRPCGo feeds the bootstrap to gRPC-Go's own parser: an xDS
// server builds its xDS client from the bootstrap at once and refuses one it
// cannot use. (No GRPC_XDS_BOOTSTRAP* variable is set in tests, so a
// document gRPC could not parse would fail too.)
func TestGRPCParsedByGRPCGo(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"cp-ca.pem", "cert.pem", "key.pem", "ca.pem", "token"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	p := grpcParams(dir)
	p.TokenFile = filepath.Join(dir, "token")
	got, err := bootstrap.GRPC(p)
	require.NoError(t, err)
	srv, err := xds.NewGRPCServer(xds.BootstrapContentsForTesting(got))
	require.NoError(t, err)
	srv.Stop()

	// The parser is strict enough to notice a broken document.
	broken := strings.Replace(string(got), `"tls"`, `"no-such-creds"`, 1)
	_, err = xds.NewGRPCServer(xds.BootstrapContentsForTesting([]byte(broken)))
	require.Error(t, err)
}

func TestGRPCRejectsBadInput(t *testing.T) {
	cases := map[string]struct {
		mutate func(*bootstrap.GRPCParams)
		want   string
	}{
		"no server ca": {func(p *bootstrap.GRPCParams) { p.ServerCAFile = "" }, "serverCaFile"},
		"no key":       {func(p *bootstrap.GRPCParams) { p.PrivateKeyFile = "" }, "privateKeyFile"},
		"bad server":   {func(p *bootstrap.GRPCParams) { p.XDSServer = "nope" }, "xDS server address"},
		"no name":      {func(p *bootstrap.GRPCParams) { p.Node.Name = "" }, "node name"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := grpcParams("/x")
			tc.mutate(&p)
			_, err := bootstrap.GRPC(p)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestNodeID(t *testing.T) {
	key := resource.Key{Mesh: "default", Name: "web-1"}
	require.Equal(t, "default/web-1", bootstrap.NodeID(key))
	got, err := bootstrap.ParseNodeID("default/web-1")
	require.NoError(t, err)
	require.Equal(t, key, got)
	for _, bad := range []string{"", "web-1", "/web-1", "default/", "a/b/c"} {
		_, err := bootstrap.ParseNodeID(bad)
		require.Error(t, err, bad)
	}
}
