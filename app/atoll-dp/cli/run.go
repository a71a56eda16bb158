package cli

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/atoll-mesh/atoll/app/atoll-dp/agent"
)

// Flags that apply to one mode only; setting one in the other mode is a
// mistake worth reporting.
var (
	envoyOnlyFlags     = []string{"admin-port", "binary-path", "config-dir", "drain-time", "envoy-log-level"}
	proxylessOnlyFlags = []string{"grpc-bootstrap-out", "certs-dir"}
)

// logFlags configure the agent's own logs.
type logFlags struct {
	level  string
	format string
}

func newRunCommand(deps Deps) *cobra.Command {
	cfg := agent.DefaultConfig()
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Register the dataplane and run its data plane",
		Long: "run registers the dataplane with the control plane's data-plane server and then\n\n" +
			"  --mode=envoy      writes Envoy's bootstrap to --config-dir, runs Envoy (restarting it\n" +
			"                    when it crashes) and, on SIGINT/SIGTERM, drains it for --drain-time\n" +
			"                    before stopping it;\n" +
			"  --mode=proxyless  writes the application's gRPC xDS bootstrap to --grpc-bootstrap-out,\n" +
			"                    keeps the workload certificate, key and CA bundle in --certs-dir\n" +
			"                    fresh, and prints `export GRPC_XDS_BOOTSTRAP=<file>`.\n\n" +
			"GET /ready on --readiness-address:--ready-port answers 200 once the data plane is ready.\n" +
			"Every flag can be set through ATOLL_DP_<FLAG> (for example ATOLL_DP_CP_ADDRESS).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			unknown, err := applyEnv(fs, deps.Environ)
			if err != nil {
				return usageError{command: cmd.CommandPath(), err: err}
			}
			for _, name := range unknown {
				_, _ = fmt.Fprintf(deps.Stderr, "warning: %s does not match any atoll-dp flag; it is ignored\n", name)
			}
			if err := checkModeFlags(fs, cfg.Mode); err != nil {
				return usageError{command: cmd.CommandPath(), err: err}
			}
			logger, err := newLogger(logs, deps.Stderr)
			if err != nil {
				return usageError{command: cmd.CommandPath(), err: err}
			}
			if !fs.Changed("envoy-log-level") {
				cfg.EnvoyLogLevel = envoyLevel(logs.level)
			}
			a, err := agent.New(cfg, agent.Deps{
				Logger:   logger,
				Stdout:   deps.Stdout,
				Stderr:   deps.Stderr,
				Registry: deps.Registry,
				Timing:   deps.Timing,
			})
			if err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	registerFlags(cmd.Flags(), &cfg, &logs)
	return cmd
}

// registerFlags defines the flags of run, each with its variable named in
// its usage.
func registerFlags(fs *pflag.FlagSet, cfg *agent.Config, logs *logFlags) {
	fs.SortFlags = false
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "envoy or proxyless")
	fs.StringVar(&cfg.CPAddress, "cp-address", cfg.CPAddress, "the control plane's data-plane server, https://host:port")
	fs.StringVar(&cfg.CACertFile, "ca-cert-file", "", "CA certificate (PEM) that signed the data-plane server's certificate; required unless --insecure-skip-verify")
	fs.BoolVar(&cfg.InsecureSkipVerify, "insecure-skip-verify", false, "do not verify the control plane's certificate (Envoy mode, development only)")
	fs.DurationVar(&cfg.CPRetryTimeout, "cp-retry-timeout", cfg.CPRetryTimeout, "how long to keep retrying an unreachable control plane at start-up")
	fs.StringVar(&cfg.DataplaneFile, "dataplane-file", "", "Dataplane in Kuma's universal YAML; the control plane registers it")
	fs.StringVar(&cfg.Name, "name", "", "name of the dataplane (of one created beforehand when there is no --dataplane-file)")
	fs.StringVar(&cfg.Mesh, "mesh", "", "mesh of the dataplane")
	fs.StringVar(&cfg.TokenFile, "dataplane-token-file", "", "file holding the dataplane token; read again before every request")
	fs.StringVar(&cfg.Token, "dataplane-token", "", "the dataplane token itself (prefer --dataplane-token-file: arguments are visible to other users)")
	fs.StringVar(&cfg.ReadinessAddress, "readiness-address", cfg.ReadinessAddress, "interface of the readiness endpoint (0.0.0.0 for Kubernetes probes)")
	fs.IntVar(&cfg.ReadyPort, "ready-port", cfg.ReadyPort, "port of the readiness endpoint GET /ready; 0 picks a free port")
	fs.IntVar(&cfg.AdminPort, "admin-port", cfg.AdminPort, "Envoy's admin port (envoy mode)")
	fs.StringVar(&cfg.BinaryPath, "binary-path", cfg.BinaryPath, "Envoy executable; without a slash it is looked up on PATH (envoy mode)")
	fs.StringVar(&cfg.ConfigDir, "config-dir", "", "directory for Envoy's bootstrap, which holds the token (0600); default a temporary directory removed at exit (envoy mode)")
	fs.DurationVar(&cfg.DrainTime, "drain-time", cfg.DrainTime, "how long Envoy drains inbound connections before it is stopped (envoy mode)")
	fs.StringVar(&cfg.EnvoyLogLevel, "envoy-log-level", cfg.EnvoyLogLevel, "Envoy's --log-level; default follows --log-level (envoy mode)")
	fs.StringVar(&cfg.GRPCBootstrapOut, "grpc-bootstrap-out", "", "file receiving the gRPC xDS bootstrap (proxyless mode)")
	fs.StringVar(&cfg.CertsDir, "certs-dir", "", "directory receiving "+agent.CertFileName+", "+agent.KeyFileName+" and "+agent.CABundleFileName+" (proxyless mode)")
	fs.StringVar(&logs.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logs.format, "log-format", "text", "text or json")
	fs.VisitAll(func(f *pflag.Flag) {
		f.Usage += " [" + EnvName(f.Name) + "]"
	})
}

// checkModeFlags refuses flags (or variables) of the other mode.
func checkModeFlags(fs *pflag.FlagSet, mode string) error {
	other := proxylessOnlyFlags
	if mode == agent.ModeProxyless {
		other = envoyOnlyFlags
	}
	for _, name := range other {
		if fs.Changed(name) {
			return fmt.Errorf("--%s does not apply to --mode=%s", name, mode)
		}
	}
	return nil
}

// newLogger returns the agent's logger, writing to w.
func newLogger(f logFlags, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch f.level {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", f.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, got %q", f.format)
	}
}

// envoyLevel maps the agent's log level to Envoy's.
func envoyLevel(level string) string {
	if level == "warn" {
		return "warning"
	}
	if slices.Contains([]string{"debug", "info", "error"}, level) {
		return level
	}
	return agent.DefaultEnvoyLogLevel
}
