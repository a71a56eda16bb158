package e2e

import (
	"context"
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

	ended := make(chan error, 1)
	go func() {
		_, err := web1.Recv()
		ended <- err
	}()
	select {
	case err := <-ended:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the revoked proxy's stream is still open 5 s after the revocation")
	}
	_, err = connect("web-1", tok1)
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "revoked")

	// web-2 is still connected: its stream answers a new subscription.
	require.NoError(t, web2.Subscribe(resource.ClusterType))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_, err := web2.Recv()
		got <- err
	}()
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("web-2 got no answer on its stream")
	}
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
	ended := make(chan error, 1)
	go func() {
		_, err := proxy.Recv()
		ended <- err
	}()
	select {
	case err := <-ended:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the proxy of the deleted dataplane is still connected 5 s later")
	}
	_, err = framework.ConnectADS(t.Context(), cp.DialDPServer(t), "default/web-1", tok)
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "create it first")
}
