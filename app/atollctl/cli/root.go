// Package cli is atollctl's command tree. NewRootCommand builds it from its
// dependencies (streams, config path, HTTP client, clock, resource registry),
// so tests run the real commands in-process; nothing here is global.
//
// Resource commands (get, delete, apply) are derived from the registry's
// descriptors: a newly bundled type gets them without a change here.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/version"
)

// ConfigEnv names the environment variable that overrides the config path.
const ConfigEnv = "ATOLLCTL_CONFIG"

// DefaultTimeout bounds each request to the control plane unless --timeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Deps are what the command tree needs from the outside world.
type Deps struct {
	// Stdin is read by "apply -f -".
	Stdin io.Reader
	// Stdout receives command output.
	Stdout io.Writer
	// Stderr receives errors and warnings.
	Stderr io.Writer
	// ConfigPath is the config file used when neither --config nor
	// ATOLLCTL_CONFIG names one (normally ~/.atollctl/config).
	ConfigPath string
	// Getenv reads the environment; nil reads none.
	Getenv func(string) string
	// HTTPClient, when set, carries every request (its TLS settings then win
	// over a control plane's skipVerify/caCertFile). Nil builds one per
	// control plane.
	HTTPClient *http.Client
	// Now is the clock used for AGE columns; nil means time.Now.
	Now func() time.Time
	// Registry is the set of resource types the CLI knows.
	Registry *resource.Registry
}

// app holds the dependencies and the values of the global flags.
type app struct {
	deps       Deps
	configFlag string
	address    string
	cpName     string
	timeout    time.Duration
}

// usageError is a mistake in the command line; the command's usage is
// printed after it.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// Execute runs the command line args and returns the process exit code:
// 0 on success, 1 on any error (printed to deps.Stderr as "Error: …").
func Execute(ctx context.Context, deps Deps, args []string) int {
	root := NewRootCommand(deps)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ue usageError
	usage := errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ")
	fmt.Fprintf(deps.Stderr, "Error: %v\n", err)
	if usage && cmd != nil {
		fmt.Fprintf(deps.Stderr, "\n%s", cmd.UsageString())
	}
	return 1
}

