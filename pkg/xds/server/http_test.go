package server_test

import (
	"bufio"
	"crypto"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/pki"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	xdsboot "github.com/atoll-mesh/atoll/pkg/xds/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
)

var (
	web1    = atollres.Key{Mesh: "default", Name: "web-1"}
	otherDP = atollres.Key{Mesh: "other", Name: "web-1"}
)

// TestOnePortTwoProtocols: HTTP clients and gRPC clients share the port.
func TestOnePortTwoProtocols(t *testing.T) {
	e := newEnv(t, envOptions{})

	// A Go HTTP client offering h2 and http/1.1 is served HTTP/1.1.
	resp, err := e.httpClient().Get("https://" + e.addr + "/nowhere")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, "HTTP/1.1", resp.Proto)
	require.Contains(t, string(body), "POST /bootstrap")

	resp, err = e.httpClient().Get("https://" + e.addr + dpapi.BootstrapPath)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	// A gRPC client on the same port reaches the ADS server (and is
	// refused for lack of a token, which proves it got there).
	cl, err := adstest.NewSotW(e.ctx, e.grpcConn(), envoyNode(web1))
	require.NoError(t, err)
	require.NoError(t, cl.Subscribe(resource.ClusterType))
	_, err = cl.Recv()
	require.ErrorContains(t, err, "Unauthenticated")

	// A client offering no ALPN at all is routed by its first bytes.
	plain := func() *tls.Conn {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.caPool})
		require.NoError(t, err)
		require.Empty(t, c.ConnectionState().NegotiatedProtocol)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		return c
	}
	c := plain()
	_, err = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: cp\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, r.StatusCode)

	c = plain()
	_, err = c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	require.NoError(t, err)
	frame := make([]byte, 9)
	_, err = io.ReadFull(c, frame)
	require.NoError(t, err)
	require.Equal(t, byte(0x4), frame[3], "the gRPC server answered with an HTTP/2 SETTINGS frame")
}

func envoyRequest(key atollres.Key, doc string) dpapi.Request {
	return dpapi.Request{
		Mesh: key.Mesh, Name: key.Name, ProxyType: dpapi.ProxyEnvoy, Dataplane: doc,
		AdminPort: 9902, XDSServer: "127.0.0.1:5678",
		Version: dpapi.Version{AtollDP: "0.1.0", Envoy: "1.36.2"},
	}
}

// TestBootstrapEnvoy: atoll-dp registers its dataplane and gets an Envoy
// bootstrap that reaches this server over TLS, authenticated by its token.
func TestBootstrapEnvoy(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token(web1)
	var got dpapi.Response
	code, msg := e.post(dpapi.BootstrapPath, tok, envoyRequest(web1, dataplaneJSON(t, web1, dataplaneSpec("web", 8080))), &got)
	require.Equal(t, http.StatusOK, code, msg)
	require.Equal(t, "default/web-1", got.NodeID)

	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.Unmarshal(got.Bootstrap, &b))
	require.NoError(t, xdsboot.ValidateDeep(&b))
	require.Equal(t, "default/web-1", b.GetNode().GetId())
	require.Equal(t, "web", b.GetNode().GetCluster())
	require.Equal(t, "envoy", b.GetNode().GetMetadata().GetFields()[xdsboot.MetadataProxyType].GetStringValue())
	require.Equal(t, uint32(9902), b.GetAdmin().GetAddress().GetSocketAddress().GetPortValue())
	ads := b.GetDynamicResources().GetAdsConfig()
	require.Equal(t, "DELTA_GRPC", ads.GetApiType().String())
	require.Equal(t, "Bearer "+tok, ads.GetGrpcServices()[0].GetInitialMetadata()[0].GetValue())
	var upstream tlsv3.UpstreamTlsContext
	require.NoError(t, b.GetStaticResources().GetClusters()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&upstream))
	require.Equal(t, string(e.srv.CACertPEM()), string(upstream.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetInlineBytes()),
		"Envoy verifies the server with the CA proxies are given")

	dp, err := e.mgr.Get(e.ctx, atollres.DataplaneType, web1)
	require.NoError(t, err)
	require.Equal(t, server.RegisteredByAgent, dp.Meta.Labels[server.RegisteredByLabel])
	require.Equal(t, uint32(8080), dp.Spec.(*dataplane.Spec).Networking.Inbound[0].Port)
}

// TestBootstrapPreCreated: without a dataplane document the dataplane must
// exist; it keeps its labels (it is not the agent's).
func TestBootstrapPreCreated(t *testing.T) {
	e := newEnv(t, envOptions{})
	tok := e.token(web1)
	code, msg := e.post(dpapi.BootstrapPath, tok, envoyRequest(web1, ""), nil)
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, msg, "dataplane default/web-1 does not exist")
	require.Contains(t, msg, "--dataplane-file")

	e.createDataplane(web1, dataplaneSpec("web", 8080))
	var got dpapi.Response
	code, msg = e.post(dpapi.BootstrapPath, tok, envoyRequest(web1, ""), &got)
	require.Equal(t, http.StatusOK, code, msg)
	dp, err := e.mgr.Get(e.ctx, atollres.DataplaneType, web1)
	require.NoError(t, err)
	require.Empty(t, dp.Meta.Labels)
}

func TestBootstrapRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	good := dataplaneJSON(t, web1, dataplaneSpec("web", 8080))
	tok := e.token(web1)
	otherMesh := e.token(otherDP)
	otherName := e.token(atollres.Key{Mesh: "default", Name: "web-2"})
	restricted, err := e.tokens.Issue(e.ctx, dptoken.IssueRequest{Mesh: "default", Name: "web-1", Tags: map[string][]string{dataplane.ServiceTag: {"backend"}}})
	require.NoError(t, err)
	ghost := atollres.Key{Mesh: "ghost", Name: "web-1"}
	ghostTok := e.token(ghost)

	invalid := dataplaneSpec("web", 8080)
	invalid.Networking.Address = ""
	invalid.Networking.Inbound[0].Tags = map[string]string{}

	cases := []struct {
		name  string
		token string
		req   dpapi.Request
		code  int
		msg   []string
	}{
		{"no token", "", envoyRequest(web1, good), 401, []string{"no dataplane token", "atollctl generate dataplane-token --mesh default --name web-1"}},
		{"garbage token", "not-a-jwt", envoyRequest(web1, good), 401, []string{"not a valid JWT"}},
		{"token of another mesh", otherMesh, envoyRequest(web1, good), 403, []string{`issued for mesh "other"`}},
		{"token of another dataplane", otherName, envoyRequest(web1, good), 403, []string{`issued for dataplane "web-2"`}},
		{"tags not allowed", restricted, envoyRequest(web1, good), 403, []string{`only with values ["backend"]`}},
		{"invalid dataplane", tok, envoyRequest(web1, dataplaneJSON(t, web1, invalid)), 400,
			[]string{"networking.address: must not be empty", `networking.inbound[0].tags["kuma.io/service"]: tag has to exist`}},
		{"unknown field", tok, envoyRequest(web1, `{"type":"Dataplane","networking":{"adress":"1.2.3.4"}}`), 400, []string{"networking.adress"}},
		{"dataplane of another mesh", tok, envoyRequest(web1, dataplaneJSON(t, otherDP, dataplaneSpec("web", 8080))), 400, []string{`names mesh "other"`}},
		{"no such mesh", ghostTok, envoyRequest(ghost, dataplaneJSON(t, ghost, dataplaneSpec("web", 8080))), 404, []string{`mesh "ghost" does not exist`}},
		{"bad proxy type", tok, func() dpapi.Request { r := envoyRequest(web1, good); r.ProxyType = "nginx"; return r }(), 400, []string{"proxyType"}},
		{"no xds server", tok, func() dpapi.Request { r := envoyRequest(web1, good); r.XDSServer = ""; return r }(), 400, []string{"xdsServer"}},
		{"bad xds server", tok, func() dpapi.Request { r := envoyRequest(web1, good); r.XDSServer = "cp"; return r }(), 400, []string{`xDS server address "cp"`}},
		{"proxyless without paths", tok, func() dpapi.Request { r := envoyRequest(web1, good); r.ProxyType = dpapi.ProxyProxyless; return r }(), 400, []string{"proxyless: must be set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := e.post(dpapi.BootstrapPath, tc.token, tc.req, nil)
			require.Equal(t, tc.code, code, msg)
			for _, m := range tc.msg {
				require.Contains(t, msg, m)
			}
		})
	}
	_, err = e.mgr.Get(e.ctx, atollres.DataplaneType, web1)
	require.Error(t, err, "no refused request registered anything")

	// Malformed bodies.
	resp, err := e.httpClient().Post("https://"+e.addr+dpapi.BootstrapPath, "application/json", strings.NewReader("{"))
	require.NoError(t, err)
	var apiErr dpapi.Error
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&apiErr))
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, apiErr.Message, "not valid JSON")
	require.Equal(t, 8.0, e.counter("atoll_dp_server_http_requests_total", "path", "/bootstrap", "code", "400"), "the metric counts refusals by status")
}

// TestProvidedCertificate: with dpServer.tlsCertFile and tlsKeyFile the
// server serves that certificate, and bootstraps trust its chain's last
// certificate.
func TestProvidedCertificate(t *testing.T) {
	cert, err := pki.SelfSignedServerCert([]string{"127.0.0.1"}, time.Hour, time.Now())
	require.NoError(t, err)
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	keyPEM, err := pki.EncodeKeyPEM(cert.PrivateKey.(crypto.Signer))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600))
	e := newEnv(t, envOptions{mutate: func(o *server.Options) {
		o.TLSCertFile, o.TLSKeyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	}})
	require.Equal(t, string(certPEM), string(e.srv.CACertPEM()))
	resp, err := e.httpClient().Get("https://" + e.addr + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, cert.Certificate[0], resp.TLS.PeerCertificates[0].Raw)

	_, err = server.New(server.Options{TLSCertFile: filepath.Join(dir, "missing.crt"), TLSKeyFile: filepath.Join(dir, "tls.key"),
		Cache: e.cache, Resources: e.mgr, Tokens: e.tokens})
	require.ErrorContains(t, err, "missing.crt")
}
