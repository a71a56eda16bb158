package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atoll-mesh/atoll/pkg/client"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

func (a *app) newInspectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show what the control plane observes and generates",
		Args:  cobra.NoArgs,
	}
	var mesh string
	var tags []string
	var size, offset int
	var output string
	list := &cobra.Command{
		Use:     "dataplanes",
		Aliases: []string{"dps"},
		Short:   "List dataplanes with their connection status",
		Example: `  atollctl inspect dataplanes -m payments
  atollctl inspect dataplanes --tag kuma.io/service=backend`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want, err := parseTags(tags)
			if err != nil {
				return err
			}
			c, err := a.newClient()
			if err != nil {
				return err
			}
			page, err := c.DataplaneOverviews(cmd.Context(), mesh, want, client.ListOptions{Size: size, Offset: offset})
			if err != nil {
				return err
			}
			if output == "json" || output == "yaml" {
				return a.printStructured(page, output)
			}
			return a.printOverviews(page)
		},
	}
	list.Flags().StringVarP(&mesh, "mesh", "m", defaultMesh, "mesh of the dataplanes")
	list.Flags().StringSliceVar(&tags, "tag", nil, "keep dataplanes with an inbound tag key=value (repeatable)")
	list.Flags().IntVar(&size, "size", 0, "page size (server default 100)")
	list.Flags().IntVar(&offset, "offset", 0, "skip this many dataplanes")
	list.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")

	var what, oneOutput string
	var withIR bool
	one := &cobra.Command{
		Use:   "dataplane NAME",
		Short: "Show one dataplane's status or the configuration generated for it",
		Long: `inspect dataplane shows what the control plane knows about one dataplane:
  --type overview (default)  the dataplane and its connection insight
  --type config              the xDS configuration the control plane generates for it
                             (secrets redacted); --ir adds the intermediate representation
  --type policies            which policies apply to it and why: per policy type, the
                             policies that select it (least specific first) and, for each
                             destination and inbound, the merged configuration with the
                             policy entries that produced it`,
		Example: `  atollctl inspect dataplane backend-1 -m payments --type config
  atollctl inspect dataplane backend-1 -m payments --type policies`,
		Args: exactArgs(1, "the name of the dataplane"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.newClient()
			if err != nil {
				return err
			}
			switch what {
			case "config":
				body, err := c.DataplaneConfig(cmd.Context(), mesh, args[0], oneOutput != "json", withIR)
				if err != nil {
					return err
				}
				_, err = a.deps.Stdout.Write(body)
				return err
			case "policies":
				body, err := c.DataplaneRules(cmd.Context(), mesh, args[0], oneOutput != "json")
				if err != nil {
					return err
				}
				_, err = a.deps.Stdout.Write(body)
				return err
			case "overview":
				ov, err := c.DataplaneOverview(cmd.Context(), mesh, args[0])
				if err != nil {
					return err
				}
				return a.printStructured(ov, oneOutput)
			}
			return usagef("--type must be overview, config or policies, got %q", what)
		},
	}
	one.Flags().StringVarP(&mesh, "mesh", "m", defaultMesh, "mesh of the dataplane")
	one.Flags().StringVar(&what, "type", "overview", "overview, config or policies")
	one.Flags().BoolVar(&withIR, "ir", false, "with --type config: include the proxy's intermediate representation")
	one.Flags().StringVarP(&oneOutput, "output", "o", "yaml", "yaml or json")
	meshes := &cobra.Command{
		Use:   "meshes",
		Short: "List meshes with their dataplanes and policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.newClient()
			if err != nil {
				return err
			}
			items, err := c.MeshInsights(cmd.Context())
			if err != nil {
				return err
			}
			now := a.deps.Now()
			var rows [][]string
			for _, m := range items {
				mtls := "off"
				if m.MTLS != nil {
					mtls = m.MTLS.EnabledBackend
				}
				policies := 0
				for _, p := range m.Policies {
					policies += p.Total
				}
				rows = append(rows, []string{m.Name, mtls, fmt.Sprintf("%d/%d", m.Dataplanes.Online, m.Dataplanes.Total),
					fmt.Sprint(policies), age(now, m.ModificationTime)})
			}
			return writeTable(a.deps.Stdout, []string{"NAME", "MTLS", "DATAPLANES", "POLICIES", "AGE"}, rows)
		},
	}
	cmd.AddCommand(list, one, meshes)
	return cmd
}

