package pki

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/atoll-mesh/atoll/api/dataplane"
)

// DefaultWorkloadLifetime is the lifetime of a workload certificate when the
// mesh backend sets no dpCert.rotation.expiration.
const DefaultWorkloadLifetime = 24 * time.Hour

// maxWorkloadBackdate bounds how far a workload certificate's NotBefore lies
// in the past, to absorb clock skew between the control plane and proxies.
// It is further limited to a tenth of the lifetime so that short-lived
// certificates still have a RenewAt in the future.
const maxWorkloadBackdate = 5 * time.Minute

// WorkloadRequest says what a workload certificate certifies.
type WorkloadRequest struct {
	// Services are the kuma.io/service values of the dataplane; each
	// becomes a spiffe://<mesh>/<service> URI SAN. At least one is required.
	Services []string
	// Tags are the dataplane's tags (see DataplaneTags); each value becomes a
	// kuma://<tag>/<value> URI SAN. Optional.
	Tags map[string][]string
	// Lifetime is how long the certificate is valid; 0 means
	// DefaultWorkloadLifetime.
	Lifetime time.Duration
	// KeyType is the algorithm of the workload's key; the zero value is
	// KeyECDSAP256.
	KeyType KeyType
}

// WorkloadCert is an issued workload certificate with its private key.
type WorkloadCert struct {
	// CertPEM is the leaf certificate followed by any intermediate CA
	// certificates, ready for a TLS server or client.
	CertPEM []byte
	// KeyPEM is the leaf's PKCS#8 private key.
	KeyPEM []byte
	// Leaf is the parsed leaf certificate.
	Leaf *x509.Certificate
}

// RenewAt returns when the certificate should be replaced.
func (w *WorkloadCert) RenewAt() time.Time { return RenewAt(w.Leaf) }

// RenewAt returns the moment a certificate should be replaced: NotBefore
// plus four fifths of its lifetime, as Kuma does. With the default 24 h
// lifetime that leaves ~4.8 h to deliver the new certificate.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life / 5 * 4)
}

// IssueWorkloadCert issues a certificate for a dataplane of the CA's mesh
// with a fresh private key. The certificate carries the SPIFFE id of every
// requested service (in request order, duplicates removed) and then the
// tag URIs (sorted), both serverAuth and clientAuth extended key usages (a
// workload is both, and gRPC checks each side), a NotBefore backdated by up
// to 5 minutes, and a NotAfter that never passes the CA's own.
func (ca *CA) IssueWorkloadCert(req WorkloadRequest, now time.Time) (*WorkloadCert, error) {
	wc, err := ca.issue(req, now)
	if err != nil {
		return nil, fmt.Errorf("issuing workload certificate in mesh %q for services %q: %w", ca.mesh, req.Services, err)
	}
	return wc, nil
}

func (ca *CA) issue(req WorkloadRequest, now time.Time) (*WorkloadCert, error) {
	life := req.Lifetime
	if life == 0 {
		life = DefaultWorkloadLifetime
	}
	if life < 0 {
		return nil, fmt.Errorf("lifetime %s must be positive", life)
	}
	if now.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("the mesh CA expired at %s", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	uris, err := workloadURIs(ca.mesh, req)
	if err != nil {
		return nil, err
	}
	key, err := GenerateKey(req.KeyType)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	backdate := min(maxWorkloadBackdate, life/10)
	notBefore, notAfter := now.Add(-backdate), now.Add(life)
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment // RSA key exchange in TLS 1.2
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{ca.mesh}},
		NotBefore:             notBefore.UTC(),
		NotAfter:              notAfter.UTC(),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(nil, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the issued certificate: %w", err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	var certPEM bytes.Buffer
	certPEM.Write(EncodeCertPEM(der))
	for _, raw := range ca.intermediates() {
		certPEM.Write(EncodeCertPEM(raw))
	}
	return &WorkloadCert{CertPEM: certPEM.Bytes(), KeyPEM: keyPEM, Leaf: leaf}, nil
}

// workloadURIs builds the URI SANs: SPIFFE ids first, then tag URIs.
func workloadURIs(mesh string, req WorkloadRequest) ([]*url.URL, error) {
	var uris []*url.URL
	seen := map[string]bool{}
	for _, svc := range req.Services {
		if svc == "" {
			return nil, errors.New("a service name is empty")
		}
		if seen[svc] {
			continue
		}
		seen[svc] = true
		u, err := ID{Mesh: mesh, Service: svc}.URL()
		if err != nil {
			return nil, err
		}
		uris = append(uris, u)
	}
	if len(uris) == 0 {
		return nil, errors.New("at least one service is required")
	}
	for _, tag := range slices.Sorted(maps.Keys(req.Tags)) {
		vals := slices.Clone(req.Tags[tag])
		slices.Sort(vals)
		for _, v := range slices.Compact(vals) {
			u, err := tagURI(tag, v)
			if err != nil {
				return nil, err
			}
			uris = append(uris, u)
		}
	}
	return uris, nil
}

// DataplaneTags returns every tag value of a dataplane's inbounds and
// gateway, per tag key, sorted and without duplicates: the tag set its
// workload certificate carries and its dataplane token is checked against.
func DataplaneTags(dp *dataplane.Spec) map[string][]string {
	tags := map[string][]string{}
	add := func(t map[string]string) {
		for k, v := range t {
			tags[k] = append(tags[k], v)
		}
	}
	for i := range dp.Networking.Inbound {
		add(dp.Networking.Inbound[i].Tags)
	}
	if gw := dp.Networking.Gateway; gw != nil {
		add(gw.Tags)
	}
	for k, vs := range tags {
		slices.Sort(vs)
		tags[k] = slices.Compact(vs)
	}
	return tags
}

// WorkloadRequestFor returns the request for a dataplane's workload
// certificate: its services and tags (see DataplaneTags). Lifetime and key
// type are left at their defaults.
func WorkloadRequestFor(dp *dataplane.Spec) WorkloadRequest {
	tags := DataplaneTags(dp)
	return WorkloadRequest{Services: tags[dataplane.ServiceTag], Tags: tags}
}
