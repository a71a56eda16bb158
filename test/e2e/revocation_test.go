package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
	"github.com/atoll-mesh/atoll/test/framework"
)

// TestRevokedTokenCutsOffAConnectedProxy: revoking the token of a proxy
// that is connected ends its xDS stream at once, through the REST API of
// the real control plane, and its reconnection is refused with the reason;
// a proxy of the same mesh with another token keeps its stream.
func TestRevokedTokenCutsOffAConnectedProxy(t *testing.T) {
	cp := framework.StartControlPlane(t, &bins)
	mustPut(t, cp, "/meshes/tok", `{"type":"Mesh"}`)
	for _, name := range []string{"web-1", "web-2"} {
		mustPut(t, cp, "/meshes/tok/dataplanes/"+name, fmt.Sprintf(`{"type":"Dataplane","mesh":"tok","name":%q,
			"networking":{"address":"127.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`, name))
	}
	tok1, tok2 := token(t, cp, "tok", "web-1"), token(t, cp, "tok", "web-2")

	connect := func(name, tok string) (*adstest.SotW, error) {
		return framework.ConnectADS(t.Context(), cp.DialDPServer(t), "tok/"+name, tok)
	}
	web1, err := connect("web-1", tok1)
	require.NoError(t, err)
	web2, err := connect("web-2", tok2)
	require.NoError(t, err)

	res := cp.Do(http.MethodPost, "/tokens/dataplane/revoke", fmt.Appendf(nil, `{"token":%q}`, tok1))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)

	require.Error(t, nextRecv(t, web1, 5*time.Second), "the revoked proxy's stream ends")
	_, err = connect("web-1", tok1)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "revoked")

	// web-2 is still connected: its stream answers a new subscription.
	require.NoError(t, web2.Subscribe(resource.ClusterType))
	require.NoError(t, nextRecv(t, web2, 5*time.Second), "web-2 is answered on its stream")
	require.Contains(t, cp.Logs(), "ended xDS streams whose dataplane token is no longer valid")
}

// TestDeletedDataplaneCutsOffItsProxy: deleting a dataplane through the API
// ends its proxy's stream at once; the proxy's reconnection is told to
// create it first.
func TestDeletedDataplaneCutsOffItsProxy(t *testing.T) {
	cp := framework.StartControlPlane(t, &bins)
	mustPut(t, cp, "/meshes/default/dataplanes/web-1", `{"type":"Dataplane","mesh":"default","name":"web-1",
		"networking":{"address":"127.0.0.1","inbound":[{"port":8080,"tags":{"kuma.io/service":"web"}}]}}`)
	tok := token(t, cp, "default", "web-1")
	proxy, err := framework.ConnectADS(t.Context(), cp.DialDPServer(t), "default/web-1", tok)
	require.NoError(t, err)

	res := cp.Do(http.MethodDelete, "/meshes/default/dataplanes/web-1", nil)
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	require.Error(t, nextRecv(t, proxy, 5*time.Second), "the proxy of the deleted dataplane is cut off")
	_, err = framework.ConnectADS(t.Context(), cp.DialDPServer(t), "default/web-1", tok)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "create it first")
}

// nextRecv waits up to within for the next response on cl and returns the
// error it brought (nil for a response); the test fails when nothing comes.
func nextRecv(t *testing.T, cl *adstest.SotW, within time.Duration) error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		_, err := cl.Recv()
		got <- err
	}()
	select {
	case err := <-got:
		return err
	case <-time.After(within):
		t.Fatalf("nothing on the stream within %s", within)
		return nil
	}
}
