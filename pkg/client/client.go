// Package client talks to Atoll's REST API (Kuma's dialect) for the types of
// a resource registry: the index, type metadata, and get/list/put/delete of
// resources, with server errors parsed into *APIError.
//
// The client is built from a registry value, so it knows every type the
// caller bundles: paths come from the descriptors (Mesh at /meshes/{name},
// global types at /{path}/{name}, mesh-scoped types at
// /meshes/{mesh}/{path}/{name}).
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/atoll-mesh/atoll/pkg/resource"
)

// DefaultAddress is where a local control plane serves its REST API.
const DefaultAddress = "http://localhost:5681"

// maxResponseBytes bounds how much of a response body is read (a list page
// of 1000 large resources fits comfortably).
const maxResponseBytes = 256 << 20

// Authenticator adds credentials to a request. It is the extension point for
// the authentication schemes the control plane will accept.
type Authenticator interface {
	// Authenticate sets the credentials of req, for example its
	// Authorization header.
	Authenticate(req *http.Request) error
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(req *http.Request) error

// Authenticate calls f(req).
func (f AuthenticatorFunc) Authenticate(req *http.Request) error { return f(req) }

// BearerToken returns an Authenticator sending "Authorization: Bearer token".
func BearerToken(token string) Authenticator {
	return AuthenticatorFunc(func(req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	})
}

// Options configure a Client.
type Options struct {
	// Address is the base URL of the REST API, for example
	// "http://localhost:5681" or "https://cp.example.com:5682/prefix".
	// Empty means DefaultAddress.
	Address string
	// Auth adds credentials to every request; nil sends none.
	Auth Authenticator
	// Headers are added to every request.
	Headers map[string]string
	// CACert is a PEM bundle of CAs trusted for an https address, in
	// addition to the system pool.
	CACert []byte
	// InsecureSkipVerify accepts any server certificate. For development only.
	InsecureSkipVerify bool
	// Timeout bounds each request, including reading the body; 0 means none.
	Timeout time.Duration
	// UserAgent is sent on every request; empty means "atoll-client (os; arch)".
	UserAgent string
	// HTTPClient, when set, is used as is: CACert, InsecureSkipVerify and
	// Timeout are then ignored. Tests use it to inject a transport.
	HTTPClient *http.Client
}

// Client is a REST client for one control plane. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	reg     *resource.Registry
	http    *http.Client
	auth    Authenticator
	headers map[string]string
	agent   string
}

// New returns a client for the control plane at opts.Address that knows the
// types of reg.
func New(reg *resource.Registry, opts Options) (*Client, error) {
	if reg == nil {
		return nil, errors.New("client: a resource registry is required")
	}
	base, err := ParseAddress(opts.Address)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc, err = newHTTPClient(opts)
		if err != nil {
			return nil, err
		}
	}
	agent := opts.UserAgent
	if agent == "" {
		agent = fmt.Sprintf("atoll-client (%s; %s)", runtime.GOOS, runtime.GOARCH)
	}
	return &Client{base: base, reg: reg, http: hc, auth: opts.Auth, headers: opts.Headers, agent: agent}, nil
}

// ParseAddress checks a control-plane address and returns it as a URL: an
// http or https scheme, a host, and no query or fragment. Empty means
// DefaultAddress.
func ParseAddress(address string) (*url.URL, error) {
	if address == "" {
		address = DefaultAddress
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("invalid control plane address %q: %w", address, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid control plane address %q: the scheme must be http or https", address)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid control plane address %q: a host is required", address)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid control plane address %q: it must not have a query or fragment", address)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func newHTTPClient(opts Options) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(opts.CACert) > 0 || opts.InsecureSkipVerify {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify} //nolint:gosec // explicit user choice
		if len(opts.CACert) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(opts.CACert) {
				return nil, errors.New("client: the CA certificate holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, Timeout: opts.Timeout}, nil
}

// Address returns the base URL the client talks to.
func (c *Client) Address() string { return c.base.String() }

// Registry returns the types the client knows.
func (c *Client) Registry() *resource.Registry { return c.reg }

// ConnectionError says that the control plane could not be reached at all
// (no HTTP answer): refused connection, DNS failure, TLS failure, timeout.
type ConnectionError struct {
	// Address is the control plane's base URL.
	Address string
	// Err is the transport's error.
	Err error
}

// Error names the address that could not be reached.
func (e *ConnectionError) Error() string {
	return fmt.Sprintf("could not reach the control plane at %s: %v", e.Address, e.Err)
}

// Unwrap returns the transport's error.
func (e *ConnectionError) Unwrap() error { return e.Err }

// request is one call to the API.
type request struct {
	method string
	path   string // below the base path, starting with "/"
	query  url.Values
	body   []byte
	header http.Header
}

// response is a complete answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// endpoint returns the absolute URL of path below the base.
func (c *Client) endpoint(path string, query url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = query.Encode()
	return u.String()
}

// do sends r and reads the whole answer. Answers of 400 and above become
// *APIError; transport failures become *ConnectionError.
func (c *Client) do(ctx context.Context, r request) (response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	target := c.endpoint(r.path, r.query)
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return response{}, fmt.Errorf("building request %s %s: %w", r.method, target, err)
	}
	req.Header.Set("User-Agent", c.agent)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.auth != nil {
		if err := c.auth.Authenticate(req); err != nil {
			return response{}, fmt.Errorf("authenticating request to %s: %w", c.base, err)
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return response{}, &ConnectionError{Address: c.base.String(), Err: ctxErr}
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return response{}, &ConnectionError{Address: c.base.String(), Err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
	if err != nil {
		return response{}, &ConnectionError{Address: c.base.String(), Err: fmt.Errorf("reading the answer to %s %s: %w", r.method, req.URL.Path, err)}
	}
	out := response{status: res.StatusCode, header: res.Header, body: b}
	if res.StatusCode >= 400 {
		return out, parseAPIError(r.method, target, res.StatusCode, b)
	}
	return out, nil
}
