package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// ServerListenerTemplate is the gRPC bootstrap's
// server_listener_resource_name_template: a gRPC xDS server listening on
// address:port asks for the listener named after it, which is the name the
// proxyless translator gives its server listeners.
const ServerListenerTemplate = translate.ProxylessServerListenerTemplate

// DefaultRefreshInterval is how often gRPC re-reads the certificate files.
const DefaultRefreshInterval = time.Minute

// GRPCParams are the inputs of a gRPC xDS bootstrap.
type GRPCParams struct {
	// Node describes the workload.
	Node Node
	// XDSServer is the control plane's data-plane server, "host:port".
	XDSServer string
	// ServerCAFile is the PEM file of the CA that signed the data-plane
	// server's certificate; gRPC verifies the server (and its host name)
	// with it. Required.
	ServerCAFile string
	// CertificateFile and PrivateKeyFile hold the workload certificate and
	// key, CABundleFile the mesh's CAs: the file_watcher certificate
	// providers ir.IdentityCertName and ir.MeshCAName read them. They are
	// declared when CertificateFile is set.
	CertificateFile string
	// PrivateKeyFile is the key of CertificateFile.
	PrivateKeyFile string
	// CABundleFile holds the mesh's trusted CAs.
	CABundleFile string
	// Token is the dataplane token, sent in the node metadata under
	// MetadataToken. Empty leaves it out.
	Token string
	// TokenFile, when set, adds gRFC A97 JWT call credentials reading the
	// token from this file, so gRPC sends "authorization: Bearer <token>"
	// on the ADS stream. gRPC-Go honours them only when the workload runs
	// with GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true.
	TokenFile string
	// RefreshInterval is how often the certificate files are re-read; zero
	// means DefaultRefreshInterval.
	RefreshInterval time.Duration
}

// grpcBootstrap is gRPC's xDS bootstrap format (gRFC A27, A29, A65, A97).
type grpcBootstrap struct {
	XDSServers           []grpcServer                `json:"xds_servers"`
	Node                 grpcNode                    `json:"node"`
	CertificateProviders map[string]grpcCertProvider `json:"certificate_providers,omitempty"`
	ServerListenerTmpl   string                      `json:"server_listener_resource_name_template"`
}

type grpcServer struct {
	ServerURI      string      `json:"server_uri"`
	ChannelCreds   []grpcCreds `json:"channel_creds"`
	CallCreds      []grpcCreds `json:"call_creds,omitempty"`
	ServerFeatures []string    `json:"server_features"`
}

type grpcCreds struct {
	Type   string `json:"type"`
	Config any    `json:"config,omitempty"`
}

type grpcNode struct {
	ID       string            `json:"id"`
	Cluster  string            `json:"cluster,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type grpcCertProvider struct {
	PluginName string         `json:"plugin_name"`
	Config     fileWatcherCfg `json:"config"`
}

// fileWatcherCfg is the config of gRPC's file_watcher certificate provider
// and of its "tls" channel credentials (gRFC A65), which share a format.
type fileWatcherCfg struct {
	CertificateFile   string `json:"certificate_file,omitempty"`
	PrivateKeyFile    string `json:"private_key_file,omitempty"`
	CACertificateFile string `json:"ca_certificate_file,omitempty"`
	RefreshInterval   string `json:"refresh_interval,omitempty"`
}

// GRPC returns the gRPC xDS bootstrap of p as indented JSON.
//
// The workload talks SotW ADS (the only protocol gRPC-Go speaks) to
// XDSServer over TLS ("tls" channel credentials, gRFC A65, verifying the
// server with ServerCAFile), announces server feature "xds_v3", and finds
// its mTLS material in the file_watcher certificate providers named
// ir.IdentityCertName and ir.MeshCAName, the names the proxyless translator
// refers to.
func GRPC(p GRPCParams) ([]byte, error) {
	if err := p.Node.check(); err != nil {
		return nil, fmt.Errorf("gRPC bootstrap: %w", err)
	}
	if _, _, err := splitServer(p.XDSServer); err != nil {
		return nil, fmt.Errorf("gRPC bootstrap: %w", err)
	}
	if p.ServerCAFile == "" {
		return nil, errors.New("gRPC bootstrap: the CA file verifying the control plane (serverCaFile) is required")
	}
	if p.CertificateFile != "" && (p.PrivateKeyFile == "" || p.CABundleFile == "") {
		return nil, errors.New("gRPC bootstrap: certificateFile needs privateKeyFile and caBundleFile")
	}
	refresh := p.RefreshInterval
	if refresh <= 0 {
		refresh = DefaultRefreshInterval
	}
	md := p.Node.metadata(ProxyProxyless)
	if p.Token != "" {
		md[MetadataToken] = p.Token
	}
	server := grpcServer{
		ServerURI:      p.XDSServer,
		ChannelCreds:   []grpcCreds{{Type: "tls", Config: fileWatcherCfg{CACertificateFile: p.ServerCAFile}}},
		ServerFeatures: []string{"xds_v3"},
	}
	if p.TokenFile != "" {
		server.CallCreds = []grpcCreds{{Type: "jwt_token_file", Config: map[string]string{"jwt_token_file": p.TokenFile}}}
	}
	b := grpcBootstrap{
		XDSServers:         []grpcServer{server},
		Node:               grpcNode{ID: p.Node.ID(), Cluster: p.Node.Service, Metadata: md},
		ServerListenerTmpl: ServerListenerTemplate,
	}
	if p.CertificateFile != "" {
		interval := fmt.Sprintf("%gs", refresh.Seconds())
		b.CertificateProviders = map[string]grpcCertProvider{
			ir.IdentityCertName: {PluginName: "file_watcher", Config: fileWatcherCfg{
				CertificateFile: p.CertificateFile, PrivateKeyFile: p.PrivateKeyFile, RefreshInterval: interval,
			}},
			ir.MeshCAName: {PluginName: "file_watcher", Config: fileWatcherCfg{
				CACertificateFile: p.CABundleFile, RefreshInterval: interval,
			}},
		}
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the gRPC bootstrap: %w", err)
	}
	return append(out, '\n'), nil
}
