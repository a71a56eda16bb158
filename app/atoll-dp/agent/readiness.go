package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ReadyPath is the readiness endpoint's path.
const ReadyPath = "/ready"

// readinessCheck returns nil when the data plane is ready, or why it is not.
type readinessCheck func(ctx context.Context) error

// listenReadiness binds the readiness endpoint early, so that a port
// conflict is reported before anything else happens.
func listenReadiness(address string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(address, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot serve the readiness endpoint on %s (--readiness-address, --ready-port): %w", addr, err)
	}
	return ln, nil
}

// serveReadiness answers GET /ready on ln until ctx ends: 200 "READY" when
// check passes, 503 "NOT READY: <reason>" otherwise.
func serveReadiness(ctx context.Context, ln net.Listener, check readinessCheck, timeout time.Duration, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, r *http.Request) {
		cctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := check(cctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "NOT READY: %v\n", err)
			return
		}
		_, _ = fmt.Fprintln(w, "READY")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Info("readiness endpoint listening", "address", ln.Addr().String(), "path", ReadyPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("readiness endpoint: %w", err)
	}
}
