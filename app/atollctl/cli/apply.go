package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// applyOptions are the flags of apply.
type applyOptions struct {
	files  []string
	dryRun bool
}

func (a *app) newApplyCommand() *cobra.Command {
	o := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resources from YAML or JSON documents",
		Long: `Create or update resources from files in Kuma's universal format: YAML
(several documents separated by "---") or JSON (one or more objects, or an
array). A directory applies its *.yaml, *.yml and *.json files in name order;
"-" reads standard input. Documents of mesh-scoped types without a mesh go to
the "default" mesh.

Every document is decoded and validated first; if any is invalid nothing is
sent. Then each is written in order; a failure does not stop the others, and
the command exits 1 with a summary.

Resource types:
` + typeList(a.deps.Registry),
		Example: `  atollctl apply -f mesh.yaml
  atollctl apply -f policies/ -f dataplane.json
  cat timeout.yaml | atollctl apply -f -
  atollctl apply -f timeout.yaml --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.files) == 0 {
				return usagef("apply needs at least one -f FILE|DIR|-")
			}
			return a.runApply(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "file", "f", nil, "file, directory or - (standard input) to apply (repeatable)")
	f.BoolVar(&o.dryRun, "dry-run", false, "have the control plane validate the resources and show what it would store, without storing anything")
	return cmd
}

// pending is one valid document, ready to be written.
type pending struct {
	doc  document
	desc *resource.Descriptor
	res  *resource.Resource
}

func (a *app) runApply(cmd *cobra.Command, o *applyOptions) error {
	docs, err := readDocuments(o.files, a.deps.Stdin)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fmt.Errorf("no resources found in %v", o.files)
	}
	stderr := cmd.ErrOrStderr()
	items, invalid := a.decodeAll(docs, stderr)
	if invalid > 0 {
		return fmt.Errorf("%d of %d resources are not valid; nothing was applied", invalid, len(docs))
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	failed, skipped := 0, 0
	for i, it := range items {
		res, err := a.applyOne(cmd, c, it, o.dryRun, i > 0, out)
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "%s: %s %q: %s\n", it.doc.where(), it.desc.Name, it.res.Meta.Name, apiMessage(err))
			var ce *client.ConnectionError
			if errors.As(err, &ce) {
				skipped = len(items) - i - 1
				break
			}
			continue
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "Warning: %s %q: %s\n", it.desc.Name, it.res.Meta.Name, w)
		}
	}
	if failed == 0 {
		return nil
	}
	applied := len(items) - failed - skipped
	msg := fmt.Sprintf("%d of %d resources could not be applied (%d applied", failed+skipped, len(items), applied)
	if skipped > 0 {
		msg += fmt.Sprintf(", %d not attempted", skipped)
	}
	return errors.New(msg + ")")
}

// decodeAll decodes and validates every document, reporting each problem as
// "resource[i] (file:line): field: reason". It returns the valid ones and how
// many were invalid.
func (a *app) decodeAll(docs []document, stderr io.Writer) ([]pending, int) {
	var items []pending
	invalid := 0
	report := func(doc document, err error) {
		invalid++
		var fes validate.Errors
		if !errors.As(err, &fes) || len(fes) == 0 {
			fmt.Fprintf(stderr, "%s: %v\n", doc.where(), err)
			return
		}
		for _, fe := range fes {
			fmt.Fprintf(stderr, "%s: %s\n", doc.where(), fe.Error())
		}
	}
	for _, doc := range docs {
		if doc.err != nil {
			report(doc, doc.err)
			continue
		}
		res, err := a.deps.Registry.DecodeJSON(doc.json)
		if err != nil {
			report(doc, err)
			continue
		}
		d, _ := a.deps.Registry.Get(res.Type)
		if d.ReadOnly {
			report(doc, fmt.Errorf("type: %s is read-only: the control plane writes it", d.Name))
			continue
		}
		if d.Scope == resource.ScopeMesh && res.Meta.Mesh == "" {
			res.Meta.Mesh = defaultMesh
		}
		if errs := resource.Validate(d, res); len(errs) > 0 {
			report(doc, errs)
			continue
		}
		items = append(items, pending{doc: doc, desc: d, res: res})
	}
	return items, invalid
}

// applyOne writes one resource and prints what happened; on a dry run it
// prints what would be stored, as a YAML document.
func (a *app) applyOne(cmd *cobra.Command, c *client.Client, it pending, dryRun, separate bool, out io.Writer) (client.PutResult, error) {
	res, err := c.Put(cmd.Context(), it.res, client.PutOptions{DryRun: dryRun})
	if err != nil {
		return res, err
	}
	verb := "updated"
	if res.Created {
		verb = "created"
	}
	if !dryRun {
		fmt.Fprintf(out, "%s %q %s\n", it.desc.Name, it.res.Meta.Name, verb)
		return res, nil
	}
	j, err := resource.EncodeJSON(it.desc, res.Resource)
	if err != nil {
		return res, err
	}
	y, err := resource.JSONToYAML(j)
	if err != nil {
		return res, err
	}
	if separate {
		fmt.Fprintln(out, "---")
	}
	fmt.Fprintf(out, "# %s %q would be %s (dry run: nothing was stored)\n%s", it.desc.Name, it.res.Meta.Name, verb, y)
	return res, nil
}
