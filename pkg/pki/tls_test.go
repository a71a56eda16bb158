package pki_test

import (
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/pki"
)

// liveCA is a CA valid now: TLS handshakes run on the real clock.
func liveCA(t *testing.T, mesh string) *pki.CA {
	t.Helper()
	return builtinCAAt(t, mesh, time.Now())
}

// workload is one mesh member's certificate and trust bundle.
type workload struct {
	mesh   string
	cert   *pki.WorkloadCert
	bundle []byte
}

func newWorkload(t *testing.T, ca *pki.CA, service string) workload {
	t.Helper()
	wc, err := ca.IssueWorkloadCert(pki.WorkloadRequest{Services: []string{service}}, time.Now())
	require.NoError(t, err)
	return workload{mesh: ca.Mesh(), cert: wc, bundle: ca.CertPEM()}
}

func (w workload) tlsConfig(t *testing.T, server bool) *tls.Config {
	t.Helper()
	cfg, err := pki.NewTLSConfig(pki.TLSOptions{
		Mesh: w.mesh, CertPEM: w.cert.CertPEM, KeyPEM: w.cert.KeyPEM,
		TrustBundlePEM: w.bundle, Server: server,
	})
	require.NoError(t, err)
	return cfg
}

// serverResult is what a loopback TLS server observed about its one client.
type serverResult struct {
	peer []pki.ID
	err  error
}

// serveOnce accepts one TLS connection, completes the handshake, echoes one
// line and reports the client's SPIFFE ids (or the handshake error).
func serveOnce(t *testing.T, cfg *tls.Config) (string, <-chan serverResult) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	out := make(chan serverResult, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			out <- serverResult{err: err}
			return
		}
		defer func() { _ = c.Close() }()
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			out <- serverResult{err: err}
			return
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(tc, buf); err != nil {
			out <- serverResult{err: err}
			return
		}
		_, _ = tc.Write(buf)
		out <- serverResult{peer: pki.PeerIDs(tc.ConnectionState())}
	}()
	return ln.Addr().String(), out
}

func TestMutualTLSWithinMesh(t *testing.T) {
	ca := liveCA(t, "mesh-a")
	web, backend := newWorkload(t, ca, "web"), newWorkload(t, ca, "backend")

	addr, res := serveOnce(t, backend.tlsConfig(t, true))
	conn, err := tls.Dial("tcp", addr, web.tlsConfig(t, false))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()

	_, err = conn.Write([]byte("hello"))
	require.NoError(t, err)
	buf := make([]byte, 5)
	_, err = io.ReadFull(conn, buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf))

	// The client sees the server's identity...
	require.Equal(t, []pki.ID{{Mesh: "mesh-a", Service: "backend"}}, pki.PeerIDs(conn.ConnectionState()))
	// ...and the server sees the client's.
	r := <-res
	require.NoError(t, r.err)
	require.Equal(t, []pki.ID{{Mesh: "mesh-a", Service: "web"}}, r.peer)
}

// A workload of mesh B cannot reach a server trusting only mesh A's CA.
// With TLS 1.3 the client's Handshake succeeds (the server checks the client
// certificate after the client has finished); the refusal shows on the
// client's first read.
func TestMutualTLSRejectsOtherMesh(t *testing.T) {
	caA, caB := liveCA(t, "mesh-a"), liveCA(t, "mesh-b")
	server := newWorkload(t, caA, "backend")
	intruder := newWorkload(t, caB, "web")
	// The intruder trusts mesh A's CA, so only the server's check can stop it.
	intruder.bundle = append(intruder.bundle, caA.CertPEM()...)
	intruder.mesh = "mesh-a"

	addr, res := serveOnce(t, server.tlsConfig(t, true))
	conn, err := tls.Dial("tcp", addr, intruder.tlsConfig(t, false))
	require.NoError(t, err, "TLS 1.3: the client's handshake completes before the server verifies it")
	defer func() { _ = conn.Close() }()
	require.Equal(t, uint16(tls.VersionTLS13), conn.ConnectionState().Version)

	// Read without writing first: data the server never reads could make
	// its close reset the connection and hide the alert.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 5))
	require.Error(t, err, "the first read carries the server's refusal")
	require.ErrorContains(t, err, "remote error: tls: bad certificate")

	r := <-res
	require.ErrorIs(t, r.err, pki.ErrUntrustedPeer)
	require.ErrorContains(t, r.err, "certificate signed by unknown authority")
}

