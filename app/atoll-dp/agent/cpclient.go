package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/version"
)

// maxErrorBody bounds how much of a refusal's body is read.
const maxErrorBody = 64 << 10

// RefusedError is a control plane's refusal (HTTP 4xx) of a request, with
// the message it gave. Such requests are not retried.
type RefusedError struct {
	// Op names the request: "bootstrap" or "certificate".
	Op string
	// Status is the HTTP status code.
	Status int
	// Message is the control plane's explanation.
	Message string
}

// Error reads as a sentence an operator can act on.
func (e *RefusedError) Error() string {
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		return "the control plane refused the dataplane token: " + e.Message
	}
	return fmt.Sprintf("the control plane refused the %s request (HTTP %d): %s", e.Op, e.Status, e.Message)
}

// transientError is a failure worth retrying: the control plane could not
// be reached or answered 5xx, 408 or 429.
type transientError struct {
	unreachable bool
	err         error
}

// Error returns the underlying message.
func (e *transientError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e *transientError) Unwrap() error { return e.err }

// cpClient speaks api/bootstrap to the control plane's data-plane server.
type cpClient struct {
	addr    cpAddress
	http    *http.Client
	tokens  tokenSource
	caFile  string
	agent   string
	timeout time.Duration
	backoff Backoff
	logger  *slog.Logger
}

// newCPClient returns a client trusting only the CA certificates of caFile,
// or trusting anything when insecure.
func newCPClient(addr cpAddress, caFile string, insecure bool, tokens tokenSource, timing Timing, logger *slog.Logger) (*cpClient, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		tlsConf.InsecureSkipVerify = true
	} else {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the control plane's CA certificate (--ca-cert-file): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-cert-file %s holds no PEM certificate", caFile)
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	return &cpClient{
		addr:    addr,
		http:    &http.Client{Transport: tr},
		tokens:  tokens,
		caFile:  caFile,
		agent:   "atoll-dp/" + version.Get().Version,
		timeout: timing.RequestTimeout,
		backoff: timing.ConnectBackoff,
		logger:  logger,
	}, nil
}

// bootstrap posts req to /bootstrap, retrying transient failures for up to
// retryFor.
func (c *cpClient) bootstrap(ctx context.Context, req *bootstrap.Request, retryFor time.Duration) (*bootstrap.Response, error) {
	var resp bootstrap.Response
	if err := c.call(ctx, "bootstrap", bootstrap.BootstrapPath, req, &resp, retryFor); err != nil {
		return nil, err
	}
	if len(resp.Bootstrap) == 0 {
		return nil, errors.New("the control plane answered the bootstrap request without a bootstrap document")
	}
	return &resp, nil
}

// certificate posts req to /certificate, retrying transient failures for
// up to retryFor.
func (c *cpClient) certificate(ctx context.Context, req *bootstrap.CertificateRequest, retryFor time.Duration) (*bootstrap.CertificateResponse, error) {
	var resp bootstrap.CertificateResponse
	if err := c.call(ctx, "certificate", bootstrap.CertificatePath, req, &resp, retryFor); err != nil {
		return nil, err
	}
	return &resp, nil
}

// call makes one request, retrying transient failures with backoff until
// retryFor has passed.
func (c *cpClient) call(ctx context.Context, op, path string, in, out any, retryFor time.Duration) error {
	start := time.Now()
	var delay time.Duration
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, op, path, in, out)
		var transient *transientError
		if err == nil || !errors.As(err, &transient) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s request to the control plane at %s: %w", op, c.addr.base, ctx.Err())
		}
		if retryFor <= 0 {
			return fmt.Errorf("%s request to the control plane at %s: %w", op, c.addr.base, err)
		}
		delay = c.backoff.next(delay)
		wait := c.backoff.spread(delay)
		left := retryFor - time.Since(start)
		if left <= 0 {
			if transient.unreachable {
				return fmt.Errorf("the control plane at %s is unreachable after %s (%d attempts): %w", c.addr.base, roundDuration(retryFor), attempt, err)
			}
			return fmt.Errorf("the control plane at %s failed the %s request after %s (%d attempts): %w", c.addr.base, op, roundDuration(retryFor), attempt, err)
		}
		wait = min(wait, left)
		c.logger.Warn("control plane request failed; retrying", "request", op, "attempt", attempt, "retryIn", wait.Round(time.Millisecond), "error", err)
		if !sleep(ctx, wait) {
			return fmt.Errorf("%s request to the control plane at %s: %w", op, c.addr.base, ctx.Err())
		}
	}
}

// once makes a single request and classifies its failure.
func (c *cpClient) once(ctx context.Context, op, path string, in, out any) error {
	token, err := c.tokens.get()
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding the %s request: %w", op, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.addr.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building the %s request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.classify(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("the control plane's answer to the %s request is not valid JSON: %w", op, err)
		}
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests:
		msg, _ := errorMessage(resp)
		return &transientError{err: fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)}
	default:
		msg, fromAtoll := errorMessage(resp)
		if resp.StatusCode == http.StatusNotFound && !fromAtoll {
			msg += fmt.Sprintf(" (is %s the control plane's data-plane server, port 5678 by default?)", c.addr.base)
		}
		return &RefusedError{Op: op, Status: resp.StatusCode, Message: msg}
	}
}

// classify turns a transport error into a permanent error (TLS problems,
// which no retry fixes) or a transientError.
func (c *cpClient) classify(err error) error {
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &verr):
		// Drop x509's "(possibly because of … candidate authority …)" aside.
		reason, _, _ := strings.Cut(verr.Err.Error(), " (possibly because")
		return fmt.Errorf("TLS verification of the control plane at %s failed with the CA in %s: %s", c.addr.base, c.caFile, reason)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"),
		strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return fmt.Errorf("the control plane at %s does not speak TLS on that port: --cp-address must name the data-plane server (port 5678 by default)", c.addr.base)
	}
	return &transientError{unreachable: true, err: err}
}

// errorMessage reads the explanation of a refusal: api/bootstrap.Error's
// message (the second result is then true), or else the body's first line,
// or else the status text.
func errorMessage(resp *http.Response) (string, bool) {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e bootstrap.Error
	if json.Unmarshal(b, &e) == nil && strings.TrimSpace(e.Message) != "" {
		return strings.TrimSpace(e.Message), true
	}
	text := strings.TrimSpace(string(b))
	if line, _, _ := strings.Cut(text, "\n"); line != "" {
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		return line, false
	}
	return http.StatusText(resp.StatusCode), false
}
