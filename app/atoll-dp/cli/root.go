// Package cli is atoll-dp's command tree. NewRootCommand builds it from its
// dependencies (environment, streams, resource registry), so tests run the
// real commands in-process; nothing here is global.
//
// Every flag of "atoll-dp run" can also be set through an environment
// variable named ATOLL_DP_ followed by the flag name in upper case with
// dashes as underscores (--cp-address: ATOLL_DP_CP_ADDRESS). A flag on the
// command line wins over its variable.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/atoll-mesh/atoll/app/atoll-dp/agent"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/version"
)

// EnvPrefix starts the name of every environment variable atoll-dp reads.
const EnvPrefix = "ATOLL_DP_"

// Deps are what the command tree needs from the outside world.
type Deps struct {
	// Environ is the process environment as "KEY=value" entries.
	Environ []string
	// Stdout receives Envoy's output and proxyless mode's export line.
	Stdout io.Writer
	// Stderr receives logs, warnings and errors.
	Stderr io.Writer
	// Registry knows the Dataplane type read from --dataplane-file.
	Registry *resource.Registry
	// Timing overrides the agent's internal delays; the zero value keeps
	// agent.DefaultTiming().
	Timing agent.Timing
}

// usageError is a mistake in the command line itself.
type usageError struct {
	command string
	err     error
}

// Error returns the underlying message.
func (e usageError) Error() string { return e.err.Error() }

// Unwrap returns the underlying error.
func (e usageError) Unwrap() error { return e.err }

// Execute runs the command line args and returns the process exit code: 0
// on success (including a graceful stop after ctx ends), 1 on any error,
// written to deps.Stderr as one "atoll-dp: …" line.
func Execute(ctx context.Context, deps Deps, args []string) int {
	root := NewRootCommand(deps)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintf(deps.Stderr, "atoll-dp: %s\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			_, _ = fmt.Fprintf(deps.Stderr, "Run '%s --help' for usage.\n", usage.command)
		}
		return 1
	}
	return 0
}

// NewRootCommand builds the atoll-dp command tree.
func NewRootCommand(deps Deps) *cobra.Command {
	root := &cobra.Command{
		Use:   "atoll-dp",
		Short: "Atoll data-plane agent",
		Long: "atoll-dp runs next to a workload. It registers the workload's dataplane with its zone\n" +
			"control plane, authenticated by a dataplane token, and then either runs Envoy as a\n" +
			"child process (--mode=envoy) or keeps a proxyless gRPC application's xDS bootstrap and\n" +
			"workload certificate files fresh (--mode=proxyless).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(deps.Stdout)
	root.SetErr(deps.Stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{command: cmd.CommandPath(), err: err}
	})
	root.AddCommand(newRunCommand(deps), newVersionCommand(deps.Stdout))
	return root
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

// EnvName returns the environment variable that sets a flag:
// "cp-address" → "ATOLL_DP_CP_ADDRESS".
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of fs that the command line left alone from its
// environment variable, and returns the ATOLL_DP_* variables that match no
// flag.
func applyEnv(fs *pflag.FlagSet, environ []string) (unknown []string, err error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	fs.VisitAll(func(f *pflag.Flag) {
		name := EnvName(f.Name)
		known[name] = true
		v, set := env[name]
		if !set || f.Changed || err != nil {
			return
		}
		if fs.Set(f.Name, v) != nil {
			err = fmt.Errorf("%s must be %s (it sets --%s), got %q", name, kindOf(f), f.Name, v)
		}
	})
	for k := range env {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	return unknown, err
}

// kindOf describes the values a flag accepts.
func kindOf(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	case "duration":
		return "a duration such as 30s or 2m"
	default:
		return "a " + f.Value.Type()
	}
}
