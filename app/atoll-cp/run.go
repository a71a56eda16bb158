package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/component"
	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/diagnostics"
	"github.com/atoll-mesh/atoll/pkg/version"
)

func newRunCommand(environ []string, stderr io.Writer) *cobra.Command {
	var flags configFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the control plane",
		Long: "run starts the control plane and serves until SIGINT or SIGTERM, then stops gracefully.\n" +
			"With no configuration at all it runs standalone on universal with an in-memory store.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, unknown, err := flags.load(cmd, environ)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				// A mistyped variable is a likely cause: say so first.
				warnUnknownEnv(stderr, unknown)
				return fmt.Errorf("invalid configuration: %w", err)
			}
			logger := newLogger(cfg.Logging, stderr)
			for _, name := range unknown {
				logger.Warn("environment variable does not match any configuration key; it is ignored", "variable", name)
			}
			return runControlPlane(cmd.Context(), cfg, logger)
		},
	}
	flags.register(cmd)
	return cmd
}

// runControlPlane runs every component until ctx ends or one fails.
func runControlPlane(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	info := version.Get()
	logger.Info("starting control plane",
		"product", info.Product, "version", info.Version, "basedOnKuma", info.BasedOnKuma,
		"mode", cfg.Mode, "environment", cfg.Environment, "store", cfg.Store.Type)

	metrics, err := diagnostics.NewRegistry(info)
	if err != nil {
		return err
	}
	parts, err := composeComponents(ctx, cfg, logger, metrics)
	if err != nil {
		return fmt.Errorf("assembling the control plane: %w", err)
	}
	defer parts.close()
	diag := diagnostics.NewServer(logger.With("component", "diagnostics"), diagnostics.Options{
		Address:        net.JoinHostPort(cfg.Diagnostics.Interface, strconv.Itoa(cfg.Diagnostics.Port)),
		Gatherer:       metrics,
		Checks:         parts.checks,
		DebugEndpoints: cfg.Diagnostics.DebugEndpoints,
	})
	// The manager adds a "component" attribute itself, so it gets the root logger.
	mgr := component.NewManager(logger, component.Options{GracePeriod: cfg.General.ShutdownTimeout.Std()},
		append([]component.Component{diag}, parts.components...)...)
	if err := mgr.Start(ctx); err != nil {
		logger.Error("control plane stopped with an error", "error", err)
		return err
	}
	logger.Info("control plane stopped")
	return nil
}
