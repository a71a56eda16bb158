package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/store/postgres"
)

// newMigrateCommand builds `atoll-cp migrate up|status`, which manage the
// PostgreSQL schema. `run` refuses to start on a schema that is not current.
func newMigrateCommand(environ []string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Manage the PostgreSQL schema",
		Long: "migrate applies (up) or reports (status) the database migrations of the PostgreSQL store.\n" +
			"It reads the same configuration as run (--config, ATOLL_STORE_POSTGRES_*). Several\n" +
			"instances may run it at once; migrations are applied once, each in its own transaction.",
		Args: cobra.NoArgs,
	}
	var flags configFlags
	pgConfig := func(cmd *cobra.Command) (postgres.Config, error) {
		cfg, unknown, err := flags.load(cmd, environ)
		if err != nil {
			return postgres.Config{}, err
		}
		warnUnknownEnv(stderr, unknown)
		if cfg.Store.Type != config.StorePostgres {
			return postgres.Config{}, errors.New("store.type is not postgres: set ATOLL_STORE_TYPE=postgres (and ATOLL_STORE_POSTGRES_*) to manage a PostgreSQL schema")
		}
		if err := cfg.Validate(); err != nil {
			return postgres.Config{}, fmt.Errorf("invalid configuration: %w", err)
		}
		return postgresConfig(cfg.Store.Postgres), nil
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := pgConfig(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
			defer cancel()
			pool, err := postgres.Connect(ctx, pc)
			if err != nil {
				return fmt.Errorf("connecting to PostgreSQL (%s): %w", pc, err)
			}
			defer pool.Close()
			applied, err := postgres.Migrate(ctx, pool)
			if err != nil {
				return err
			}
			status, err := postgres.SchemaStatus(ctx, pool)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				_, err = fmt.Fprintf(stdout, "schema is up to date (%s)\n", status)
			} else {
				_, err = fmt.Fprintf(stdout, "applied migrations %v; %s\n", applied, status)
			}
			return err
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the schema version and pending migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := pgConfig(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			pool, err := postgres.Connect(ctx, pc)
			if err != nil {
				return fmt.Errorf("connecting to PostgreSQL (%s): %w", pc, err)
			}
			defer pool.Close()
			st, err := postgres.SchemaStatus(ctx, pool)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, st.String())
			return err
		},
	}
	flags.register(up)
	flags.register(status)
	cmd.AddCommand(up, status)
	return cmd
}
