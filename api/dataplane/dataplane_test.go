package dataplane_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/dataplane"
)

func problems(s *dataplane.Spec) map[string]string {
	out := map[string]string{}
	for _, e := range s.Validate() {
		out[e.Field] = e.Message
	}
	return out
}

func TestValidDataplane(t *testing.T) {
	dp := &dataplane.Spec{Networking: dataplane.Networking{
		Address: "10.0.0.1",
		Inbound: []dataplane.Inbound{{Port: 8080, ServicePort: 80, Tags: map[string]string{"kuma.io/service": "web", "kuma.io/protocol": "http"}}},
		Outbound: []dataplane.Outbound{
			{Port: 10001, Tags: map[string]string{"kuma.io/service": "db"}},
			{Port: 10002, BackendRef: &dataplane.BackendRef{Kind: "MeshService", Name: "redis"}},
		},
		TransparentProxying: &dataplane.TransparentProxying{RedirectPortInbound: 15006, RedirectPortOutbound: 15001},
	}}
	require.Empty(t, problems(dp))
	require.Equal(t, "web", dp.Networking.Inbound[0].Service())
	require.True(t, dp.Networking.Inbound[0].IsReady())
	require.Empty(t, problems(&dataplane.Spec{Networking: dataplane.Networking{Address: "backend.internal",
		Gateway: &dataplane.Gateway{Type: "DELEGATED", Tags: map[string]string{"kuma.io/service": "edge"}}}}), "a gateway needs no inbound")
}

func TestInvalidDataplaneNamesEveryField(t *testing.T) {
	dp := &dataplane.Spec{Networking: dataplane.Networking{
		Address: "not an address",
		Inbound: []dataplane.Inbound{
			{Port: 0, Tags: map[string]string{"kuma.io/protocol": "smtp"}, State: "Maybe"},
			{Port: 8080, Tags: map[string]string{"kuma.io/service": "a b"}},
			{Port: 8080, Tags: map[string]string{"kuma.io/service": "c"}},
		},
		Outbound:            []dataplane.Outbound{{Port: 1, Tags: map[string]string{"kuma.io/service": "x"}, BackendRef: &dataplane.BackendRef{Kind: "MeshService", Name: "x"}}},
		TransparentProxying: &dataplane.TransparentProxying{RedirectPortInbound: 15001, RedirectPortOutbound: 15001},
	}}
	require.Equal(t, map[string]string{
		"networking.address":                                  `"not an address" is not a valid IP address or hostname`,
		"networking.inbound[0].port":                          "must be a port number between 1 and 65535",
		"networking.inbound[0].state":                         `must be one of Ready, NotReady, Ignored, got "Maybe"`,
		`networking.inbound[0].tags["kuma.io/service"]`:       "tag has to exist",
		`networking.inbound[0].tags["kuma.io/protocol"]`:      `must be one of http, http2, grpc, tcp, kafka, tls, got "smtp"`,
		`networking.inbound[1].tags["kuma.io/service"]`:       `tag value "a b" must consist of letters, digits and '.', '-', '_', ':', '/'`,
		"networking.inbound[2].port":                          "port 8080 is already used by inbound[1]",
		"networking.outbound[0]":                              "tags and backendRef cannot be set together",
		"networking.transparentProxying.redirectPortOutbound": "must differ from redirectPortInbound",
	}, problems(dp))
	require.Equal(t, map[string]string{
		"networking.address": "must not be empty",
		"networking":         "has to contain at least one inbound interface or gateway",
	}, problems(&dataplane.Spec{}))
}

func TestInboundReadiness(t *testing.T) {
	require.False(t, (&dataplane.Inbound{State: dataplane.StateNotReady}).IsReady())
	require.False(t, (&dataplane.Inbound{Health: &dataplane.Health{Ready: false}}).IsReady())
	require.True(t, (&dataplane.Inbound{State: dataplane.StateReady, Health: &dataplane.Health{Ready: true}}).IsReady())
}
