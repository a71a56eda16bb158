// Package agent is atoll-dp's logic: it registers a dataplane with the
// control plane's data-plane server over api/bootstrap (HTTPS + JSON,
// "Authorization: Bearer <dataplane token>") and then runs its data plane.
//
// Lifecycle: New checks everything local (flags, token, dataplane file, CA
// file, Envoy executable, directories) and reports the first problem as one
// sentence naming the flag or file; Run serves the readiness endpoint and
// runs one of two modes until its context ends.
//
// # Envoy mode
//
// POST /bootstrap, write the answer to <config-dir>/bootstrap.json (0600:
// it may hold the token), then run Envoy with
//
//	-c <file> --drain-time-s <drain-time> --drain-strategy immediate --log-level <level> --disable-hot-restart
//
// Envoy's stdout and stderr pass through unchanged. An exit that was not
// asked for is restarted after Timing.RestartBackoff (1 s doubling to 30 s),
// which starts over once Envoy has stayed up Timing.RestartResetAfter (1
// min). When Run's context ends: readiness turns 503, POST
// /drain_listeners?graceful&inboundonly on Envoy's admin API (inbound
// listeners drain; outbound ones stay open so the application can finish
// work that calls other services), wait the drain time, SIGTERM, and SIGKILL
// after Timing.StopTimeout (10 s). Envoy runs in its own process group (a
// terminal's Ctrl-C reaches only the agent, which drains first) and, on
// Linux, receives SIGTERM from the kernel if the agent dies.
//
// # Proxyless mode
//
// POST /bootstrap with the absolute paths of cert.pem, key.pem and ca.pem
// in --certs-dir and of --ca-cert-file, then POST /certificate; write the
// CA bundle, key and certificate, then the gRPC bootstrap, then print
// "export GRPC_XDS_BOOTSTRAP=<file>" (the only line on stdout). The
// certificate is fetched again at its RenewAt less a random tenth of the
// wait (at most 5 min); failures are retried with Timing.RenewBackoff and
// logged as warnings, as errors in the second half of the renewal window,
// and as "EXPIRED" errors after expiry.
//
// Files are replaced atomically: each is written to a temporary file in
// the same directory, synced, given its mode and renamed over the old one,
// so a reader never sees a partial file. The three files are all staged
// before the first rename and renamed back to back (CA bundle, key,
// certificate), so a reader can see a mismatched pair only if it reads the
// certificate before the last rename and the key after the one before it.
// gRPC-Go's file_watcher (credentials/tls/certprovider/pemfile, v1.85)
// reads the certificate, then the key, every refresh_interval (10 min by
// default) and passes them to tls.X509KeyPair; a mismatched or unreadable
// pair is logged and skipped, the previous key material stays in use, and
// the next refresh picks up the matching pair. Renewing at 4/5 of the
// lifetime leaves hours for that. A symlinked-directory swap would not do
// better: the reader still opens two paths at two moments.
//
// # Readiness
//
// GET /ready answers 200 "READY" when the data plane is ready and 503 "NOT
// READY: <reason>" otherwise: in Envoy mode when Envoy runs, is not
// draining and its admin /ready says LIVE; in proxyless mode once the
// bootstrap and a certificate that has not expired are written.
package agent
