package storetest

import (
	"time"

	"github.com/atoll-mesh/atoll/api/dataplane"
	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/api/mesh"
	"github.com/atoll-mesh/atoll/api/meshservice"
	"github.com/atoll-mesh/atoll/api/secret"
	"github.com/atoll-mesh/atoll/api/targetref"
	"github.com/atoll-mesh/atoll/api/zone"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// Fixtures: small but realistic resources of every registered type. Each
// call returns a fresh value the test may change.

func newMesh(name string) *resource.Resource {
	return &resource.Resource{
		Type: resource.MeshType,
		Meta: resource.Meta{Name: name, Labels: map[string]string{"team": "platform"}},
		Spec: &mesh.Spec{MTLS: &mesh.MTLS{
			EnabledBackend: "ca-1",
			Backends: []mesh.Backend{{
				Name: "ca-1", Type: mesh.BackendBuiltin, Mode: mesh.ModeStrict,
				DPCert: &mesh.DPCert{Rotation: &mesh.Rotation{Expiration: "1d"}},
			}},
		}},
	}
}

func newZone(name string) *resource.Resource {
	enabled := true
	return &resource.Resource{
		Type: resource.ZoneType,
		Meta: resource.Meta{Name: name},
		Spec: &zone.Spec{Enabled: &enabled},
	}
}

func newGlobalSecret(name string) *resource.Resource {
	return &resource.Resource{
		Type: resource.GlobalSecretType,
		Meta: resource.Meta{Name: name},
		Spec: &secret.Spec{Data: []byte("global-" + name)},
	}
}

func newSecret(meshName, name string) *resource.Resource {
	return &resource.Resource{
		Type: resource.SecretType,
		Meta: resource.Meta{Name: name, Mesh: meshName},
		Spec: &secret.Spec{Data: []byte{0, 1, 2, 0xff, 'x'}},
	}
}

func newDataplane(meshName, name string, labels map[string]string) *resource.Resource {
	return &resource.Resource{
		Type: resource.DataplaneType,
		Meta: resource.Meta{Name: name, Mesh: meshName, Labels: labels},
		Spec: &dataplane.Spec{Networking: dataplane.Networking{
			Address: "10.0.0.1",
			Inbound: []dataplane.Inbound{{
				Port: 8080, ServicePort: 80, Name: "http",
				Tags:   map[string]string{dataplane.ServiceTag: "backend", dataplane.ProtocolTag: "http"},
				Health: &dataplane.Health{Ready: true},
			}},
			TransparentProxying: &dataplane.TransparentProxying{RedirectPortInbound: 15006, RedirectPortOutbound: 15001},
		}},
	}
}

func newInsight(meshName, name string) *resource.Resource {
	connected := time.Date(2025, 3, 4, 5, 6, 7, 800_000_000, time.UTC)
	return &resource.Resource{
		Type: resource.DataplaneInsightType,
		Meta: resource.Meta{Name: name, Mesh: meshName},
		Spec: &insight.DataplaneInsight{Subscriptions: []insight.Subscription{{
			ID: "sub-1", ControlPlaneInstanceID: "cp-0", ConnectTime: &connected,
			Status: insight.SubscriptionStatus{Total: insight.DiscoveryStats{ResponsesSent: 12, ResponsesAcknowledged: 11}},
		}}},
	}
}

func newMeshService(meshName, name string) *resource.Resource {
	return &resource.Resource{
		Type: resource.MeshServiceType,
		Meta: resource.Meta{Name: name, Mesh: meshName, Labels: map[string]string{"kuma.io/origin": "zone"}},
		Spec: &meshservice.Spec{
			Selector: meshservice.Selector{DataplaneTags: map[string]string{dataplane.ServiceTag: name}},
			Ports: []meshservice.Port{
				{Name: "http", Port: 80, TargetPort: &meshservice.IntOrString{Int: 8080}, AppProtocol: "http"},
				{Name: "admin", Port: 9000, TargetPort: &meshservice.IntOrString{Str: "admin"}},
			},
			State: "Available",
		},
		Status: &meshservice.Status{
			Addresses:        []meshservice.Address{{Hostname: name + ".svc.mesh.local"}},
			VIPs:             []meshservice.VIP{{IP: "241.0.0.7"}},
			DataplaneProxies: &meshservice.DataplaneProxies{Connected: 2, Healthy: 1, Total: 3},
		},
	}
}

func newPolicy(meshName, name string, labels map[string]string) *resource.Resource {
	retries := uint32(0) // a set zero must survive, unlike an absent value
	return &resource.Resource{
		Type: PolicyType,
		Meta: resource.Meta{Name: name, Mesh: meshName, Labels: labels},
		Spec: &PolicySpec{
			TargetRef: &targetref.TargetRef{Kind: targetref.MeshSubset, Tags: map[string]string{"version": "v2"}},
			To: []targetref.To[PolicyConf]{{
				TargetRef: targetref.TargetRef{Kind: targetref.MeshService, Name: "backend", SectionName: "http"},
				Default: PolicyConf{
					ConnectTimeout: "5s",
					MaxRetries:     &retries,
					Headers:        []PolicyHeader{{Name: "x-b", Value: "2"}, {Name: "x-a", Value: "1"}},
					Metadata:       map[string]string{"owner": "team-a"},
				},
			}},
		},
		Status: &PolicyStatus{Conditions: []PolicyCondition{{Type: "Accepted", Status: "True", Reason: "Valid"}}},
	}
}

// everyType returns one resource of every registered type, mesh-scoped ones
// in meshName.
func everyType(meshName string) []*resource.Resource {
	return []*resource.Resource{
		newMesh(meshName),
		newZone("zone-1"),
		newGlobalSecret("global-1"),
		newSecret(meshName, "secret-1"),
		newDataplane(meshName, "dp-1", map[string]string{"app": "web"}),
		newInsight(meshName, "dp-1"),
		newMeshService(meshName, "backend"),
		newPolicy(meshName, "policy-1", map[string]string{"kuma.io/origin": "global"}),
	}
}

// meshScoped returns one resource of every mesh-scoped type in meshName.
func meshScoped(meshName string) []*resource.Resource {
	return []*resource.Resource{
		newSecret(meshName, "secret-1"),
		newDataplane(meshName, "dp-1", nil),
		newInsight(meshName, "dp-1"),
		newMeshService(meshName, "backend"),
		newPolicy(meshName, "policy-1", nil),
	}
}
