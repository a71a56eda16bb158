package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/credentials/tls/certprovider/pemfile"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/app/atoll-dp/agent/agenttest"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

// onDisk is the identity the agent has written, as a reader sees it.
type onDisk struct {
	leaf *x509.Certificate
	pair tls.Certificate
}

// readIdentity loads the certificate files the way gRPC's file_watcher
// does: the certificate, then the key, as one pair. Two files cannot be
// read atomically: a rotation between the two reads gives a mismatched
// pair, which gRPC drops until its next refresh; so does this, reading
// again a few times before failing.
func (h *harness) readIdentity(t *testing.T) onDisk {
	t.Helper()
	var err error
	for range 5 {
		var certPEM, keyPEM []byte
		certPEM, err = os.ReadFile(filepath.Join(h.cfg.CertsDir, CertFileName))
		require.NoError(t, err)
		keyPEM, err = os.ReadFile(filepath.Join(h.cfg.CertsDir, KeyFileName))
		require.NoError(t, err)
		var pair tls.Certificate
		if pair, err = tls.X509KeyPair(certPEM, keyPEM); err == nil {
			return onDisk{leaf: pair.Leaf, pair: pair}
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, err, "the certificate and key on disk do not match, five reads in a row")
	return onDisk{}
}

func TestProxylessMode(t *testing.T) {
	t.Run("writes the bootstrap and the certificate files", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeProxyless, agenttest.Options{})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)

		out, err := filepath.Abs(h.cfg.GRPCBootstrapOut)
		require.NoError(t, err)
		require.Equal(t, "export GRPC_XDS_BOOTSTRAP="+out+"\n", h.stdout.String(), "the one line the application needs")

		for file, mode := range map[string]os.FileMode{
			out: 0o600,
			filepath.Join(h.cfg.CertsDir, CertFileName):     0o644,
			filepath.Join(h.cfg.CertsDir, KeyFileName):      0o600,
			filepath.Join(h.cfg.CertsDir, CABundleFileName): 0o644,
		} {
			fi, err := os.Stat(file)
			require.NoError(t, err)
			require.Equal(t, mode, fi.Mode().Perm(), file)
		}

		// The gRPC bootstrap points at the files the agent keeps.
		var doc struct {
			XDSServers []struct {
				ServerURI    string `json:"server_uri"`
				ChannelCreds []struct {
					Config map[string]string `json:"config"`
				} `json:"channel_creds"`
			} `json:"xds_servers"`
			CertificateProviders map[string]struct {
				Config map[string]any `json:"config"`
			} `json:"certificate_providers"`
		}
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &doc))
		require.Equal(t, strings.TrimPrefix(h.cp.URL, "https://"), doc.XDSServers[0].ServerURI)
		ca, _ := filepath.Abs(h.cp.CAFile)
		require.Equal(t, ca, doc.XDSServers[0].ChannelCreds[0].Config["ca_certificate_file"])
		watcher := doc.CertificateProviders["atoll"].Config
		require.Equal(t, filepath.Join(mustAbs(t, h.cfg.CertsDir), CertFileName), watcher["certificate_file"])
		require.Equal(t, filepath.Join(mustAbs(t, h.cfg.CertsDir), KeyFileName), watcher["private_key_file"])
		require.Equal(t, filepath.Join(mustAbs(t, h.cfg.CertsDir), CABundleFileName), watcher["ca_certificate_file"])

		// The workload certificate is the dataplane's, from its mesh's CA.
		id := h.readIdentity(t)
		require.Equal(t, "spiffe://demo/web", id.leaf.URIs[0].String())
		caPEM, err := os.ReadFile(filepath.Join(h.cfg.CertsDir, CABundleFileName))
		require.NoError(t, err)
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM(caPEM))
		_, err = pki.VerifyWorkloadCert([]*x509.Certificate{id.leaf}, roots, "demo", x509.ExtKeyUsageClientAuth, time.Now())
		require.NoError(t, err)

		// The bootstrap came first, then the certificate, for the same dataplane.
		reqs := h.cp.Requests()
		require.Len(t, reqs, 2)
		require.Equal(t, []string{"/bootstrap", "/certificate"}, []string{reqs[0].Path, reqs[1].Path})
		var req bootstrap.Request
		require.NoError(t, json.Unmarshal(reqs[0].Body, &req))
		require.Equal(t, bootstrap.ProxyProxyless, req.ProxyType)
		require.Zero(t, req.AdminPort)
		require.Equal(t, &bootstrap.ProxylessPaths{
			CertificateFile: filepath.Join(mustAbs(t, h.cfg.CertsDir), CertFileName),
			PrivateKeyFile:  filepath.Join(mustAbs(t, h.cfg.CertsDir), KeyFileName),
			CABundleFile:    filepath.Join(mustAbs(t, h.cfg.CertsDir), CABundleFileName),
			ServerCAFile:    ca,
		}, req.Proxyless)
		require.JSONEq(t, `{"mesh":"demo","name":"web-1"}`, string(reqs[1].Body))

		require.NoError(t, stop())
		_, body := h.readiness()
		require.Contains(t, body, "connection refused", "the endpoint goes away with the agent")
		require.FileExists(t, out, "files stay for the application, which may still run")
	})

	t.Run("certificates are rotated before they expire", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeProxyless, agenttest.Options{CertLifetime: 4 * time.Second})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)

		// A gRPC file_watcher provider, as the application would run it.
		provider, err := pemfile.NewProvider(pemfile.Options{
			CertFile:        filepath.Join(h.cfg.CertsDir, CertFileName),
			KeyFile:         filepath.Join(h.cfg.CertsDir, KeyFileName),
			RootFile:        filepath.Join(h.cfg.CertsDir, CABundleFileName),
			RefreshDuration: 10 * time.Millisecond,
		})
		require.NoError(t, err)
		defer provider.Close()

		// Readers that load the pair as gRPC does, as fast as they can.
		var stopReading atomic.Bool
		var reads, unparsable, mismatched, unresolved atomic.Int64
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for !stopReading.Load() {
					certPEM, err1 := os.ReadFile(filepath.Join(h.cfg.CertsDir, CertFileName))
					keyPEM, err2 := os.ReadFile(filepath.Join(h.cfg.CertsDir, KeyFileName))
					reads.Add(1)
					chain, err3 := pki.ParseCertsPEM(certPEM)
					_, err4 := pki.ParseKeyPEM(keyPEM)
					if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(chain) == 0 {
						unparsable.Add(1)
						continue
					}
					if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
						// A rotation happened between the two reads; reading
						// again, as gRPC does at its next refresh, must succeed.
						mismatched.Add(1)
						if !pairResolves(h.cfg.CertsDir, 100*time.Millisecond) {
							unresolved.Add(1)
						}
					}
				}
			})
		}

		serials := map[string]bool{}
		seenByGRPC := map[string]bool{}
		deadline := time.Now().Add(9 * time.Second)
		for time.Now().Before(deadline) && len(seenByGRPC) < 3 {
			id := h.readIdentity(t)
			require.True(t, time.Now().Before(id.leaf.NotAfter), "the certificate on disk expired at %s", id.leaf.NotAfter)
			serials[id.leaf.SerialNumber.String()] = true
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			km, err := provider.KeyMaterial(ctx)
			cancel()
			require.NoError(t, err)
			seenByGRPC[km.Certs[0].Leaf.SerialNumber.String()] = true
			time.Sleep(50 * time.Millisecond)
		}
		stopReading.Store(true)
		wg.Wait()
		require.GreaterOrEqual(t, len(seenByGRPC), 3, "gRPC's file_watcher picked up each rotation; logs:\n%s", h.logs)
		require.GreaterOrEqual(t, h.cp.CertificatesIssued(), 3)
		require.Positive(t, reads.Load())
		require.Zero(t, unparsable.Load(), "a reader saw a missing or partial file")
		require.Zero(t, unresolved.Load(), "a mismatched pair did not resolve on the next read")
		t.Logf("%d pair reads during %d rotations, %d saw the key of the next certificate", reads.Load(), len(serials)-1, mismatched.Load())
		require.Contains(t, h.logs.String(), `msg="workload certificate renewed"`)
		require.NotContains(t, h.logs.String(), "level=WARN")
		require.NoError(t, stop())
	})

	t.Run("failed renewals are retried, logged louder as expiry nears, and readiness follows", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeProxyless, agenttest.Options{CertLifetime: 3 * time.Second})
		h.cp.FailNext(bootstrap.BootstrapPath, 2, http.StatusServiceUnavailable, "starting up")
		stop := h.run(t)
		h.waitReadiness(t, http.StatusServiceUnavailable, 5*time.Second)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		first := h.readIdentity(t).leaf

		h.cp.FailNext(bootstrap.CertificatePath, 1_000_000, http.StatusInternalServerError, "CA unavailable")
		h.waitReadiness(t, http.StatusServiceUnavailable, 10*time.Second)
		_, body := h.readiness()
		require.Equal(t, "NOT READY: the workload certificate expired at "+first.NotAfter.UTC().Format(time.RFC3339)+"\n", body)
		require.Eventually(t, func() bool {
			return strings.Contains(h.logs.String(), `level=ERROR msg="workload certificate EXPIRED`)
		}, 5*time.Second, 20*time.Millisecond)
		logs := h.logs.String()
		require.Contains(t, logs, `level=WARN msg="could not renew the workload certificate; retrying"`)
		require.Contains(t, logs, `level=ERROR msg="workload certificate expires soon and could not be renewed"`)
		require.Contains(t, logs, `level=ERROR msg="workload certificate EXPIRED and could not be renewed: the application's mTLS connections fail until it is"`)
		require.Contains(t, logs, `error="certificate request to the control plane at `+h.cp.URL+`: HTTP 500: CA unavailable"`)

		h.cp.ClearFaults()
		h.waitReadiness(t, http.StatusOK, 5*time.Second)
		require.NotEqual(t, first.SerialNumber, h.readIdentity(t).leaf.SerialNumber)
		require.NoError(t, stop())
	})

	t.Run("an unusable certificate is refused", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ModeProxyless, agenttest.Options{})
		stop := h.run(t)
		h.waitReadiness(t, http.StatusOK, 10*time.Second)
		require.NoError(t, stop())

		other := agenttest.Start(t, agenttest.Options{
			Tokens:     map[string]agenttest.Identity{"t": {Mesh: "other"}},
			Dataplanes: []string{"other/web-1"},
		})
		c := client(t, other.URL, other.CAFile, "t", &syncBuffer{})
		creq := &bootstrap.CertificateRequest{Mesh: "other", Name: "web-1"}
		_, err := c.bootstrap(context.Background(), &bootstrap.Request{Mesh: "other", Name: "web-1", ProxyType: bootstrap.ProxyEnvoy, AdminPort: 1}, time.Second)
		require.NoError(t, err)
		resp, err := c.certificate(context.Background(), creq, time.Second)
		require.NoError(t, err)
		caOfDemo, err := os.ReadFile(filepath.Join(h.cfg.CertsDir, CABundleFileName))
		require.NoError(t, err)

		wrongCA := *resp
		wrongCA.CABundle = string(caOfDemo)
		_, err = checkIdentity(&wrongCA, time.Now())
		require.ErrorContains(t, err, "the certificate does not verify against the CA bundle: x509: certificate signed by unknown authority")

		keyOfDemo, err := os.ReadFile(filepath.Join(h.cfg.CertsDir, KeyFileName))
		require.NoError(t, err)
		wrongKey := *resp
		wrongKey.PrivateKey = string(keyOfDemo)
		_, err = checkIdentity(&wrongKey, time.Now())
		require.EqualError(t, err, "the private key does not belong to the certificate")

		_, err = checkIdentity(resp, time.Now().Add(48*time.Hour))
		require.ErrorContains(t, err, "certificate has expired or is not yet valid")

		id, err := checkIdentity(resp, time.Now())
		require.NoError(t, err)
		require.Equal(t, resp.RenewAt, id.renewAt)
	})
}

func TestUntilRenewal(t *testing.T) {
	now := time.Now()
	id := &identity{renewAt: now.Add(time.Hour)}
	for range 100 {
		w := untilRenewal(id, now)
		require.True(t, w > 55*time.Minute && w <= time.Hour, w)
	}
	id.renewAt = now.Add(-time.Second)
	require.Zero(t, untilRenewal(id, now))
}

// pairResolves reports whether the certificate and key files load as a
// matching pair within d, reading them again every millisecond.
func pairResolves(dir string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFileName), filepath.Join(dir, KeyFileName)); err == nil {
			return true
		}
	}
	return false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}
