package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

// client returns a cpClient for the address with token, trusting caFile.
func client(t *testing.T, address, caFile, token string, logs *syncBuffer) *cpClient {
	t.Helper()
	addr, err := parseCPAddress(address)
	require.NoError(t, err)
	c, err := newCPClient(addr, caFile, false, tokenSource{token: token}, fastTiming(), slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	return c
}

func envoyRequest() *bootstrap.Request {
	return &bootstrap.Request{Mesh: "a", Name: "web-1", ProxyType: bootstrap.ProxyEnvoy, AdminPort: 9901, XDSServer: "127.0.0.1:5678"}
}

func TestBootstrapRefusalsReachTheUser(t *testing.T) {
	cp := agenttest.Start(t, agenttest.Options{
		Tokens: map[string]agenttest.Identity{
			"mesh-b":  {Mesh: "b"},
			"expired": {Mesh: "a", ExpiresAt: time.Now().Add(-time.Hour)},
			"other":   {Mesh: "a", Name: "web-2"},
		},
		Dataplanes: []string{"a/web-1"},
	})
	tests := []struct {
		token string
		want  string
	}{
		{"mesh-b", `the control plane refused the dataplane token: token is for mesh "b", not "a"`},
		{"expired", `the control plane refused the dataplane token: invalid dataplane token: token has expired (at `},
		{"forged", `the control plane refused the dataplane token: invalid dataplane token: signature is invalid`},
		{"other", `the control plane refused the dataplane token: token is for dataplane "web-2", not "web-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			logs := &syncBuffer{}
			c := client(t, cp.URL, cp.CAFile, tt.token, logs)
			_, err := c.bootstrap(context.Background(), envoyRequest(), time.Minute)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), tt.want), err.Error())
			var refused *RefusedError
			require.ErrorAs(t, err, &refused)
			require.Empty(t, logs.String(), "a refusal is not retried")
		})
	}

	t.Run("the request follows api/bootstrap", func(t *testing.T) {
		cp := agenttest.Start(t, agenttest.Options{
			Tokens:     map[string]agenttest.Identity{"good": {Mesh: "a", Name: "web-1"}},
			Dataplanes: []string{"a/web-1"},
		})
		c := client(t, cp.URL, cp.CAFile, "good", &syncBuffer{})
		resp, err := c.bootstrap(context.Background(), envoyRequest(), time.Minute)
		require.NoError(t, err)
		require.Equal(t, "a.web-1", resp.NodeID)
		require.True(t, json.Valid(resp.Bootstrap))
		reqs := cp.Requests()
		require.Len(t, reqs, 1)
		require.Equal(t, "/bootstrap", reqs[0].Path)
		require.Equal(t, "Bearer good", reqs[0].Authorization)
	})
}

func TestBootstrapRetriesTransientFailures(t *testing.T) {
	cp := agenttest.Start(t, agenttest.Options{
		Tokens:     map[string]agenttest.Identity{"good": {Mesh: "a"}},
		Dataplanes: []string{"a/web-1"},
	})
	cp.FailNext(bootstrap.BootstrapPath, 2, http.StatusServiceUnavailable, "starting up")
	logs := &syncBuffer{}
	c := client(t, cp.URL, cp.CAFile, "good", logs)
	resp, err := c.bootstrap(context.Background(), envoyRequest(), 10*time.Second)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Bootstrap)
	require.Len(t, cp.Requests(), 3)
	require.Equal(t, 2, strings.Count(logs.String(), "control plane request failed; retrying"))
	require.Contains(t, logs.String(), "HTTP 503: starting up")

	t.Run("until the retry time is up", func(t *testing.T) {
		cp.FailNext(bootstrap.BootstrapPath, 1000, http.StatusInternalServerError, "store unavailable")
		_, err := c.bootstrap(context.Background(), envoyRequest(), 300*time.Millisecond)
		require.ErrorContains(t, err, "the control plane at "+cp.URL+" failed the bootstrap request after 300ms (")
		require.ErrorContains(t, err, "attempts): HTTP 500: store unavailable")
	})
}

func TestBootstrapGivesUpOnAnUnreachableControlPlane(t *testing.T) {
	cp := agenttest.Start(t, agenttest.Options{})
	url := cp.URL
	cp.Close()
	logs := &syncBuffer{}
	c := client(t, url, cp.CAFile, "good", logs)
	start := time.Now()
	_, err := c.bootstrap(context.Background(), envoyRequest(), 500*time.Millisecond)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second, "bounded")
	require.True(t, strings.HasPrefix(err.Error(), "the control plane at "+url+" is unreachable after 500ms ("), err.Error())
	require.Contains(t, err.Error(), "connection refused")
	require.Contains(t, logs.String(), "retrying")

	t.Run("a stop ends the retries", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.bootstrap(ctx, envoyRequest(), time.Hour)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestTLSFailuresNameTheCAFile(t *testing.T) {
	cp := agenttest.Start(t, agenttest.Options{})
	other := agenttest.Start(t, agenttest.Options{}) // a CA that did not sign cp's certificate
	logs := &syncBuffer{}
	c := client(t, cp.URL, other.CAFile, "good", logs)
	_, err := c.bootstrap(context.Background(), envoyRequest(), time.Minute)
	require.EqualError(t, err, "TLS verification of the control plane at "+cp.URL+" failed with the CA in "+other.CAFile+
		": x509: certificate signed by unknown authority")
	require.Empty(t, logs.String(), "not retried")

	t.Run("wrong host name", func(t *testing.T) {
		cert, err := pki.SelfSignedServerCert([]string{"cp.example"}, time.Hour, time.Now())
		require.NoError(t, err)
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		defer srv.Close()
		caFile := writeFile(t, "ca.pem", string(pki.EncodeCertPEM(cert.Certificate[0])))
		c := client(t, srv.URL, caFile, "good", &syncBuffer{})
		_, err = c.bootstrap(context.Background(), envoyRequest(), time.Second)
		require.EqualError(t, err, "TLS verification of the control plane at "+srv.URL+" failed with the CA in "+caFile+
			": x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs")
	})

	t.Run("plain HTTP on the port", func(t *testing.T) {
		plain := httptest.NewServer(http.NotFoundHandler())
		defer plain.Close()
		url := strings.Replace(plain.URL, "http://", "https://", 1)
		c := client(t, url, cp.CAFile, "good", &syncBuffer{})
		_, err := c.bootstrap(context.Background(), envoyRequest(), time.Minute)
		require.EqualError(t, err, "the control plane at "+url+" does not speak TLS on that port: --cp-address must name the data-plane server (port 5678 by default)")
	})

	t.Run("a CA file without certificates", func(t *testing.T) {
		addr, _ := parseCPAddress(cp.URL)
		file := writeFile(t, "ca.pem", "not a certificate")
		_, err := newCPClient(addr, file, false, tokenSource{token: "x"}, fastTiming(), slog.Default())
		require.EqualError(t, err, "--ca-cert-file "+file+" holds no PEM certificate")
	})
}

func TestRefusalsFromSomethingElseGetAHint(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"title":"Not found","detail":"no route"}` + "\n"))
	}))
	defer srv.Close()
	addr, err := parseCPAddress(srv.URL)
	require.NoError(t, err)
	c, err := newCPClient(addr, "", true, tokenSource{token: "x"}, fastTiming(), slog.Default())
	require.NoError(t, err)
	_, err = c.bootstrap(context.Background(), envoyRequest(), time.Minute)
	require.EqualError(t, err, `the control plane refused the bootstrap request (HTTP 404): {"title":"Not found","detail":"no route"} (is `+srv.URL+` the control plane's data-plane server, port 5678 by default?)`)
}
