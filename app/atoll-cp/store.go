package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/atoll-mesh/atoll/pkg/component"
	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/store/memory"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
	"github.com/atoll-mesh/atoll/pkg/store/postgres/lease"
)

// storeAssembly is the configured store with what comes with it.
type storeAssembly struct {
	store   store.ResourceStore
	elector component.LeaderElector
	ready   func(ctx context.Context) error
	close   func()
	// instances tells which control-plane instances sharing the store are
	// running; nil with the memory store, which only one instance uses.
	instances *instances
}

// instancePrefix names the lease each instance holds while it runs.
const instancePrefix = "atoll-cp-instance/"

// instances announces control-plane instances through a lease each in
// PostgreSQL and lists the live ones.
type instances struct {
	db       lease.DB
	leaseFor time.Duration
	log      *slog.Logger
}

// announce returns the component holding instance's lease while it runs.
// regained, when not nil, is called each time the lease is held again after
// it lapsed (the instance was cut off from the database for longer than
// the lease, and the leader may have taken it for dead).
func (in *instances) announce(instance string, regained func()) (component.Component, error) {
	l, err := lease.New(in.db, lease.Options{
		Name: instancePrefix + instance, Holder: instance,
		LeaseDuration: in.leaseFor, RetryPeriod: min(2*time.Second, in.leaseFor/5),
		Logger: in.log,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the instance lease: %w", err)
	}
	return component.New("instance-presence", func(ctx context.Context) error {
		first := true
		return l.Campaign(ctx, func(term context.Context) {
			if !first && regained != nil {
				regained()
			}
			first = false
			<-term.Done()
		})
	}), nil
}

// live returns the ids of the running instances.
func (in *instances) live(ctx context.Context) (map[string]bool, error) {
	return lease.Live(ctx, in.db, instancePrefix)
}

// buildStore opens the configured resource store. With PostgreSQL it refuses
// an un-migrated or newer schema (the error says which command to run) and
// elects a leader through a lease in the database.
func buildStore(ctx context.Context, cfg config.Config, reg *resource.Registry, logger *slog.Logger) (storeAssembly, error) {
	switch cfg.Store.Type {
	case config.StoreMemory:
		st := memory.New(reg)
		return storeAssembly{
			store:   st,
			elector: component.AlwaysLeader{},
			ready: func(ctx context.Context) error {
				_, err := st.List(ctx, resource.MeshType, store.ListOptions{Size: 1})
				return err
			},
			close: func() {},
		}, nil
	case config.StorePostgres:
		st, err := postgres.Open(ctx, postgresConfig(cfg.Store.Postgres), postgres.Options{
			Registry: reg,
			Logger:   logger.With("component", "store"),
		})
		if err != nil {
			return storeAssembly{}, fmt.Errorf("opening the PostgreSQL store (%s): %w", postgresConfig(cfg.Store.Postgres), err)
		}
		leaseFor := cfg.Store.Postgres.LeaderLeaseDuration.Std()
		l, err := lease.New(st.Pool(), lease.Options{
			LeaseDuration: leaseFor,
			RetryPeriod:   min(2*time.Second, leaseFor/5),
			Logger:        logger.With("component", "leader-lease"),
		})
		if err != nil {
			st.Close()
			return storeAssembly{}, fmt.Errorf("creating the leader lease: %w", err)
		}
		return storeAssembly{store: st, elector: l, ready: st.Ready, close: st.Close,
			instances: &instances{db: st.Pool(), leaseFor: leaseFor, log: logger.With("component", "instance-presence")}}, nil
	}
	return storeAssembly{}, fmt.Errorf("store.type %q is not supported", cfg.Store.Type)
}

// postgresConfig maps the control plane's configuration onto the store's.
func postgresConfig(pg config.Postgres) postgres.Config {
	return postgres.Config{
		Host:             pg.Host,
		Port:             pg.Port,
		User:             pg.User,
		Password:         pg.Password,
		DBName:           pg.DBName,
		TLSMode:          string(pg.TLSMode),
		TLSCAPath:        pg.TLSCAPath,
		TLSCertPath:      pg.TLSCertPath,
		TLSKeyPath:       pg.TLSKeyPath,
		MaxConns:         pg.MaxConns,
		ConnectTimeout:   pg.ConnectionTimeout.Std(),
		OperationTimeout: pg.OperationTimeout.Std(),
		ApplicationName:  "atoll-cp",
	}
}
