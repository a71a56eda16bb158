package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/version"
)

func (a *app) newConfigCommand() *cobra.Command {
	cfg := &cobra.Command{
		Use:   "config",
		Short: "Manage atollctl's configuration",
		Args:  noArgs,
	}
	cps := &cobra.Command{
		Use:     "control-planes",
		Aliases: []string{"control-plane", "cp"},
		Short:   "Manage the control planes atollctl talks to",
		Long: `Manage the control planes atollctl talks to. They are kept in the config file
(~/.atollctl/config unless --config or $` + ConfigEnv + ` says otherwise); commands use
the current one, or http://localhost:5681 when none is configured.`,
		Args: noArgs,
	}
	cps.AddCommand(a.newCPAddCommand(), a.newCPUseCommand(), a.newCPListCommand(), a.newCPRemoveCommand())
	cfg.AddCommand(cps)
	return cfg
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// exactArgs requires n positional arguments, named in the message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%q needs %s (got %d arguments)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

func (a *app) newCPAddCommand() *cobra.Command {
	var (
		cp                             ControlPlane
		headers                        []string
		overwrite, skipCheck, noSwitch bool
	)
	cmd := &cobra.Command{
		Use:   "add --name NAME --address URL",
		Short: "Add a control plane and make it the current one",
		Example: `  atollctl config control-planes add --name prod --address https://cp.example.com:5682 --auth-token "$TOKEN"
  atollctl config control-planes add --name local --address http://localhost:5681 --overwrite`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cp.Name == "" || cp.Address == "" {
				return usagef("--name and --address are required")
			}
			if _, err := client.ParseAddress(cp.Address); err != nil {
				return usageError{err: err}
			}
			h, err := parsePairs(headers, "--header", false)
			if err != nil {
				return err
			}
			cp.Headers = h
			path, err := a.configPath()
			if err != nil {
				return err
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				return err
			}
			if _, exists := cfg.Find(cp.Name); exists && !overwrite {
				return fmt.Errorf("control plane %q already exists: choose another name or add --overwrite", cp.Name)
			}
			detail := "not checked"
			if !skipCheck {
				if detail, err = a.checkControlPlane(cmd, cp); err != nil {
					return err
				}
			}
			cfg.Put(cp)
			if !noSwitch {
				cfg.CurrentControlPlane = cp.Name
			}
			if err := cfg.Save(path); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "added control plane %q (%s: %s)\n", cp.Name, cp.Address, detail)
			if !noSwitch {
				fmt.Fprintf(out, "switched to control plane %q\n", cp.Name)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cp.Name, "name", "", "name of the control plane in the config (required)")
	f.StringVar(&cp.Address, "address", "", "URL of its REST API, for example http://localhost:5681 (required)")
	f.StringVar(&cp.AuthToken, "auth-token", "", "bearer token sent with every request")
	f.StringVar(&cp.CACertFile, "ca-cert-file", "", "PEM file of CAs trusted for an https address")
	f.BoolVar(&cp.SkipVerify, "skip-verify", false, "accept any server certificate (development only)")
	f.StringArrayVar(&headers, "header", nil, "header sent with every request, as KEY=VALUE (repeatable)")
	f.BoolVar(&overwrite, "overwrite", false, "replace a control plane of the same name")
	f.BoolVar(&skipCheck, "skip-check", false, "do not contact the control plane before adding it")
	f.BoolVar(&noSwitch, "no-switch", false, "keep the current control plane")
	return cmd
}

// checkControlPlane asks cp's index whether it is a control plane, and
// returns "<product> <version>".
func (a *app) checkControlPlane(cmd *cobra.Command, cp ControlPlane) (string, error) {
	c, err := a.clientFor(cp, false)
	if err != nil {
		return "", err
	}
	idx, err := c.Index(cmd.Context())
	if err != nil {
		return "", fmt.Errorf("checking control plane %q (use --skip-check to add it without checking): %w", cp.Name, err)
	}
	switch idx.Product {
	case version.Product:
	case "":
		return "", fmt.Errorf("%s did not answer like a control plane: GET / has no product (use --skip-check to add it anyway)", cp.Address)
	default:
		return "", fmt.Errorf("%s is a %s control plane, not %s (use --skip-check to add it anyway)", cp.Address, idx.Product, version.Product)
	}
	return strings.TrimSpace(idx.Product + " " + idx.Version), nil
}

func (a *app) newCPUseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "use NAME",
		Short: "Make a configured control plane the current one",
		Args:  exactArgs(1, "the name of a control plane"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.configPath()
			if err != nil {
				return err
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				return err
			}
			if _, ok := cfg.Find(args[0]); !ok {
				return fmt.Errorf("there is no control plane named %q (see \"atollctl config control-planes list\")", args[0])
			}
			cfg.CurrentControlPlane = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "switched to control plane %q\n", args[0])
			return nil
		},
	}
}

func (a *app) newCPListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the configured control planes; * marks the current one",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := a.configPath()
			if err != nil {
				return err
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(cfg.ControlPlanes) == 0 {
				fmt.Fprintf(out, "No control planes configured in %s; commands use %s\n", path, cfg.Current().Address)
				return nil
			}
			rows := make([][]string, 0, len(cfg.ControlPlanes))
			for _, cp := range cfg.ControlPlanes {
				active := ""
				if cp.Name == cfg.CurrentControlPlane {
					active = "*"
				}
				rows = append(rows, []string{active, cp.Name, cp.Address})
			}
			return writeTable(out, []string{"ACTIVE", "NAME", "ADDRESS"}, rows)
		},
	}
}

func (a *app) newCPRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a control plane from the config",
		Args:    exactArgs(1, "the name of a control plane"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.configPath()
			if err != nil {
				return err
			}
			cfg, err := LoadConfig(path)
			if err != nil {
				return err
			}
			wasCurrent := cfg.CurrentControlPlane == args[0]
			if !cfg.Remove(args[0]) {
				return fmt.Errorf("there is no control plane named %q (see \"atollctl config control-planes list\")", args[0])
			}
			if err := cfg.Save(path); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "removed control plane %q\n", args[0])
			if wasCurrent {
				if cfg.CurrentControlPlane != "" {
					fmt.Fprintf(out, "switched to control plane %q\n", cfg.CurrentControlPlane)
				} else {
					fmt.Fprintf(out, "no control plane left; commands use %s\n", cfg.Current().Address)
				}
			}
			return nil
		},
	}
}

// parsePairs reads KEY=VALUE items; with commas, an item may hold several
// pairs separated by commas.
func parsePairs(items []string, flag string, commas bool) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, item := range items {
		pairs := []string{item}
		if commas {
			pairs = strings.Split(item, ",")
		}
		for _, kv := range pairs {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, usagef("%s %q: expected KEY=VALUE", flag, kv)
			}
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, nil
}
