package mesh_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/duration"
	"github.com/atoll-mesh/atoll/api/mesh"
)

func problems(s *mesh.Spec) map[string]string {
	out := map[string]string{}
	for _, e := range s.Validate() {
		out[e.Field] = e.Message
	}
	return out
}

func TestValidMeshes(t *testing.T) {
	require.Empty(t, problems(&mesh.Spec{}))
	builtin := &mesh.Spec{MTLS: &mesh.MTLS{EnabledBackend: "ca-1", Backends: []mesh.Backend{{
		Name: "ca-1", Type: mesh.BackendBuiltin, Mode: mesh.ModePermissive,
		DPCert: &mesh.DPCert{Rotation: &mesh.Rotation{Expiration: "1d"}},
		Conf:   &mesh.BackendConf{CACert: &mesh.CACert{RSAbits: 4096, Expiration: "10y"}},
	}}}}
	require.Empty(t, problems(builtin))
	require.Equal(t, "ca-1", builtin.ActiveBackend().Name)
	provided := &mesh.Spec{MTLS: &mesh.MTLS{EnabledBackend: "p", Backends: []mesh.Backend{{
		Name: "p", Type: mesh.BackendProvided,
		Conf: &mesh.BackendConf{Cert: &mesh.DataSource{Secret: "c"}, Key: &mesh.DataSource{InlineString: "k"}},
	}}}}
	require.Empty(t, problems(provided))
	off := &mesh.Spec{MTLS: &mesh.MTLS{Backends: builtin.MTLS.Backends}}
	require.Nil(t, off.ActiveBackend(), "backends without enabledBackend mean mTLS off")
}

func TestInvalidMeshesNameTheField(t *testing.T) {
	spec := &mesh.Spec{
		MTLS: &mesh.MTLS{EnabledBackend: "nope", Backends: []mesh.Backend{
			{Name: "a", Type: "vault", Mode: "strict"},
			{Name: "a", Type: mesh.BackendBuiltin, DPCert: &mesh.DPCert{Rotation: &mesh.Rotation{Expiration: duration.Duration("10s")}},
				Conf: &mesh.BackendConf{CACert: &mesh.CACert{RSAbits: 1024}}},
			{Name: "p", Type: mesh.BackendProvided, Conf: &mesh.BackendConf{Cert: &mesh.DataSource{Secret: "c", File: "/f"}}},
		}},
		MeshServices: &mesh.MeshServices{Mode: "Sometimes"},
	}
	require.Equal(t, map[string]string{
		"mtls.enabledBackend":                         "has to be set to one of the backends in the mesh",
		"mtls.backends[0].type":                       `must be one of builtin, provided, got "vault"`,
		"mtls.backends[0].mode":                       `must be one of STRICT, PERMISSIVE, got "strict"`,
		"mtls.backends[1].name":                       `"a" is used by more than one backend`,
		"mtls.backends[1].dpCert.rotation.expiration": "must be at least 1m",
		"mtls.backends[1].conf.caCert.RSAbits":        "must be at least 2048",
		"mtls.backends[2].conf.cert":                  "exactly one of secret, file, inline or inlineString must be set",
		"mtls.backends[2].conf.key":                   "must be set",
		"meshServices.mode":                           `must be one of Disabled, Everywhere, ReachableBackends, Exclusive, got "Sometimes"`,
	}, problems(spec))
	require.Equal(t, map[string]string{"mtls": "has to be set when zoneEgress enabled"},
		problems(&mesh.Spec{Routing: &mesh.Routing{ZoneEgress: true}}))
}
