package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/config"
	"github.com/atoll-mesh/atoll/pkg/version"
)

// newRootCommand builds the atoll-cp command tree. The process environment
// and output streams are passed in so that tests can run it in-process.
func newRootCommand(environ []string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "atoll-cp",
		Short: "Atoll service-mesh control plane",
		Long: "atoll-cp is the Atoll control plane. It runs standalone, as the global control plane\n" +
			"of a multi-zone deployment, or as one of its zones. Configuration comes from defaults,\n" +
			"an optional YAML file (--config), ATOLL_* environment variables and flags, in that order.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{command: cmd.CommandPath(), err: err}
	})
	root.AddCommand(
		newRunCommand(environ, stderr),
		newConfigCommand(environ, stdout, stderr),
		newMigrateCommand(environ, stdout, stderr),
		newVersionCommand(stdout),
	)
	return root
}

// configFlags are the flags that locate and override the configuration.
type configFlags struct {
	file        string
	mode        string
	environment string
}

// register adds the flags to cmd.
func (f *configFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.file, "config", "c", "", "YAML configuration file")
	fs.StringVar(&f.mode, "mode", "", "standalone, zone or global; overrides mode of the file and ATOLL_MODE")
	fs.StringVar(&f.environment, "environment", "", "universal or kubernetes; overrides environment of the file and ATOLL_ENVIRONMENT")
}

// load returns the configuration after the file, the environment and the
// flags of cmd that were set, and the unknown ATOLL_* variables. It does not
// validate.
func (f *configFlags) load(cmd *cobra.Command, environ []string) (config.Config, []string, error) {
	cfg, unknown, err := config.Load(f.file, environ)
	if err != nil {
		return config.Config{}, nil, err
	}
	if cmd.Flags().Changed("mode") {
		cfg.Mode = config.Mode(f.mode)
	}
	if cmd.Flags().Changed("environment") {
		cfg.Environment = config.Environment(f.environment)
	}
	return cfg, unknown, nil
}

func newConfigCommand(environ []string, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
		Args:  cobra.NoArgs,
	}
	var flags configFlags
	printCmd := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration as YAML (passwords masked)",
		Long: "print writes the configuration atoll-cp run would use with the same file, environment\n" +
			"and flags, as YAML with passwords masked. It exits 1 when that configuration is invalid,\n" +
			"after listing its problems on stderr.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, unknown, err := flags.load(cmd, environ)
			if err != nil {
				return err
			}
			warnUnknownEnv(stderr, unknown)
			out, err := cfg.Marshal()
			if err != nil {
				return err
			}
			if _, err := stdout.Write(out); err != nil {
				return fmt.Errorf("writing configuration: %w", err)
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			return nil
		},
	}
	flags.register(printCmd)
	cmd.AddCommand(printCmd)
	return cmd
}

// warnUnknownEnv tells the user about ATOLL_* variables that set nothing,
// for use before a logger exists.
func warnUnknownEnv(w io.Writer, names []string) {
	for _, name := range names {
		_, _ = fmt.Fprintf(w, "warning: %s does not match any configuration key; it is ignored\n", name)
	}
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(stdout, version.Get().String())
			return err
		},
	}
}
