package match_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/validate"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Compile-time guards: MeshTimeout exposes every section to the matcher.
var (
	_ match.Targeted                      = (*meshtimeout.Spec)(nil)
	_ match.ToLister[meshtimeout.Conf]    = (*meshtimeout.Spec)(nil)
	_ match.FromLister[meshtimeout.Conf]  = (*meshtimeout.Spec)(nil)
	_ match.RulesLister[meshtimeout.Conf] = (*meshtimeout.Spec)(nil)
	_ match.Mergeable[meshtimeout.Conf]   = meshtimeout.Conf{}
)

// testConf is the conf of TestPolicy, a policy type that only exists in
// these tests, with the list shapes MeshTimeout lacks.
type testConf struct {
	// Level is a scalar.
	Level *int `json:"level,omitempty"`
	// Backends is a list: a more specific conf replaces it.
	Backends []string `json:"backends,omitzero"`
	// AppendHeaders is an append* list: confs concatenate.
	AppendHeaders []string `json:"appendHeaders,omitzero"`
	// Sub is a nested object, merged field by field.
	Sub *testSub `json:"sub,omitempty"`
}

// testSub is a nested object of testConf.
type testSub struct {
	A string `json:"a,omitempty"`
	B string `json:"b,omitempty"`
}

// Merge follows the contract of match.Mergeable.
func (c testConf) Merge(p testConf) testConf {
	out := c
	if p.Level != nil {
		out.Level = p.Level
	}
	if p.Backends != nil {
		out.Backends = p.Backends
	}
	if p.AppendHeaders != nil {
		out.AppendHeaders = slices.Concat(c.AppendHeaders, p.AppendHeaders)
	}
	switch {
	case p.Sub == nil:
	case c.Sub == nil:
		out.Sub = p.Sub
	default:
		s := *c.Sub
		if p.Sub.A != "" {
			s.A = p.Sub.A
		}
		if p.Sub.B != "" {
			s.B = p.Sub.B
		}
		out.Sub = &s
	}
	return out
}

// testSpec is the spec of TestPolicy, with every section the matcher knows.
type testSpec struct {
	TargetRef *targetref.TargetRef       `json:"targetRef,omitempty"`
	To        []targetref.To[testConf]   `json:"to,omitempty"`
	From      []targetref.From[testConf] `json:"from,omitempty"`
	Rules     []targetref.Rule[testConf] `json:"rules,omitempty"`
	Default   *testConf                  `json:"default,omitempty"`
}

func (s *testSpec) Validate() validate.Errors            { return nil }
func (s *testSpec) GetTargetRef() *targetref.TargetRef   { return s.TargetRef }
func (s *testSpec) GetTo() []targetref.To[testConf]      { return s.To }
func (s *testSpec) GetFrom() []targetref.From[testConf]  { return s.From }
func (s *testSpec) GetRules() []targetref.Rule[testConf] { return s.Rules }
func (s *testSpec) GetDefault() *testConf                { return s.Default }

// registry knows the core types, MeshTimeout and TestPolicy. The MeshTimeout
// descriptor is written here because pkg/match must not import policies/.
func registry(t testing.TB) *resource.Registry {
	t.Helper()
	policy := &resource.PolicyShape{HasTo: true, HasFrom: true, HasRules: true}
	r, err := resource.NewRegistry(append(resource.CoreDescriptors(),
		resource.Descriptor{
			Name: "MeshTimeout", Path: "meshtimeouts", Singular: "meshtimeout", Scope: resource.ScopeMesh,
			Policy: policy, NewSpec: func() resource.Spec { return &meshtimeout.Spec{} },
		},
		resource.Descriptor{
			Name: "TestPolicy", Path: "testpolicies", Singular: "testpolicy", Scope: resource.ScopeMesh,
			Policy: policy, NewSpec: func() resource.Spec { return &testSpec{} },
		},
	)...)
	require.NoError(t, err)
	return r
}

// fixture is a decoded YAML stream, split by role.
type fixture struct {
	dataplanes []*resource.Resource
	services   []*resource.Resource
	policies   []*resource.Resource
}

// load decodes a multi-document YAML stream of universal resources.
func load(t testing.TB, data string) fixture {
	t.Helper()
	reg := registry(t)
	var f fixture
	for _, doc := range resource.SplitYAML([]byte(data)) {
		res, err := reg.DecodeYAML(doc.Data)
		require.NoError(t, err, "document %d (line %d)", doc.Index, doc.Line)
		d, _ := reg.Get(res.Type)
		require.Empty(t, res.Spec.Validate(), "%s %q must be valid", res.Type, res.Meta.Name)
		switch {
		case res.Type == resource.DataplaneType:
			f.dataplanes = append(f.dataplanes, res)
		case res.Type == resource.MeshServiceType:
			f.services = append(f.services, res)
		case d.IsPolicy():
			f.policies = append(f.policies, res)
		default:
			t.Fatalf("unexpected %s in fixture", res.Type)
		}
	}
	slices.SortFunc(f.dataplanes, func(a, b *resource.Resource) int { return compareNames(a, b) })
	return f
}

func compareNames(a, b *resource.Resource) int {
	switch {
	case a.Meta.Name < b.Meta.Name:
		return -1
	case a.Meta.Name > b.Meta.Name:
		return 1
	}
	return 0
}

// matchAll prepares f's policies and matches every dataplane of f, by name.
func matchAll[C match.Mergeable[C]](t testing.TB, f fixture) (*match.Prepared[C], map[string]*match.Result[C]) {
	t.Helper()
	prep, err := match.Prepare[C](match.Inputs{Mesh: "default", MeshServices: f.services}, f.policies)
	require.NoError(t, err)
	out := map[string]*match.Result[C]{}
	for _, dp := range f.dataplanes {
		res, err := prep.MatchResource(dp)
		require.NoError(t, err)
		out[dp.Meta.Name] = res
	}
	return prep, out
}

// names returns the names of the contributors of m, in merge order.
func names[C any](m *match.Merged[C]) []string {
	if m == nil {
		return nil
	}
	out := make([]string, len(m.Contributors))
	for i, c := range m.Contributors {
		out[i] = c.Name
	}
	return out
}

// policyNames returns the names of the applied policies, in order.
func policyNames[C match.Mergeable[C]](r *match.Result[C]) []string {
	out := make([]string, len(r.Policies))
	for i, p := range r.Policies {
		out[i] = p.Name
	}
	return out
}

// service returns the outbound destination of a MeshService, or of one of
// its ports.
func service(name string, port uint32) match.Destination {
	return match.Destination{Kind: targetref.MeshService, Name: name, Port: port}
}

// dpSpec returns a dataplane spec with one inbound per service.
func dpSpec(services ...string) *dataplane.Spec {
	s := &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1"}}
	for i, svc := range services {
		s.Networking.Inbound = append(s.Networking.Inbound, dataplane.Inbound{
			Port: uint32(8080 + i), Tags: map[string]string{dataplane.ServiceTag: svc, "app": svc},
		})
	}
	return s
}
