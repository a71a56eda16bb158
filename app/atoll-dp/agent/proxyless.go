package agent

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/pki"
)

// Names of the files the agent keeps in --certs-dir.
const (
	// CertFileName holds the workload certificate chain, leaf first (0644).
	CertFileName = "cert.pem"
	// KeyFileName holds the workload certificate's private key (0600).
	KeyFileName = "key.pem"
	// CABundleFileName holds the mesh's trusted CA certificates (0644).
	CABundleFileName = "ca.pem"
)

// identity is a checked workload certificate.
type identity struct {
	resp     *bootstrap.CertificateResponse
	notAfter time.Time
	renewAt  time.Time
}

// checkIdentity refuses a certificate answer a gRPC application could not
// use: a chain that does not parse, a key that is not the leaf's, a leaf
// that does not chain to the CA bundle or is not valid now.
func checkIdentity(resp *bootstrap.CertificateResponse, now time.Time) (*identity, error) {
	chain, err := pki.ParseCertsPEM([]byte(resp.CertificateChain))
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("the certificate chain does not parse: %v", err)
	}
	key, err := pki.ParseKeyPEM([]byte(resp.PrivateKey))
	if err != nil {
		return nil, fmt.Errorf("the private key does not parse: %w", err)
	}
	leaf := chain[0]
	if !pki.KeyMatchesCert(key, leaf) {
		return nil, errors.New("the private key does not belong to the certificate")
	}
	cas, err := pki.ParseCertsPEM([]byte(resp.CABundle))
	if err != nil || len(cas) == 0 {
		return nil, fmt.Errorf("the CA bundle does not parse: %v", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("the certificate does not verify against the CA bundle: %w", err)
	}
	renewAt := resp.RenewAt
	if renewAt.IsZero() || !renewAt.Before(leaf.NotAfter) {
		renewAt = pki.RenewAt(leaf)
	}
	return &identity{resp: resp, notAfter: leaf.NotAfter, renewAt: renewAt}, nil
}

// proxylessRunner writes a proxyless gRPC application's xDS bootstrap and
// keeps its workload certificate files fresh.
type proxylessRunner struct {
	cp           *cpClient
	request      *bootstrap.Request
	paths        bootstrap.ProxylessPaths
	bootstrapOut string
	retryFor     time.Duration
	renewBackoff Backoff
	stdout       io.Writer
	logger       *slog.Logger

	mu       sync.Mutex
	written  bool
	notAfter time.Time
}

// proxylessPaths returns the absolute paths of the files the gRPC
// bootstrap refers to.
func proxylessPaths(certsDir, serverCAFile string) (bootstrap.ProxylessPaths, error) {
	dir, err := filepath.Abs(certsDir)
	if err != nil {
		return bootstrap.ProxylessPaths{}, fmt.Errorf("--certs-dir: %w", err)
	}
	ca, err := filepath.Abs(serverCAFile)
	if err != nil {
		return bootstrap.ProxylessPaths{}, fmt.Errorf("--ca-cert-file: %w", err)
	}
	return bootstrap.ProxylessPaths{
		CertificateFile: filepath.Join(dir, CertFileName),
		PrivateKeyFile:  filepath.Join(dir, KeyFileName),
		CABundleFile:    filepath.Join(dir, CABundleFileName),
		ServerCAFile:    ca,
	}, nil
}

// run fetches the bootstrap and the first certificate, writes them (the
// certificate first, so that the application never starts without it),
// prints the line the application needs, and then renews the certificate
// until ctx ends.
func (p *proxylessRunner) run(ctx context.Context) error {
	resp, err := p.cp.bootstrap(ctx, p.request, p.retryFor)
	if err != nil {
		return err
	}
	if !json.Valid(resp.Bootstrap) {
		return errors.New("the control plane's gRPC bootstrap is not valid JSON")
	}
	creq := &bootstrap.CertificateRequest{Mesh: p.request.Mesh, Name: p.request.Name}
	cresp, err := p.cp.certificate(ctx, creq, p.retryFor)
	if err != nil {
		return err
	}
	id, err := checkIdentity(cresp, time.Now())
	if err != nil {
		return fmt.Errorf("the control plane's workload certificate is unusable: %w", err)
	}
	if err := p.writeIdentity(id); err != nil {
		return err
	}
	if err := writeFileAtomic(p.bootstrapOut, resp.Bootstrap, 0o600); err != nil {
		return err
	}
	p.logger.Info("gRPC xDS bootstrap written", "file", p.bootstrapOut, "nodeId", resp.NodeID)
	if _, err := fmt.Fprintf(p.stdout, "export GRPC_XDS_BOOTSTRAP=%s\n", p.bootstrapOut); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	// Ready only now: whoever waits for readiness finds the line printed.
	p.mu.Lock()
	p.written = true
	p.mu.Unlock()
	for {
		wait := untilRenewal(id, time.Now())
		p.logger.Info("workload certificate in place", "dir", filepath.Dir(p.paths.CertificateFile),
			"notAfter", id.notAfter.UTC().Format(time.RFC3339), "renewIn", roundDuration(wait))
		if !sleep(ctx, wait) {
			return nil
		}
		if id = p.renew(ctx, creq, id); id == nil {
			return nil
		}
	}
}

