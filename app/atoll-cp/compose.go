package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atoll-mesh/atoll/pkg/apiserver"
	"github.com/atoll-mesh/atoll/pkg/component"
	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/diagnostics"
	"github.com/atoll-mesh/atoll/pkg/manager"
	"github.com/atoll-mesh/atoll/pkg/pki"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/version"
	"github.com/atoll-mesh/atoll/policies/all"
)

// composeComponents is the composition root of atoll-cp: it builds every
// component the control plane runs, for the validated cfg, and the readiness
// checks /ready reports. The diagnostics server is added by the caller.
//
// Components are started together and stopped together; a component that
// fails stops the process. Work only one instance may do (creating defaults)
// runs in a component.LeaderGroup.
func composeComponents(cfg config.Config, logger *slog.Logger, metrics prometheus.Registerer) ([]component.Component, []diagnostics.Check, error) {
	reg, err := all.Registry()
	if err != nil {
		return nil, nil, err
	}
	st, elector, err := buildStore(cfg, reg)
	if err != nil {
		return nil, nil, err
	}
	mgr := manager.New(reg, st, logger.With("component", "manager"))

	info := version.Get()
	hostname, _ := os.Hostname()
	var tlsAddress string
	var tlsConfig *tls.Config
	if https := cfg.APIServer.HTTPS; https.Enabled {
		var generated bool
		tlsConfig, generated, err = pki.ServerTLSConfig(https.TLSCertFile, https.TLSKeyFile,
			[]string{"localhost", "127.0.0.1", "::1", hostname}, time.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("apiServer.https: %w", err)
		}
		if generated {
			logger.Info("serving the API over TLS with a generated self-signed certificate; set apiServer.https.tlsCertFile and tlsKeyFile to use your own",
				"port", https.Port)
		}
		tlsAddress = net.JoinHostPort(https.Interface, strconv.Itoa(https.Port))
	}
	api, err := apiserver.New(apiserver.Options{
		Manager: mgr,
		Index: apiserver.Index{
			Product: info.Product, Version: info.Version, BasedOnKuma: info.BasedOnKuma,
			InstanceID: instanceID(hostname), Hostname: hostname,
			Mode: string(cfg.Mode), Environment: string(cfg.Environment),
		},
		Address:    net.JoinHostPort(cfg.APIServer.HTTP.Interface, strconv.Itoa(cfg.APIServer.HTTP.Port)),
		TLSAddress: tlsAddress,
		TLSConfig:  tlsConfig,
		ReadOnly:   cfg.APIServer.ReadOnly,
		Log:        logger.With("component", "api-server"),
	})
	if err != nil {
		return nil, nil, err
	}

	var leaderOnly []component.Component
	if !cfg.Defaults.SkipMeshCreation {
		leaderOnly = append(leaderOnly, component.New("defaults", func(ctx context.Context) error {
			return retry(ctx, logger.With("component", "defaults"), "creating the default mesh", mgr.EnsureDefaultMesh)
		}))
	}
	components := []component.Component{
		component.WithName("api-server", api),
		component.NewLeaderGroup(logger, elector, component.Options{Name: "leader", GracePeriod: cfg.General.ShutdownTimeout.Std()}, leaderOnly...),
	}
	checks := []diagnostics.Check{{
		Name: "store",
		Ready: func(ctx context.Context) error {
			_, err := st.List(ctx, resource.MeshType, store.ListOptions{Size: 1})
			return err
		},
	}}
	return components, checks, nil
}

// buildStore returns the configured resource store and the leader elector
// fitting it.
func buildStore(cfg config.Config, reg *resource.Registry) (store.ResourceStore, component.LeaderElector, error) {
	switch cfg.Store.Type {
	case config.StoreMemory:
		return memory.New(reg), component.AlwaysLeader{}, nil
	}
	return nil, nil, fmt.Errorf("store type %q is not supported by this build", cfg.Store.Type)
}

// retry runs fn until it succeeds or ctx ends, backing off up to 10s, so a
// store that is briefly unreachable at start-up does not stop the process.
func retry(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		log.Warn(what+" failed; retrying", "error", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// instanceID names this process: the host name and a random suffix.
func instanceID(hostname string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	if hostname == "" {
		hostname = "atoll-cp"
	}
	return hostname + "-" + hex.EncodeToString(b)
}
