package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
)

func (a *app) newGenerateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Generate tokens",
		Args:  cobra.NoArgs,
	}
	var req client.TokenRequest
	var tags []string
	token := &cobra.Command{
		Use:   "dataplane-token",
		Short: "Generate a token a dataplane presents to the control plane",
		Long: `dataplane-token asks the control plane for a dataplane token: a JWT signed with
the mesh's key, bound to the mesh, optionally to one dataplane name and to tag
values. atoll-dp presents it at bootstrap and on every xDS stream.`,
		Example: `  atollctl generate dataplane-token --mesh payments --name backend-1 > backend-1.token
  atollctl generate dataplane-token --mesh payments --tag kuma.io/service=backend --valid-for 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Tags = map[string][]string{}
			for _, t := range tags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" || v == "" {
					return usagef("--tag %q must be written key=value", t)
				}
				req.Tags[k] = append(req.Tags[k], v)
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			tok, err := c.IssueDataplaneToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.deps.Stdout, strings.TrimSpace(tok))
			return err
		},
	}
	f := token.Flags()
	f.StringVarP(&req.Mesh, "mesh", "m", defaultMesh, "mesh the token is valid in")
	f.StringVar(&req.Name, "name", "", "bind the token to this dataplane (default: any dataplane of the mesh)")
	f.StringSliceVar(&tags, "tag", nil, "allow only this tag value, key=value (repeatable)")
	f.StringVar(&req.ValidFor, "valid-for", "", `lifetime such as "24h" or "30d" (default 10y)`)
	cmd.AddCommand(token)
	return cmd
}

func (a *app) newRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke tokens",
		Args:  cobra.NoArgs,
	}
	var req client.RevokeRequest
	var file string
	token := &cobra.Command{
		Use:   "dataplane-token [--token-file FILE | --mesh MESH --id ID]",
		Short: "Revoke a dataplane token",
		Long: `dataplane-token revokes one dataplane token: the control plane refuses it at
bootstrap and on every new xDS stream from then on, and ends the xDS streams
open with it. Give the token (its mesh and id are read from it) or
its mesh and id (the jti claim).`,
		Example: `  atollctl revoke dataplane-token --token-file backend-1.token
  atollctl revoke dataplane-token --mesh payments --id 4f6c0e8e-…`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return fmt.Errorf("reading the token: %w", err)
				}
				req.Token = strings.TrimSpace(string(b))
			}
			if req.Token == "" && (req.Mesh == "" || req.ID == "") {
				return usagef("give --token-file, or --mesh and --id")
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			mesh, id, err := c.RevokeDataplaneToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.deps.Stdout, "revoked dataplane token %s of mesh %q\n", id, mesh)
			return err
		},
	}
	f := token.Flags()
	f.StringVar(&file, "token-file", "", "file holding the token to revoke")
	f.StringVarP(&req.Mesh, "mesh", "m", "", "mesh of the token (with --id)")
	f.StringVar(&req.ID, "id", "", "token id, the jti claim (with --mesh)")
	cmd.AddCommand(token)
	return cmd
}