// untilRenewal is the wait before renewing id: until its RenewAt, less a
// random tenth of that wait (at most five minutes) so that agents whose
// certificates were issued together do not all call at once.
func untilRenewal(id *identity, now time.Time) time.Duration {
	wait := id.renewAt.Sub(now)
	if wait <= 0 {
		return 0
	}
	jitter := min(wait/10, 5*time.Minute)
	if jitter > 0 {
		wait -= rand.N(jitter)
	}
	return wait
}

// renew fetches a new certificate, retrying with backoff until it succeeds
// or ctx ends (nil). Failures are logged as warnings, as errors once the
// current certificate is in the second half of its renewal window, and as
// errors saying so once it has expired.
func (p *proxylessRunner) renew(ctx context.Context, creq *bootstrap.CertificateRequest, current *identity) *identity {
	var delay time.Duration
	for attempt := 1; ; attempt++ {
		resp, err := p.cp.certificate(ctx, creq, 0)
		if err == nil {
			var id *identity
			if id, err = checkIdentity(resp, time.Now()); err != nil {
				err = fmt.Errorf("the control plane's workload certificate is unusable: %w", err)
			} else if err = p.writeIdentity(id); err == nil {
				p.logger.Info("workload certificate renewed", "attempt", attempt)
				return id
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		delay = p.renewBackoff.next(delay)
		wait := p.renewBackoff.spread(delay)
		left := time.Until(current.notAfter)
		attrs := []any{"attempt", attempt, "error", err, "retryIn", wait.Round(time.Millisecond)}
		switch {
		case left <= 0:
			p.logger.Error("workload certificate EXPIRED and could not be renewed: the application's mTLS connections fail until it is",
				append(attrs, "expiredAt", current.notAfter.UTC().Format(time.RFC3339))...)
		case left < current.notAfter.Sub(current.renewAt)/2:
			p.logger.Error("workload certificate expires soon and could not be renewed",
				append(attrs, "expiresIn", roundDuration(left))...)
		default:
			p.logger.Warn("could not renew the workload certificate; retrying",
				append(attrs, "expiresIn", roundDuration(left))...)
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// writeIdentity replaces the certificate files. Each file is replaced
// atomically, all three staged before any is renamed (see
// writeFilesAtomic); the CA bundle goes first, so that a certificate from
// a new CA is trusted before it is presented, then the key, then the
// certificate. A reader that loads the pair between the last two renames
// sees the new key with the old certificate; gRPC's file_watcher (and any
// reader using tls.X509KeyPair) rejects such a pair and keeps the previous
// one until its next refresh.
func (p *proxylessRunner) writeIdentity(id *identity) error {
	if err := writeFilesAtomic(
		fileContent{path: p.paths.CABundleFile, data: []byte(id.resp.CABundle), mode: 0o644},
		fileContent{path: p.paths.PrivateKeyFile, data: []byte(id.resp.PrivateKey), mode: 0o600},
		fileContent{path: p.paths.CertificateFile, data: []byte(id.resp.CertificateChain), mode: 0o644},
	); err != nil {
		return err
	}
	p.mu.Lock()
	p.notAfter = id.notAfter
	p.mu.Unlock()
	return nil
}

// check is the readiness check of proxyless mode: the bootstrap and a
// certificate that has not expired are in place.
func (p *proxylessRunner) check(context.Context) error {
	p.mu.Lock()
	written, notAfter := p.written, p.notAfter
	p.mu.Unlock()
	switch {
	case !written:
		return errors.New("the gRPC bootstrap and workload certificate are not written yet")
	case !time.Now().Before(notAfter):
		return fmt.Errorf("the workload certificate expired at %s", notAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// roundDuration keeps a logged duration readable: whole seconds above a
// minute, milliseconds below.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Minute || d <= -time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
