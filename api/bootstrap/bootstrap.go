// Package bootstrap holds the wire types between atoll-dp and the control
// plane's data-plane server (port 5678): the bootstrap request that
// registers a proxy and returns its proxy configuration bootstrap, and the
// certificate request through which a proxyless workload's agent keeps its
// workload certificate fresh.
//
// Both are JSON over HTTPS, authenticated by the dataplane token in an
// "Authorization: Bearer <token>" header.
package bootstrap

import (
	"encoding/json"
	"time"
)

// Paths of the data-plane server's HTTP endpoints.
const (
	// BootstrapPath answers a Request with a Response.
	BootstrapPath = "/bootstrap"
	// CertificatePath answers a CertificateRequest with a CertificateResponse.
	CertificatePath = "/certificate"
)

// Proxy types.
const (
	// ProxyEnvoy is an Envoy sidecar run by atoll-dp.
	ProxyEnvoy = "envoy"
	// ProxyProxyless is a gRPC application using its own xDS client.
	ProxyProxyless = "proxyless"
)

// Request is the body of POST /bootstrap.
type Request struct {
	// Mesh of the dataplane.
	Mesh string `json:"mesh"`
	// Name of the dataplane.
	Name string `json:"name"`
	// ProxyType is "envoy" or "proxyless".
	ProxyType string `json:"proxyType"`
	// Dataplane is the Dataplane resource in universal JSON, when atoll-dp
	// was given --dataplane-file; the control plane registers it. Empty when
	// the dataplane was created beforehand.
	Dataplane string `json:"dataplane,omitempty"`
	// AdminPort is Envoy's admin port (Envoy only).
	AdminPort uint32 `json:"adminPort,omitempty"`
	// Version reports the agent's and the proxy's versions.
	Version Version `json:"version"`
	// XDSServer is the control-plane address ("host:port") the agent was
	// given; the bootstrap points the proxy's xDS client at it.
	XDSServer string `json:"xdsServer"`
	// Proxyless holds the local paths a gRPC bootstrap must point at
	// (proxyless only).
	Proxyless *ProxylessPaths `json:"proxyless,omitempty"`
}

// ProxylessPaths are files on the workload's host that atoll-dp keeps
// fresh and the gRPC xDS bootstrap refers to.
type ProxylessPaths struct {
	// CertificateFile holds the workload certificate chain (PEM).
	CertificateFile string `json:"certificateFile"`
	// PrivateKeyFile holds its key (PEM).
	PrivateKeyFile string `json:"privateKeyFile"`
	// CABundleFile holds the mesh's trusted CAs (PEM).
	CABundleFile string `json:"caBundleFile"`
	// ServerCAFile holds the CA that signed the control plane's
	// data-plane server certificate, to verify the xDS channel.
	ServerCAFile string `json:"serverCaFile"`
	// TokenFile holds the dataplane token the application's xDS client
	// sends as call credentials (gRFC A97).
	TokenFile string `json:"tokenFile,omitempty"`
}

// Version reports data-plane software versions.
type Version struct {
	// AtollDP is the agent's version.
	AtollDP string `json:"atollDp,omitempty"`
	// Envoy is Envoy's version (Envoy only).
	Envoy string `json:"envoy,omitempty"`
}

// Response is the answer to POST /bootstrap.
type Response struct {
	// Bootstrap is the proxy's bootstrap document: Envoy's bootstrap
	// (envoy.config.bootstrap.v3.Bootstrap as JSON) or gRPC's xDS bootstrap
	// JSON (what GRPC_XDS_BOOTSTRAP points at) for proxyless workloads.
	Bootstrap json.RawMessage `json:"bootstrap"`
	// NodeID is the xDS node id the proxy uses.
	NodeID string `json:"nodeId"`
}

// CertificateRequest is the body of POST /certificate; the dataplane is
// named by the token's claims and these fields, which must agree.
type CertificateRequest struct {
	// Mesh of the dataplane.
	Mesh string `json:"mesh"`
	// Name of the dataplane.
	Name string `json:"name"`
}

// CertificateResponse carries a workload identity for a proxyless workload.
type CertificateResponse struct {
	// CertificateChain is the workload certificate (PEM), leaf first.
	CertificateChain string `json:"certificateChain"`
	// PrivateKey is the certificate's key (PEM).
	PrivateKey string `json:"privateKey"`
	// CABundle holds the mesh's trusted CA certificates (PEM).
	CABundle string `json:"caBundle"`
	// NotAfter is when the certificate expires.
	NotAfter time.Time `json:"notAfter"`
	// RenewAt is when the agent should fetch a new one.
	RenewAt time.Time `json:"renewAt"`
}

// Error is the JSON body of a refused request, with a message an operator
// can act on ("dataplane token is for mesh \"b\", not \"a\"").
type Error struct {
	// Message says what is wrong.
	Message string `json:"message"`
}
