package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// deleteOptions are the flags of delete.
type deleteOptions struct {
	mesh  string
	force bool
}

func (a *app) newDeleteCommand() *cobra.Command {
	o := &deleteOptions{}
	cmd := &cobra.Command{
		Use:   "delete TYPE NAME",
		Short: "Delete a resource",
		Long: `Delete one resource. TYPE is any name of a resource type (plural, singular,
short name or type name). Deleting a mesh deletes everything in it; it is
refused while dataplanes of the mesh are online, unless --force is given.`,
		Example: `  atollctl delete meshtimeout timeout-backend -m payments
  atollctl delete mesh payments --force`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("delete needs a resource type and a name")
			}
			d, err := a.lookupType(args[0])
			if err != nil {
				return err
			}
			return a.runDelete(cmd, d, o, args[1])
		},
	}
	f := cmd.PersistentFlags()
	f.StringVarP(&o.mesh, "mesh", "m", defaultMesh, "mesh of a mesh-scoped resource")
	f.BoolVar(&o.force, "force", false, "delete a mesh even while its dataplanes are online")

	for _, d := range a.deps.Registry.All() {
		if d.ReadOnly {
			continue
		}
		cmd.AddCommand(&cobra.Command{
			Use:     d.Singular + " NAME",
			Aliases: deleteAliases(d),
			Short:   fmt.Sprintf("Delete a %s (%s)", d.Name, describe(d, deleteAliases(d))),
			Args:    exactArgs(1, "the name of the resource"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.runDelete(cmd, d, o, args[0])
			},
		})
	}
	return cmd
}

// deleteAliases returns the CLI names of d other than its singular.
func deleteAliases(d *resource.Descriptor) []string {
	out := []string{d.Path}
	for _, s := range aliases(d) {
		if s != d.Singular {
			out = append(out, s)
		}
	}
	return out
}

func (a *app) runDelete(cmd *cobra.Command, d *resource.Descriptor, o *deleteOptions, name string) error {
	if d.ReadOnly {
		return fmt.Errorf("%s is read-only: the control plane writes it", d.Name)
	}
	key := resource.Key{Name: name}
	if d.Scope == resource.ScopeMesh {
		if o.mesh == "" {
			return usagef("--mesh must not be empty")
		}
		key.Mesh = o.mesh
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	err = c.Delete(cmd.Context(), d, key, client.DeleteOptions{Force: o.force})
	if client.IsNotFound(err) {
		return fmt.Errorf("there is no %s with name %q", d.Name, name)
	}
	if err != nil {
		return errors.New(apiMessage(err))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %q\n", d.Name, name)
	return nil
}
