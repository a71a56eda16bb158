package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// ALPN protocol ids.
const (
	alpnH2     = "h2"
	alpnHTTP11 = "http/1.1"
)

// http2Preface is what every HTTP/2 client sends first.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// handshakeTimeout bounds a TLS handshake and the protocol sniffing after it.
const handshakeTimeout = 10 * time.Second

// router accepts TCP connections on one listener, terminates TLS, and hands
// each connection to the gRPC server (xDS) or the HTTP server (bootstrap and
// certificate endpoints). The choice is made during the TLS handshake from
// the protocols the client offers (ALPN):
//
//   - a client offering http/1.1 is an HTTP client (curl, Go's net/http,
//     atoll-dp): it is answered with http/1.1 and served by net/http;
//   - a client offering only h2 is a gRPC client (gRPC-Go, Envoy's gRPC
//     client; both offer exactly "h2"): it is served by the native gRPC
//     server, which is faster and lighter than grpc.Server.ServeHTTP;
//   - a client offering no ALPN at all is told apart by its first bytes:
//     the HTTP/2 connection preface means gRPC, anything else HTTP/1.
//
// So no byte of an HTTP/2 stream has to be parsed, and each server sees a
// plain *tls.Conn.
type router struct {
	log       *slog.Logger
	tlsConfig *tls.Config
	grpc      *chanListener
	http      *chanListener

	// open holds the gRPC connections by remote address, so that the
	// server can end the streams of a proxy whose token stopped being
	// valid: a stream blocked reading its next request has no other end.
	mu   sync.Mutex
	open map[string]*trackedConn
}

func newRouter(log *slog.Logger, base *tls.Config, addr net.Addr) *router {
	grpcCfg := base.Clone()
	grpcCfg.NextProtos = []string{alpnH2}
	httpCfg := base.Clone()
	httpCfg.NextProtos = []string{alpnHTTP11}
	cfg := base.Clone()
	cfg.NextProtos = nil
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		switch {
		case slices.Contains(hello.SupportedProtos, alpnHTTP11):
			return httpCfg, nil
		case slices.Contains(hello.SupportedProtos, alpnH2):
			return grpcCfg, nil
		}
		return nil, nil
	}
	return &router{log: log, tlsConfig: cfg, grpc: newChanListener(addr), http: newChanListener(addr), open: map[string]*trackedConn{}}
}

// trackedConn is a gRPC connection the router can close.
type trackedConn struct {
	net.Conn
	r    *router
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.r.mu.Lock()
		if c.r.open[c.RemoteAddr().String()] == c {
			delete(c.r.open, c.RemoteAddr().String())
		}
		c.r.mu.Unlock()
	})
	return c.Conn.Close()
}

func (r *router) track(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, r: r}
	r.mu.Lock()
	r.open[c.RemoteAddr().String()] = tc
	r.mu.Unlock()
	return tc
}

// closeConn closes the gRPC connection from remote; false when there is
// none.
func (r *router) closeConn(remote string) bool {
	r.mu.Lock()
	c := r.open[remote]
	r.mu.Unlock()
	if c == nil {
		return false
	}
	_ = c.Close()
	return true
}

// serve accepts connections from ln until ctx ends or ln fails.
func (r *router) serve(ctx context.Context, ln net.Listener) error {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				r.log.Warn("accepting a data-plane connection failed; retrying", "error", err, "in", delay)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return err
		}
		delay = 0
		go r.route(ctx, c)
	}
}

// route completes the TLS handshake of raw and hands it to a server.
func (r *router) route(ctx context.Context, raw net.Conn) {
	tc := tls.Server(raw, r.tlsConfig)
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		r.log.Debug("TLS handshake with a data-plane client failed", "remote", raw.RemoteAddr().String(), "error", err)
		_ = raw.Close()
		return
	}
	var conn net.Conn = tc
	target := r.http
	switch tc.ConnectionState().NegotiatedProtocol {
	case alpnH2:
		target = r.grpc
	case alpnHTTP11:
	default:
		isH2, sniffed, err := sniffPreface(tc)
		if err != nil {
			r.log.Debug("reading the first bytes of a data-plane connection failed", "remote", raw.RemoteAddr().String(), "error", err)
			_ = tc.Close()
			return
		}
		conn = &prefixConn{Conn: tc, prefix: sniffed}
		if isH2 {
			target = r.grpc
		}
	}
	if target == r.grpc {
		conn = r.track(conn)
	}
	if !target.put(ctx, conn) {
		_ = conn.Close()
	}
}

// sniffPreface reads until the bytes read either are the HTTP/2 preface or
// cannot become it, and returns them.
func sniffPreface(c net.Conn) (bool, []byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return false, nil, err
	}
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, len(http2Preface))
	for len(buf) < len(http2Preface) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if !bytes.HasPrefix(http2Preface, buf) {
			return false, buf, nil
		}
		if err != nil {
			return false, buf, err
		}
	}
	return true, buf, nil
}

// prefixConn replays bytes already read before reading from Conn.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// Read returns the replayed bytes first.
func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// ConnectionState exposes the TLS state to net/http.
func (c *prefixConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

// chanListener is a net.Listener fed by the router.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

// put hands c to the server accepting on l; false when l is closed.
func (l *chanListener) put(ctx context.Context, c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	case <-ctx.Done():
		return false
	}
}

// Accept returns the next routed connection.
func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr is the address of the real listener.
func (l *chanListener) Addr() net.Addr { return l.addr }
