package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	atollres "github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
)

// fakeIssuer issues a fixed certificate, or fails for mesh "other".
type fakeIssuer struct{ notAfter time.Time }

func (f fakeIssuer) WorkloadCertificate(_ context.Context, key atollres.Key) (dpapi.CertificateResponse, error) {
	if key.Mesh == "other" {
		return dpapi.CertificateResponse{}, fmt.Errorf("mesh %q: %w", key.Mesh, server.ErrNoIdentity)
	}
	return dpapi.CertificateResponse{CertificateChain: "CERT of " + key.String(), PrivateKey: "KEY", CABundle: "CA", NotAfter: f.notAfter, RenewAt: f.notAfter.Add(-time.Hour)}, nil
}

func TestCertificate(t *testing.T) {
	notAfter := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	e := newEnv(t, envOptions{mutate: func(o *server.Options) { o.Certificates = fakeIssuer{notAfter: notAfter} }})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	e.createDataplane(otherDP, dataplaneSpec("web", 8080))
	req := dpapi.CertificateRequest{Mesh: "default", Name: "web-1"}

	code, msg := e.post(dpapi.CertificatePath, "", req, nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, msg, "no dataplane token")
	code, msg = e.post(dpapi.CertificatePath, e.token(otherDP), req, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, msg, `issued for mesh "other"`)
	code, msg = e.post(dpapi.CertificatePath, e.token(web1), dpapi.CertificateRequest{Mesh: "default"}, nil)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, msg, "name: must not be empty")

	var got dpapi.CertificateResponse
	code, msg = e.post(dpapi.CertificatePath, e.token(web1), req, &got)
	require.Equal(t, http.StatusOK, code, msg)
	require.Equal(t, "CERT of default/web-1", got.CertificateChain)
	require.True(t, notAfter.Equal(got.NotAfter))
	require.Eventually(t, func() bool {
		in := e.insight(web1)
		return in != nil && in.MTLS != nil && in.MTLS.CertificateExpirationTime.Equal(notAfter) && in.MTLS.CertificateRegenerations == 1
	}, 5*time.Second, 10*time.Millisecond, "the insight records the certificate")
	code, msg = e.post(dpapi.CertificatePath, e.token(web1), req, &got)
	require.Equal(t, http.StatusOK, code, msg)
	require.Eventually(t, func() bool {
		in := e.insight(web1)
		return in != nil && in.MTLS != nil && in.MTLS.CertificateRegenerations == 2
	}, 5*time.Second, 10*time.Millisecond, "renewals are counted")

	code, msg = e.post(dpapi.CertificatePath, e.token(otherDP), dpapi.CertificateRequest{Mesh: "other", Name: "web-1"}, nil)
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, msg, "no mTLS backend")
}

func TestCertificateNotServed(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createDataplane(web1, dataplaneSpec("web", 8080))
	code, msg := e.post(dpapi.CertificatePath, e.token(web1), dpapi.CertificateRequest{Mesh: "default", Name: "web-1"}, nil)
	require.Equal(t, http.StatusNotImplemented, code)
	require.Contains(t, msg, "does not issue")
}
