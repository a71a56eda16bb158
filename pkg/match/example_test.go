package match_test

import (
	"fmt"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/meshtimeout"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/pkg/match"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// A policy plugin prepares the policies of its type once per mesh snapshot,
// then asks per proxy and per outbound. Here a mesh-wide MeshTimeout sets
// defaults and a Dataplane-level one shortens the request timeout to backend.
func ExamplePrepared_Match() {
	policy := func(name string, spec *meshtimeout.Spec) *resource.Resource {
		return &resource.Resource{Type: "MeshTimeout", Meta: resource.Meta{Name: name, Mesh: "default"}, Spec: spec}
	}
	mesh := targetref.TargetRef{Kind: targetref.Mesh}
	policies := []*resource.Resource{
		policy("defaults", &meshtimeout.Spec{To: []targetref.To[meshtimeout.Conf]{{
			TargetRef: mesh,
			Default:   meshtimeout.Conf{IdleTimeout: "1h", HTTP: &meshtimeout.HTTP{RequestTimeout: "15s"}},
		}}}),
		policy("web-to-backend", &meshtimeout.Spec{
			TargetRef: &targetref.TargetRef{Kind: targetref.Dataplane, Labels: map[string]string{"app": "web"}},
			To: []targetref.To[meshtimeout.Conf]{{
				TargetRef: targetref.TargetRef{Kind: targetref.MeshService, Name: "backend"},
				Default:   meshtimeout.Conf{HTTP: &meshtimeout.HTTP{RequestTimeout: "5s"}},
			}},
		}),
	}
	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{Type: "MeshTimeout", Mesh: "default"}, policies)
	if err != nil {
		panic(err)
	}

	web := resource.Meta{Name: "web-1", Mesh: "default", Labels: map[string]string{"app": "web"}}
	spec := &dataplane.Spec{Networking: dataplane.Networking{Address: "10.0.0.1", Inbound: []dataplane.Inbound{{
		Port: 8080, Tags: map[string]string{dataplane.ServiceTag: "web"},
	}}}}
	res := prep.Match(web, spec)
	for _, svc := range []string{"backend", "payments"} {
		conf, ok := res.To.For(match.Destination{Kind: targetref.MeshService, Name: svc, Port: 8080})
		if !ok {
			continue // no policy: keep the built-in defaults
		}
		fmt.Printf("%s: requestTimeout=%s idleTimeout=%s\n%s\n", svc, conf.Conf.HTTP.RequestTimeout, conf.Conf.IdleTimeout, conf.Explain())
	}
	// Output:
	// backend: requestTimeout=5s idleTimeout=1h
	// MeshTimeout default/defaults spec.to[0]
	// MeshTimeout default/web-to-backend spec.to[0]
	// payments: requestTimeout=15s idleTimeout=1h
	// MeshTimeout default/defaults spec.to[0]
}