// NewRootCommand builds atollctl's command tree.
func NewRootCommand(deps Deps) *cobra.Command {
	if deps.Getenv == nil {
		deps.Getenv = func(string) string { return "" }
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Stdin == nil {
		deps.Stdin = strings.NewReader("")
	}
	a := &app{deps: deps}
	root := &cobra.Command{
		Use:   "atollctl",
		Short: "Manage an Atoll service mesh through its control plane",
		Long: `atollctl applies, reads and deletes Atoll resources (meshes, dataplanes,
policies, …) through a control plane's REST API, in Kuma's universal format.

The control plane is the current one of the config file (see "atollctl config
control-planes"), or http://localhost:5681 when none is configured.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(deps.Stdin)
	root.SetOut(deps.Stdout)
	root.SetErr(deps.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err: err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.configFlag, "config", "", "config file (default $"+ConfigEnv+" or ~/.atollctl/config)")
	pf.StringVar(&a.address, "address", "", "control plane REST API URL for this command, overriding the config (no stored credentials are sent)")
	pf.StringVar(&a.cpName, "cp", "", "name of a configured control plane to use for this command instead of the current one")
	pf.DurationVar(&a.timeout, "timeout", DefaultTimeout, "time limit of each request to the control plane")

	root.AddCommand(
		a.newConfigCommand(),
		a.newApplyCommand(),
		a.newGetCommand(),
		a.newDeleteCommand(),
		a.newInspectCommand(),
		a.newGenerateCommand(),
		a.newRevokeCommand(),
		a.newVersionCommand(),
	)
	return root
}

// configPath returns the config file in effect: --config, then
// $ATOLLCTL_CONFIG, then the default.
func (a *app) configPath() (string, error) {
	switch {
	case a.configFlag != "":
		return a.configFlag, nil
	case a.deps.Getenv(ConfigEnv) != "":
		return a.deps.Getenv(ConfigEnv), nil
	case a.deps.ConfigPath != "":
		return a.deps.ConfigPath, nil
	}
	return "", errors.New("no config file path: set --config or $" + ConfigEnv + " (the home directory is unknown)")
}

// target returns the control plane this command talks to: --address, else
// --cp, else the config's current one, else the local default.
func (a *app) target() (ControlPlane, error) {
	if a.address != "" && a.cpName != "" {
		return ControlPlane{}, usagef("--address and --cp are mutually exclusive")
	}
	if a.address != "" {
		return ControlPlane{Name: "(--address)", Address: a.address}, nil
	}
	path, err := a.configPath()
	if err != nil {
		return ControlPlane{}, err
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return ControlPlane{}, err
	}
	if a.cpName != "" {
		cp, ok := cfg.Find(a.cpName)
		if !ok {
			return ControlPlane{}, fmt.Errorf("there is no control plane named %q in %s (see \"atollctl config control-planes list\")", a.cpName, path)
		}
		return cp, nil
	}
	return cfg.Current(), nil
}

// newClient returns a REST client for the control plane of this command.
func (a *app) newClient() (*client.Client, error) {
	cp, err := a.target()
	if err != nil {
		return nil, err
	}
	return a.clientFor(cp, true)
}

// clientFor returns a REST client for cp; withAuth false sends no token.
func (a *app) clientFor(cp ControlPlane, withAuth bool) (*client.Client, error) {
	opts := client.Options{
		Address:            cp.Address,
		Headers:            cp.Headers,
		InsecureSkipVerify: cp.SkipVerify,
		Timeout:            a.timeout,
		UserAgent:          fmt.Sprintf("atollctl/%s (%s; %s)", version.Get().Version, runtime.GOOS, runtime.GOARCH),
		HTTPClient:         a.deps.HTTPClient,
	}
	if withAuth && cp.AuthToken != "" {
		opts.Auth = client.BearerToken(cp.AuthToken)
	}
	if cp.CACertFile != "" {
		pem, err := os.ReadFile(cp.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificate of control plane %q: %w", cp.Name, err)
		}
		opts.CACert = pem
	}
	c, err := client.New(a.deps.Registry, opts)
	if err != nil {
		return nil, fmt.Errorf("control plane %q: %w", cp.Name, err)
	}
	return c, nil
}

// describe returns what help texts say about a type and its other names,
// for example "mesh-scoped policy; also meshtimeout, mt".
func describe(d *resource.Descriptor, names []string) string {
	kind := "global"
	if d.Scope == resource.ScopeMesh {
		kind = "mesh-scoped"
	}
	if d.IsPolicy() {
		kind += " policy"
	}
	if d.ReadOnly {
		kind += ", read-only"
	}
	if len(names) > 0 {
		kind += "; also " + strings.Join(names, ", ")
	}
	return kind
}

// aliases returns the CLI names of d other than its plural.
func aliases(d *resource.Descriptor) []string {
	var out []string
	for _, s := range []string{d.Singular, d.ShortName, strings.ToLower(d.Name)} {
		if s != "" && s != d.Path && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// lookupType finds a type by any CLI name, or returns a usage error listing
// the known ones.
func (a *app) lookupType(word string) (*resource.Descriptor, error) {
	d, ok := a.deps.Registry.Lookup(word)
	if !ok {
		var names []string
		for _, d := range a.deps.Registry.All() {
			names = append(names, d.Path)
		}
		return nil, usagef("unknown resource type %q; known types: %s", word, strings.Join(names, ", "))
	}
	return d, nil
}

// apiMessage returns what the user should read of err: an *APIError or a
// connection error on its own (kumactl-style), anything else whole.
func apiMessage(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	var ce *client.ConnectionError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	return err.Error()
}
