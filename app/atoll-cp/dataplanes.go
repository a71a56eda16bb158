package main

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	dpapi "github.com/atoll-mesh/atoll/api/bootstrap"
	"github.com/atoll-mesh/atoll/pkg/auth/dptoken"
	"github.com/atoll-mesh/atoll/pkg/component"
	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/diagnostics"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/pki/secretstore"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/cache"
	"github.com/atoll-mesh/atoll/pkg/xds/identity"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
	"github.com/atoll-mesh/atoll/pkg/xds/snapshot/track"
	xdssync "github.com/atoll-mesh/atoll/pkg/xds/sync"
	"github.com/atoll-mesh/atoll/policies/all"
)

// dataplaneParts is what drives data planes: the resource → xDS pipeline
// and the data-plane server. Global control planes build none of it.
type dataplaneParts struct {
	components []component.Component
	checks     []diagnostics.Check
	reconciler *xdssync.Reconciler
	server     *server.Server
}

// buildDataplanes assembles hops 2–5 of the pipeline (DESIGN §4) and the
// data-plane server on dpServer.port.
func buildDataplanes(cfg config.Config, reg *resource.Registry, st store.ResourceStore, mgr *manager.Manager,
	cas *pki.Manager, tokens *dptoken.Manager, instance, hostname string, logger *slog.Logger, metrics prometheus.Registerer,
) (dataplaneParts, error) {
	plugins, err := all.PluginRegistry()
	if err != nil {
		return dataplaneParts{}, err
	}
	tracker := track.New(st, reg, logger.With("component", "xds-snapshots"), track.Options{Registerer: metrics})
	ids := identity.New(cas, tracker, logger.With("component", "xds-identity"), identity.Options{Registerer: metrics})
	xc, err := cache.New(cache.Options{Log: logger.With("component", "xds-cache"), Metrics: metrics})
	if err != nil {
		return dataplaneParts{}, err
	}
	rec, err := xdssync.New(xdssync.Options{
		Snapshots: tracker, Publisher: xc, Plugins: plugins, Identities: ids,
		Log: logger.With("component", "xds-sync"), Registerer: metrics,
	})
	if err != nil {
		return dataplaneParts{}, err
	}
	certFile, keyFile, err := dpServerCertificate(cfg, hostname, logger)
	if err != nil {
		return dataplaneParts{}, err
	}
	dp, err := server.New(server.Options{
		Address:      net.JoinHostPort("", strconv.Itoa(cfg.DPServer.Port)),
		TLSCertFile:  certFile,
		TLSKeyFile:   keyFile,
		Cache:        xc,
		Resources:    mgr,
		Tokens:       tokens,
		Certificates: certificateIssuer{ids},
		Tracker:      rec,
		InstanceID:   instance,
		Log:          logger.With("component", "dp-server"),
		Metrics:      metrics,
	})
	if err != nil {
		return dataplaneParts{}, err
	}
	return dataplaneParts{
		components: []component.Component{
			component.New("xds-snapshots", tracker.Start),
			component.New("xds-identity", ids.Start),
			component.New("xds-sync", rec.Start),
			component.WithName("dp-server", dp),
			component.New("dp-token-watch", (&tokenWatch{st: st, server: dp, log: logger.With("component", "dp-token-watch")}).Start),
		},
		checks: []diagnostics.Check{{Name: "xds-snapshots", Ready: func(ctx context.Context) error {
			select {
			case <-tracker.Ready():
				return nil
			default:
				return errors.New("the first snapshot of every mesh is not built yet")
			}
		}}},
		reconciler: rec,
		server:     dp,
	}, nil
}

// certificateIssuer maps the identity cache's "mTLS is off" onto what the
// data-plane server answers with 409.
type certificateIssuer struct{ ids *identity.Cache }

var _ server.CertificateStatus = certificateIssuer{}

// A dataplane registered a moment ago may not be in the mesh snapshot yet
// (snapshots trail the store by a batching window): not-found is retried
// briefly before it is an error.
func (c certificateIssuer) WorkloadCertificate(ctx context.Context, key resource.Key) (dpapi.CertificateResponse, error) {
	deadline := time.Now().Add(2 * time.Second)
	res, err := c.ids.WorkloadCertificate(ctx, key)
	for errors.Is(err, store.ErrNotFound) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		res, err = c.ids.WorkloadCertificate(ctx, key)
	}
	if errors.Is(err, identity.ErrMTLSOff) {
		return res, fmt.Errorf("%w: %w", server.ErrNoIdentity, err)
	}
	return res, err
}

// CurrentCertificate reports the certificate the identity cache holds for
// key, so the insight of an Envoy proxy (certificates over SDS) shows it.
func (c certificateIssuer) CurrentCertificate(key resource.Key) (time.Time, time.Time, string, bool) {
	m, ok := c.ids.Peek(key)
	if !ok {
		return time.Time{}, time.Time{}, "", false
	}
	return m.NotAfter, m.NotBefore, m.Backend, true
}

// identityParts returns the per-mesh CA manager and the dataplane token
// manager, both keeping their keys as Secrets in the store.
func identityParts(st store.ResourceStore) (*pki.Manager, *dptoken.Manager) {
	secrets := secretstore.New(st)
	return pki.NewManager(secrets, pki.ManagerOptions{}), dptoken.New(secrets, dptoken.Options{})
}

// dpServerCertificate returns the data-plane server's certificate files:
// the configured ones, or a self-signed certificate kept in the work
// directory so that it survives restarts and agents can pin it with
// --ca-cert-file.
func dpServerCertificate(cfg config.Config, hostname string, logger *slog.Logger) (string, string, error) {
	if cfg.DPServer.TLSCertFile != "" || cfg.DPServer.TLSKeyFile != "" {
		return cfg.DPServer.TLSCertFile, cfg.DPServer.TLSKeyFile, nil
	}
	dir, err := workDir(cfg)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile := filepath.Join(dir, "dp-server.crt"), filepath.Join(dir, "dp-server.key")
	if _, err := os.Stat(certFile); err == nil {
		logger.Info("data-plane server uses the certificate kept in the work directory; give it to atoll-dp with --ca-cert-file", "certificate", certFile)
		return certFile, keyFile, nil
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if hostname != "" {
		hosts = append(hosts, hostname)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	cert, err := pki.SelfSignedServerCert(hosts, 10*365*24*time.Hour, time.Now())
	if err != nil {
		return "", "", err
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return "", "", errors.New("generated data-plane server key is not a signer")
	}
	key, err := pki.EncodeKeyPEM(signer)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return "", "", fmt.Errorf("writing the data-plane server key: %w", err)
	}
	if err := os.WriteFile(certFile, pki.EncodeCertPEM(cert.Certificate[0]), 0o644); err != nil {
		return "", "", fmt.Errorf("writing the data-plane server certificate: %w", err)
	}
	logger.Info("generated a self-signed certificate for the data-plane server; give it to atoll-dp with --ca-cert-file", "certificate", certFile)
	return certFile, keyFile, nil
}

// workDir returns general.workDir, or ~/.atoll, creating it.
func workDir(cfg config.Config) (string, error) {
	dir := cfg.General.WorkDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("general.workDir is not set and the home directory is unknown: %w", err)
		}
		dir = filepath.Join(home, ".atoll")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the work directory %s: %w", dir, err)
	}
	return dir, nil
}
