package framework

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/atoll-mesh/atoll/pkg/xds/cache/adstest"
)

// DialDPServer returns a gRPC connection to the data-plane server, trusting
// the certificate the control plane generated in its work directory. It is
// closed when the test ends.
func (cp *ControlPlane) DialDPServer(t testing.TB) *grpc.ClientConn {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(cp.WorkDir, "dp-server.crt"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	conn, err := grpc.NewClient(cp.DPServer, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ConnectADS opens a SotW ADS stream on conn as the proxy nodeID
// ("<mesh>/<name>") with a dataplane token, asks for listeners and ACKs the
// first response, as a proxy starting would. The error is the one that
// ended the stream when it was refused.
func ConnectADS(ctx context.Context, conn grpc.ClientConnInterface, nodeID, token string) (*adstest.SotW, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	cl, err := adstest.NewSotW(ctx, conn, &corev3.Node{Id: nodeID})
	if err != nil {
		return nil, err
	}
	if err := cl.Subscribe(resource.ListenerType); err != nil {
		return nil, err
	}
	resp, err := cl.Recv()
	if err != nil {
		return nil, err
	}
	return cl, cl.Ack(resp)
}