func parseTags(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usagef("--tag %q must be written key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// printStructured writes v as JSON or YAML.
func (a *app) printStructured(v any, format string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if b, err = resource.JSONToYAML(b); err != nil {
			return err
		}
	} else {
		b = append(b, '\n')
	}
	_, err = a.deps.Stdout.Write(b)
	return err
}

// overviewRow is what the table shows of one dataplane.
type overviewRow struct {
	mesh, name, services, status, lastConnected, certExpiry string
	sent, rejected                                          uint64
	age                                                     string
}

func (a *app) printOverviews(page client.OverviewPage) error {
	if len(page.Items) == 0 {
		fmt.Fprintln(a.deps.Stderr, "No dataplanes found")
		return nil
	}
	now := a.deps.Now()
	headers := []string{"MESH", "NAME", "SERVICES", "STATUS", "LAST CONNECTED", "RESPONSES SENT", "RESPONSES REJECTED", "CERT EXPIRES", "AGE"}
	var rows [][]string
	for _, ov := range page.Items {
		r := overviewOf(ov, now)
		rows = append(rows, []string{r.mesh, r.name, r.services, r.status, r.lastConnected,
			fmt.Sprint(r.sent), fmt.Sprint(r.rejected), r.certExpiry, r.age})
	}
	if err := writeTable(a.deps.Stdout, headers, rows); err != nil {
		return err
	}
	if page.Next != "" {
		if u, err := url.Parse(page.Next); err == nil {
			fmt.Fprintf(a.deps.Stdout, "\nRerun command with --offset=%s argument to retrieve more resources\n", u.Query().Get("offset"))
		}
	}
	return nil
}

func overviewOf(ov client.DataplaneOverview, now time.Time) overviewRow {
	r := overviewRow{mesh: ov.Mesh, name: ov.Name, status: "Offline", lastConnected: "never", certExpiry: emptyCell, age: age(now, ov.ModificationTime)}
	var dp struct {
		Networking struct {
			Inbound []struct {
				Tags map[string]string `json:"tags"`
			} `json:"inbound"`
		} `json:"networking"`
	}
	_ = json.Unmarshal(ov.Dataplane, &dp)
	var services []string
	for _, in := range dp.Networking.Inbound {
		if s := in.Tags["kuma.io/service"]; s != "" {
			services = append(services, s)
		}
	}
	sort.Strings(services)
	r.services = strings.Join(services, ",")
	var ins struct {
		Subscriptions []struct {
			ConnectTime    *time.Time `json:"connectTime"`
			DisconnectTime *time.Time `json:"disconnectTime"`
			Status         struct {
				Total struct {
					ResponsesSent     json.Number `json:"responsesSent"`
					ResponsesRejected json.Number `json:"responsesRejected"`
				} `json:"total"`
			} `json:"status"`
		} `json:"subscriptions"`
		MTLS *struct {
			CertificateExpirationTime *time.Time `json:"certificateExpirationTime"`
		} `json:"mTLS"`
	}
	if len(ov.DataplaneInsight) == 0 || json.Unmarshal(ov.DataplaneInsight, &ins) != nil {
		return r
	}
	for _, s := range ins.Subscriptions {
		sent, _ := s.Status.Total.ResponsesSent.Int64()
		rej, _ := s.Status.Total.ResponsesRejected.Int64()
		r.sent += uint64(sent)
		r.rejected += uint64(rej)
	}
	if n := len(ins.Subscriptions); n > 0 {
		last := ins.Subscriptions[n-1]
		if last.ConnectTime != nil {
			r.lastConnected = age(now, *last.ConnectTime) + " ago"
			if last.DisconnectTime == nil {
				r.status = "Online"
			}
		}
	}
	if ins.MTLS != nil && ins.MTLS.CertificateExpirationTime != nil {
		r.certExpiry = ins.MTLS.CertificateExpirationTime.UTC().Format(time.RFC3339)
	}
	return r
}
