package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/version"
)

func (a *app) newVersionCommand() *cobra.Command {
	var detailed bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the versions of atollctl and of the control plane",
		Long: `Show the versions of atollctl and of the control plane (from GET /).
An unreachable control plane only gives a warning.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			info := version.Get()
			if detailed {
				fmt.Fprintf(out, "Client: %s\n", info.String())
			} else {
				fmt.Fprintf(out, "Client: %s %s\n", info.Product, info.Version)
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			idx, err := c.Index(cmd.Context())
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: could not read the control plane's version: %s\n", apiMessage(err))
				return nil
			}
			fmt.Fprintf(out, "Server: %s\n", strings.TrimSpace(idx.Product+" "+idx.Version))
			if detailed {
				var b bytes.Buffer
				if err := json.Indent(&b, idx.Raw, "", "  "); err != nil {
					return fmt.Errorf("formatting the server index: %w", err)
				}
				fmt.Fprintf(out, "%s\n", b.String())
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed", false, "show build details and the control plane's whole index")
	return cmd
}