// Even when two meshes share one provided CA, the SPIFFE trust domain keeps
// them apart.
func TestMutualTLSRejectsOtherMeshSameCA(t *testing.T) {
	key := ecKey(t)
	tmpl := caTemplate("shared")
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	certPEM, _ := sign(t, tmpl, key, nil, nil)
	caA, err := pki.LoadCA("mesh-a", certPEM, keyPEM(t, key), time.Now())
	require.NoError(t, err)
	caB, err := pki.LoadCA("mesh-b", certPEM, keyPEM(t, key), time.Now())
	require.NoError(t, err)
	server := newWorkload(t, caA, "backend")
	intruder := newWorkload(t, caB, "web")
	intruder.mesh = "mesh-b"

	addr, res := serveOnce(t, server.tlsConfig(t, true))
	conn, err := tls.Dial("tcp", addr, intruder.tlsConfig(t, false))
	// The intruder's own check already refuses the server of mesh A.
	require.ErrorContains(t, err, `no SPIFFE id of mesh "mesh-b"`)
	if conn != nil {
		_ = conn.Close()
	}
	r := <-res
	require.Error(t, r.err)

	// Dialling as a mesh-a client with a mesh-b certificate: the server refuses.
	intruder.mesh = "mesh-a"
	addr, res = serveOnce(t, server.tlsConfig(t, true))
	conn, err = tls.Dial("tcp", addr, intruder.tlsConfig(t, false))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	// Read without writing first: data the server never reads could make
	// its close reset the connection and hide the alert.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 5))
	require.Error(t, err)
	r = <-res
	require.ErrorContains(t, r.err, `no SPIFFE id of mesh "mesh-a"`)
}

// A client refuses a server of another mesh during its own handshake.
func TestClientRejectsServerOfOtherMesh(t *testing.T) {
	caA, caB := liveCA(t, "mesh-a"), liveCA(t, "mesh-b")
	addr, res := serveOnce(t, newWorkload(t, caB, "backend").tlsConfig(t, true))
	_, err := tls.Dial("tcp", addr, newWorkload(t, caA, "web").tlsConfig(t, false))
	require.ErrorIs(t, err, pki.ErrUntrustedPeer)
	require.Error(t, (<-res).err)
}

func TestAuthorizePeer(t *testing.T) {
	ca := liveCA(t, "mesh-a")
	server := newWorkload(t, ca, "backend")
	cfg, err := pki.NewTLSConfig(pki.TLSOptions{
		Mesh: "mesh-a", CertPEM: server.cert.CertPEM, KeyPEM: server.cert.KeyPEM, TrustBundlePEM: server.bundle,
		Server: true,
		AuthorizePeer: func(ids []pki.ID) error {
			if ids[0].Service != "web" {
				return errors.New("only web may call backend")
			}
			return nil
		},
	})
	require.NoError(t, err)
	addr, res := serveOnce(t, cfg)
	conn, err := tls.Dial("tcp", addr, newWorkload(t, ca, "batch").tlsConfig(t, false))
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	// Read without writing first: data the server never reads could make
	// its close reset the connection and hide the alert.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Read(make([]byte, 5))
	require.Error(t, err)
	require.ErrorContains(t, (<-res).err, "only web may call backend")
}

func TestNewTLSConfigRejectsBadInput(t *testing.T) {
	ca := liveCA(t, "mesh-a")
	w := newWorkload(t, ca, "web")
	_, err := pki.NewTLSConfig(pki.TLSOptions{Mesh: "mesh-a", CertPEM: w.cert.CertPEM, KeyPEM: keyPEM(t, ecKey(t)), TrustBundlePEM: w.bundle})
	require.ErrorContains(t, err, "loading workload certificate")
	_, err = pki.NewTLSConfig(pki.TLSOptions{Mesh: "mesh-a", CertPEM: w.cert.CertPEM, KeyPEM: w.cert.KeyPEM})
	require.ErrorContains(t, err, "trust bundle")
}
