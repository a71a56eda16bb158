package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/zone"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// emptyCell is shown for a value that is not set.
const emptyCell = "-"

// writeTable prints rows under upper-case headers in aligned columns, as
// kubectl does.
func writeTable(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			if c == "" && i > 0 {
				c = emptyCell
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

// column is one table column of a resource listing.
type column struct {
	header string
	value  func(*resource.Resource) string
}

// columnsFor returns the table columns of type d: MESH (mesh-scoped types),
// NAME, the type's own columns, then AGE computed against now.
func columnsFor(d *resource.Descriptor, now time.Time) []column {
	var cols []column
	if d.Scope == resource.ScopeMesh {
		cols = append(cols, column{"MESH", func(r *resource.Resource) string { return r.Meta.Mesh }})
	}
	cols = append(cols, column{"NAME", func(r *resource.Resource) string { return r.Meta.Name }})
	cols = append(cols, typeColumns(d)...)
	cols = append(cols, column{"AGE", func(r *resource.Resource) string { return age(now, r.Meta.ModificationTime) }})
	return cols
}

// typeColumns returns the columns that help for one type. Types without an
// entry get the generic columns only; every policy gets TARGETREF.
func typeColumns(d *resource.Descriptor) []column {
	switch d.Name {
	case resource.MeshType:
		return []column{
			{"MTLS", meshMTLS},
			{"LOCALITY", func(r *resource.Resource) string {
				s, _ := r.Spec.(*mesh.Spec)
				return onOff(s != nil && s.Routing != nil && s.Routing.LocalityAwareLoadBalancing)
			}},
			{"ZONEEGRESS", func(r *resource.Resource) string {
				s, _ := r.Spec.(*mesh.Spec)
				return onOff(s != nil && s.Routing != nil && s.Routing.ZoneEgress)
			}},
		}
	case resource.DataplaneType:
		return []column{
			{"ADDRESS", func(r *resource.Resource) string {
				if s, ok := r.Spec.(*dataplane.Spec); ok {
					return s.Networking.Address
				}
				return ""
			}},
			{"SERVICES", dataplaneServices},
			{"TAGS", dataplaneTags},
		}
	case resource.DataplaneInsightType:
		return []column{{"STATUS", func(r *resource.Resource) string {
			if s, ok := r.Spec.(*insight.DataplaneInsight); ok && s.IsOnline() {
				return "Online"
			}
			return "Offline"
		}}}
	case resource.MeshServiceType:
		return []column{{"PORTS", meshServicePorts}}
	case resource.ZoneType:
		return []column{{"ENABLED", func(r *resource.Resource) string {
			s, ok := r.Spec.(*zone.Spec)
			return strconv.FormatBool(!ok || s.IsEnabled())
		}}}
	}
	if d.IsPolicy() {
		return []column{{"TARGETREF", policyTargetRef}}
	}
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// meshMTLS shows the enabled CA backend as "<type>/<name>", or "off".
func meshMTLS(r *resource.Resource) string {
	s, ok := r.Spec.(*mesh.Spec)
	if !ok || s.MTLS == nil || s.MTLS.EnabledBackend == "" {
		return "off"
	}
	for _, b := range s.MTLS.Backends {
		if b.Name == s.MTLS.EnabledBackend {
			return b.Type + "/" + b.Name
		}
	}
	return s.MTLS.EnabledBackend
}

// dataplaneServices lists the kuma.io/service tags of the inbounds (or the
// gateway), in order, without repeats.
func dataplaneServices(r *resource.Resource) string {
	s, ok := r.Spec.(*dataplane.Spec)
	if !ok {
		return ""
	}
	var out []string
	for _, in := range s.Networking.Inbound {
		if svc := in.Tags[dataplane.ServiceTag]; svc != "" && !slices.Contains(out, svc) {
			out = append(out, svc)
		}
	}
	if g := s.Networking.Gateway; g != nil {
		if svc := g.Tags[dataplane.ServiceTag]; svc != "" && !slices.Contains(out, svc) {
			out = append(out, svc)
		}
	}
	return strings.Join(out, ",")
}

// dataplaneTags lists the inbound tags other than kuma.io/service as sorted
// key=value pairs, without repeats.
func dataplaneTags(r *resource.Resource) string {
	s, ok := r.Spec.(*dataplane.Spec)
	if !ok {
		return ""
	}
	set := map[string]bool{}
	add := func(tags map[string]string) {
		for k, v := range tags {
			if k != dataplane.ServiceTag {
				set[k+"="+v] = true
			}
		}
	}
	for _, in := range s.Networking.Inbound {
		add(in.Tags)
	}
	if g := s.Networking.Gateway; g != nil {
		add(g.Tags)
	}
	return strings.Join(slices.Sorted(maps.Keys(set)), ",")
}

// meshServicePorts lists ports as "port/protocol".
func meshServicePorts(r *resource.Resource) string {
	s, ok := r.Spec.(*meshservice.Spec)
	if !ok {
		return ""
	}
	out := make([]string, 0, len(s.Ports))
	for _, p := range s.Ports {
		v := strconv.FormatUint(uint64(p.Port), 10)
		if p.AppProtocol != "" {
			v += "/" + p.AppProtocol
		}
		out = append(out, v)
	}
	return strings.Join(out, ",")
}

// policyTargetRef shows a policy's top-level targetRef, for example "Mesh",
// "MeshService/backend" or "MeshSubset[version=v1]". Policies share the
// envelope but not a Go type, so the field is read from the spec's JSON.
func policyTargetRef(r *resource.Resource) string {
	b, err := json.Marshal(r.Spec)
	if err != nil {
		return "?"
	}
	var envelope struct {
		TargetRef *targetref.TargetRef `json:"targetRef"`
	}
	if err := json.Unmarshal(b, &envelope); err != nil {
		return "?"
	}
	return formatTargetRef(envelope.TargetRef)
}

// formatTargetRef writes a targetRef compactly; an absent one selects the
// whole mesh.
func formatTargetRef(t *targetref.TargetRef) string {
	if t == nil || t.Kind == "" {
		return string(targetref.Mesh)
	}
	out := string(t.Kind)
	if t.Name != "" {
		out += "/" + t.Name
	}
	var quals []string
	for _, m := range []map[string]string{t.Labels, t.Tags} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			quals = append(quals, k+"="+m[k])
		}
	}
	if t.SectionName != "" {
		quals = append(quals, "sectionName="+t.SectionName)
	}
	if len(t.ProxyTypes) > 0 {
		quals = append(quals, "proxyTypes="+strings.Join(t.ProxyTypes, "|"))
	}
	if len(quals) > 0 {
		out += "[" + strings.Join(quals, ",") + "]"
	}
	return out
}

// age returns how long ago t was, kubectl-style: "45s", "5m", "3h", "2d",
// "4y".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d < 365*24*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	default:
		return fmt.Sprintf("%dy", int(d/(365*24*time.Hour)))
	}
}

// printTable prints resources of type d as a table.
func printTable(w io.Writer, d *resource.Descriptor, items []*resource.Resource, now time.Time) error {
	cols := columnsFor(d, now)
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	rows := make([][]string, len(items))
	for i, r := range items {
		row := make([]string, len(cols))
		for j, c := range cols {
			row[j] = c.value(r)
		}
		rows[i] = row
	}
	return writeTable(w, headers, rows)
}
