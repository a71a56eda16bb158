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
	"github.com/atoll-mesh/atoll/pkg/version"
	"github.com/atoll-mesh/atoll/pkg/xds/server"
	"github.com/atoll-mesh/atoll/policies/all"
)

// composeComponents is the composition root of atoll-cp: it builds every
// component the control plane runs, for the validated cfg, and the readiness
// checks /ready reports. The diagnostics server is added by the caller.
//
// Components are started together and stopped together; a component that
// fails stops the process. Work only one instance may do (creating defaults)
// runs in a component.LeaderGroup.
func composeComponents(ctx context.Context, cfg config.Config, logger *slog.Logger, metrics prometheus.Registerer) (assembly, error) {
	reg, err := all.Registry()
	if err != nil {
		return assembly{}, err
	}
	sa, err := buildStore(ctx, cfg, reg, logger)
	if err != nil {
		return assembly{}, err
	}
	ok := false
	defer func() {
		if !ok {
			sa.close()
		}
	}()
	cas, tokens := identityParts(sa.store)
	mgr := manager.New(reg, sa.store, logger.With("component", "manager"),
		manager.WithValidator(resource.MeshType, providedCAValidator(cas)),
		manager.WithAfterWrite(resource.MeshType, func(ctx context.Context, res *resource.Resource) error {
			return ensureBuiltinCAs(ctx, cas, res)
		}))

	info := version.Get()
	hostname, _ := os.Hostname()
	instance := instanceID(hostname)
	var dps dataplaneParts
	var inspector apiserver.Inspector
	if cfg.Mode != config.ModeGlobal {
		if dps, err = buildDataplanes(cfg, reg, sa.store, mgr, cas, tokens, instance, hostname, logger, metrics); err != nil {
			return assembly{}, err
		}
		inspector = dps.reconciler
	}
	var tlsAddress string
	var tlsConfig *tls.Config
	if https := cfg.APIServer.HTTPS; https.Enabled {
		var generated bool
		tlsConfig, generated, err = pki.ServerTLSConfig(https.TLSCertFile, https.TLSKeyFile,
			[]string{"localhost", "127.0.0.1", "::1", hostname}, time.Now())
		if err != nil {
			return assembly{}, fmt.Errorf("apiServer.https: %w", err)
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
			InstanceID: instance, Hostname: hostname,
			Mode: string(cfg.Mode), Environment: string(cfg.Environment),
		},
		Address:    net.JoinHostPort(cfg.APIServer.HTTP.Interface, strconv.Itoa(cfg.APIServer.HTTP.Port)),
		TLSAddress: tlsAddress,
		TLSConfig:  tlsConfig,
		ReadOnly:   cfg.APIServer.ReadOnly,
		Global:     cfg.Mode == config.ModeGlobal,
		Inspector:  inspector,
		Tokens:     apiserver.DataplaneTokens(tokens),
		Log:        logger.With("component", "api-server"),
	})
	if err != nil {
		return assembly{}, err
	}

	var leaderOnly []component.Component
	if !cfg.Defaults.SkipMeshCreation {
		leaderOnly = append(leaderOnly, component.New("defaults", func(ctx context.Context) error {
			return retry(ctx, logger.With("component", "defaults"), "creating the default mesh", mgr.EnsureDefaultMesh)
		}))
	}
	leaderOnly = append(leaderOnly, component.New("mesh-cas", (&meshCAs{st: sa.store, cas: cas, log: logger.With("component", "mesh-cas")}).Start))
	var everywhere []component.Component
	if sa.instances != nil && cfg.Mode != config.ModeGlobal {
		// Instances sharing a database announce themselves; the leader
		// repairs what the ones that stopped without a goodbye left.
		presence, err := sa.instances.announce(instance, dps.server.RewriteInsights)
		if err != nil {
			return assembly{}, err
		}
		leaseFor := sa.instances.leaseFor
		sweeper, err := server.NewSweeper(server.SweepOptions{
			Resources: mgr, Live: sa.instances.live, Self: instance,
			Grace: 2 * leaseFor, DeregistrationGrace: server.DefaultDeregistrationGrace, Interval: leaseFor,
			Log: logger.With("component", "instance-sweeper"),
		})
		if err != nil {
			return assembly{}, err
		}
		everywhere = append(everywhere, presence)
		leaderOnly = append(leaderOnly, component.New("instance-sweeper", sweeper.Start))
	}
	leader := component.NewLeaderGroup(logger, sa.elector, component.Options{Name: "leader", GracePeriod: cfg.General.ShutdownTimeout.Std()}, leaderOnly...)
	if err := metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "atoll_leader",
		Help: "1 while this instance is the leader (runs leader-only work such as creating defaults), else 0.",
	}, func() float64 {
		if leader.IsLeader() {
			return 1
		}
		return 0
	})); err != nil {
		return assembly{}, err
	}
	ok = true
	return assembly{
		components: append(append([]component.Component{component.WithName("api-server", api), leader}, everywhere...), dps.components...),
		checks:     append([]diagnostics.Check{{Name: "store", Ready: sa.ready}}, dps.checks...),
		close:      sa.close,
	}, nil
}

// assembly is everything composeComponents builds.
type assembly struct {
	// components run for the life of the process.
	components []component.Component
	// checks gate /ready.
	checks []diagnostics.Check
	// close releases what outlives the components (the store's connections).
	close func()
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
