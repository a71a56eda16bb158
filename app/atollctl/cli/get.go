package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Output formats of get.
const (
	outputTable = "table"
	outputYAML  = "yaml"
	outputJSON  = "json"
)

// defaultMesh is the mesh of mesh-scoped resources when none is given.
const defaultMesh = "default"

// getOptions are the flags of get.
type getOptions struct {
	mesh         string
	output       string
	size, offset int
	selector     []string
	allMeshes    bool
	nameContains string
}

func (a *app) newGetCommand() *cobra.Command {
	o := &getOptions{}
	cmd := &cobra.Command{
		Use:   "get TYPE [NAME]",
		Short: "Show one resource or a list of resources",
		Long: `Show one resource or a list of resources of a type.

TYPE is any name of a resource type: its plural (meshtimeouts), singular
(meshtimeout), short name (mt) or type name (MeshTimeout). Mesh-scoped types are
read from the mesh given by -m (default "default"), or from every mesh with -A.`,
		Example: `  atollctl get meshes
  atollctl get meshtimeouts -m payments -o yaml
  atollctl get dataplane backend-1 -m payments
  atollctl get mt -A -l team=core --size 10 --offset 10`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("get needs a resource type: one of the commands below")
			}
			d, err := a.lookupType(args[0])
			if err != nil {
				return err
			}
			return a.runGet(cmd, d, o, args[1:])
		},
	}
	f := cmd.PersistentFlags()
	f.StringVarP(&o.mesh, "mesh", "m", defaultMesh, "mesh of mesh-scoped resources")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format: table, yaml or json")
	f.IntVar(&o.size, "size", 0, "page size of a list (server default 100, at most 1000)")
	f.IntVar(&o.offset, "offset", 0, "number of resources to skip in a list")
	f.StringArrayVarP(&o.selector, "selector", "l", nil, "only resources with these labels, as k=v,k2=v2 (repeatable)")
	f.BoolVarP(&o.allMeshes, "all-meshes", "A", false, "list a mesh-scoped type across every mesh")
	f.StringVar(&o.nameContains, "name-contains", "", "only resources whose name contains this text")

	for _, d := range a.deps.Registry.All() {
		cmd.AddCommand(&cobra.Command{
			Use:     d.Path + " [NAME]",
			Aliases: aliases(d),
			Short:   fmt.Sprintf("Show %s resources (%s)", d.Name, describe(d, aliases(d))),
			Args:    maxArgs(1, "at most one resource name"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.runGet(cmd, d, o, args)
			},
		})
	}
	return cmd
}

// maxArgs allows at most n positional arguments.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%q takes %s (got %d arguments)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// runGet shows resources of type d; args is empty (list) or one name.
func (a *app) runGet(cmd *cobra.Command, d *resource.Descriptor, o *getOptions, args []string) error {
	if len(args) > 1 {
		return usagef("get takes a type and at most one name (got %d arguments after the type)", len(args))
	}
	switch o.output {
	case outputTable, outputYAML, outputJSON:
	default:
		return usagef("invalid --output %q: use table, yaml or json", o.output)
	}
	if o.size < 0 || o.offset < 0 {
		return usagef("--size and --offset must not be negative")
	}
	mesh := ""
	if d.Scope == resource.ScopeMesh {
		mesh = o.mesh
		if o.allMeshes {
			if cmd.Flags().Changed("mesh") {
				return usagef("--all-meshes and --mesh are mutually exclusive")
			}
			mesh = ""
		} else if mesh == "" {
			return usagef("--mesh must not be empty (or use --all-meshes)")
		}
	} else if o.allMeshes {
		return usagef("--all-meshes applies to mesh-scoped types only: %s is global", d.Name)
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	if len(args) == 1 {
		if o.allMeshes {
			return usagef("--all-meshes lists resources: it cannot be used with a name")
		}
		return a.getOne(cmd, c, d, resource.Key{Mesh: mesh, Name: args[0]}, o.output)
	}
	labels, err := parsePairs(o.selector, "--selector", true)
	if err != nil {
		return err
	}
	page, err := c.List(cmd.Context(), d, mesh, client.ListOptions{
		Size: o.size, Offset: o.offset, Labels: labels, NameContains: o.nameContains,
	})
	if err != nil {
		return errors.New(apiMessage(err))
	}
	out := cmd.OutOrStdout()
	if o.output != outputTable {
		return printList(out, d, page, o.output)
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), noResourcesMessage(d, mesh, o.allMeshes))
		return nil
	}
	if err := printTable(out, d, page.Items, a.deps.Now()); err != nil {
		return err
	}
	if page.NextOffset >= 0 {
		fmt.Fprintf(out, "\nRerun command with --offset=%d argument to retrieve more resources\n", page.NextOffset)
	}
	return nil
}

// getOne shows one resource.
func (a *app) getOne(cmd *cobra.Command, c *client.Client, d *resource.Descriptor, key resource.Key, output string) error {
	res, err := c.Get(cmd.Context(), d, key)
	if client.IsNotFound(err) {
		return errors.New(noResourcesMessage(d, key.Mesh, false))
	}
	if err != nil {
		return errors.New(apiMessage(err))
	}
	out := cmd.OutOrStdout()
	switch output {
	case outputTable:
		return printTable(out, d, []*resource.Resource{res}, a.deps.Now())
	default:
		j, err := resource.EncodeJSON(d, res)
		if err != nil {
			return err
		}
		return printDocument(out, j, output)
	}
}

// noResourcesMessage is kumactl's wording for an empty answer.
func noResourcesMessage(d *resource.Descriptor, mesh string, allMeshes bool) string {
	switch {
	case d.Scope == resource.ScopeGlobal:
		return "No resources found"
	case allMeshes:
		return "No resources found in any mesh"
	default:
		return fmt.Sprintf("No resources found in %s mesh", mesh)
	}
}

// printList prints a page as {total, items, next} in YAML or JSON.
func printList(w io.Writer, d *resource.Descriptor, page client.ListResult, output string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"total":%d,"items":[`, page.Total)
	for i, res := range page.Items {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := resource.EncodeJSON(d, res)
		if err != nil {
			return err
		}
		b.Write(j)
	}
	b.WriteString(`],"next":`)
	if page.Next == "" {
		b.WriteString("null")
	} else {
		next, err := json.Marshal(page.Next)
		if err != nil {
			return err
		}
		b.Write(next)
	}
	b.WriteByte('}')
	return printDocument(w, b.Bytes(), output)
}

// printDocument prints JSON as indented JSON or as YAML with its key order.
func printDocument(w io.Writer, j []byte, output string) error {
	if output == outputYAML {
		y, err := resource.JSONToYAML(j)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, j, "", "  "); err != nil {
		return fmt.Errorf("formatting JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// typeList is the help text listing the types, for commands whose
// subcommands are not shown.
func typeList(reg *resource.Registry) string {
	var b strings.Builder
	for _, d := range reg.All() {
		fmt.Fprintf(&b, "  %-20s %-18s %s\n", d.Path, d.Name, describe(d, aliases(d)))
	}
	return b.String()
}
