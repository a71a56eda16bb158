package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/test/framework"
)

func TestMeshCAsAreCreatedOnSaveAndProvidedCAsAreChecked(t *testing.T) {
	cp := framework.StartControlPlane(t, &bins)

	// Enabling a builtin backend generates the mesh's CA as Secrets of that mesh.
	mustPut(t, cp, "/meshes/pay", `{"type":"Mesh","mtls":{"enabledBackend":"ca-1","backends":[{"name":"ca-1","type":"builtin","conf":{"caCert":{"RSAbits":2048,"expiration":"5y"}}}]}}`)
	require.Eventually(t, func() bool {
		return cp.Do(http.MethodGet, "/meshes/pay/secrets/pay.ca-builtin-cert-ca-1", nil).Status == http.StatusOK &&
			cp.Do(http.MethodGet, "/meshes/pay/secrets/pay.ca-builtin-key-ca-1", nil).Status == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond, "the builtin CA is created when the mesh is saved")
	var secret struct {
		Data []byte `json:"data"`
	}
	require.NoError(t, json.Unmarshal(cp.Do(http.MethodGet, "/meshes/pay/secrets/pay.ca-builtin-cert-ca-1", nil).Body, &secret))
	certs, err := pki.ParseCertsPEM(secret.Data)
	require.NoError(t, err)
	require.True(t, certs[0].IsCA)
	require.Equal(t, "spiffe://pay", certs[0].URIs[0].String())
	require.WithinDuration(t, time.Now().Add(5*365*24*time.Hour), certs[0].NotAfter, 48*time.Hour, "conf.caCert.expiration is honoured")
	require.Equal(t, http.StatusNotFound, cp.Do(http.MethodGet, "/meshes/default/secrets/pay.ca-builtin-cert-ca-1", nil).Status,
		"a mesh's CA lives only in that mesh")

	// A provided CA whose secrets do not exist is refused with the field named.
	mustPut(t, cp, "/meshes/own", `{"type":"Mesh"}`)
	provided := `{"type":"Mesh","mtls":{"enabledBackend":"mine","backends":[{"name":"mine","type":"provided","conf":{"cert":{"secret":"own-ca-cert"},"key":{"secret":"own-ca-key"}}}]}}`
	res := cp.Do(http.MethodPut, "/meshes/own", []byte(provided))
	require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
	var apiErr struct {
		InvalidParameters []struct{ Field, Reason string } `json:"invalid_parameters"`
	}
	require.NoError(t, json.Unmarshal(res.Body, &apiErr))
	require.Equal(t, "mtls.backends[0].conf", apiErr.InvalidParameters[0].Field)
	t.Logf("refusal: %s", apiErr.InvalidParameters[0].Reason)

	// With the CA in the mesh's secrets, the same document is accepted.
	certPEM, keyPEM, err := pki.GenerateCA("own", pki.CAOptions{}, time.Now())
	require.NoError(t, err)
	for name, data := range map[string][]byte{"own-ca-cert": certPEM, "own-ca-key": keyPEM} {
		mustPut(t, cp, "/meshes/own/secrets/"+name, fmt.Sprintf(`{"type":"Secret","data":%q}`, base64.StdEncoding.EncodeToString(data)))
	}
	mustPut(t, cp, "/meshes/own", provided)

	// A key that does not match the certificate is refused.
	_, otherKey, err := pki.GenerateCA("own", pki.CAOptions{}, time.Now())
	require.NoError(t, err)
	mustPut(t, cp, "/meshes/own/secrets/own-ca-key", fmt.Sprintf(`{"type":"Secret","data":%q}`, base64.StdEncoding.EncodeToString(otherKey)))
	res = cp.Do(http.MethodPut, "/meshes/own", []byte(provided))
	require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
	// skipValidation lets an operator save it anyway.
	mustPut(t, cp, "/meshes/own", `{"type":"Mesh","mtls":{"skipValidation":true,"enabledBackend":"mine","backends":[{"name":"mine","type":"provided","conf":{"cert":{"secret":"own-ca-cert"},"key":{"secret":"own-ca-key"}}}]}}`)
}
