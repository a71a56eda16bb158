package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

const twoDataplanes = `type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 80
      tags:
        kuma.io/service: web
---
type: Dataplane
mesh: default
name: db-1
networking:
  address: 10.0.0.2
  inbound:
    - port: 5432
      tags:
        kuma.io/service: db
`

func TestInspectDataplanesShowsStatus(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	c.ok("apply", "-f", c.writeFile("dps.yaml", twoDataplanes))
	connected := c.now.Add(-10 * time.Minute)
	expires := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	_, err := cp.store.Create(t.Context(), &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "default", Name: "web-1"},
		Spec: &insight.DataplaneInsight{
			Subscriptions: []insight.Subscription{{ID: "s1", ControlPlaneInstanceID: "cp", ConnectTime: &connected,
				Status: insight.SubscriptionStatus{Total: insight.DiscoveryStats{ResponsesSent: 12, ResponsesRejected: 1}}}},
			MTLS: &insight.MTLS{CertificateExpirationTime: &expires},
		}})
	require.NoError(t, err)

	out := c.ok("inspect", "dataplanes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, []string{"MESH", "NAME", "SERVICES", "STATUS", "LAST", "CONNECTED", "RESPONSES", "SENT", "RESPONSES", "REJECTED", "CERT", "EXPIRES", "AGE"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"default", "db-1", "db", "Offline", "never", "0", "0", "-"}, strings.Fields(lines[1])[:8])
	require.Equal(t, []string{"default", "web-1", "web", "Online", "10m", "ago", "12", "1", "2026-01-03T00:00:00Z"}, strings.Fields(lines[2])[:9])

	filtered := c.ok("inspect", "dataplanes", "--tag", "kuma.io/service=db")
	require.Contains(t, filtered, "db-1")
	require.NotContains(t, filtered, "web-1")

	ov := c.ok("inspect", "dataplane", "web-1")
	require.Contains(t, ov, "type: DataplaneOverview")
	require.Contains(t, ov, "responsesSent: \"12\"")

	cfg := c.ok("inspect", "dataplane", "web-1", "--type", "config")
	require.Contains(t, cfg, "name: inbound:web-1")
	withIR := c.ok("inspect", "dataplane", "web-1", "--type", "config", "--ir", "-o", "json")
	require.Contains(t, withIR, `"ir":{"identity":{"dataplane":"web-1"}}`)
	rules := c.ok("inspect", "dataplane", "web-1", "--type", "policies")
	require.Contains(t, rules, "dataplane: web-1")
	require.Contains(t, rules, "- name: timeouts", "YAML by default")
	require.Contains(t, c.ok("inspect", "dataplane", "web-1", "--type", "policies", "-o", "json"), `"type":"MeshTimeout"`)

	meshes := strings.Fields(strings.Split(strings.TrimSpace(c.ok("inspect", "meshes")), "\n")[1])
	require.Equal(t, []string{"default", "off", "1/2", "0"}, meshes[:4], "one of two dataplanes online")

	require.Contains(t, c.fail("inspect", "dataplane", "nope").stderr, "Error:")
	require.Contains(t, c.fail("inspect", "dataplane", "web-1", "--type", "bogus").stderr, "--type must be overview, config or policies")
	require.Contains(t, c.fail("inspect", "dataplanes", "--tag", "novalue").stderr, "key=value")
}

func TestGenerateDataplaneToken(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	out := c.ok("generate", "dataplane-token", "--mesh", "default", "--name", "web-1", "--tag", "kuma.io/service=web", "--valid-for", "24h")
	token := strings.TrimSpace(out)
	_, err := cp.tokens.Verify(t.Context(), token, "default", "web-1", map[string][]string{"kuma.io/service": {"web"}})
	require.NoError(t, err)

	bad := c.fail("generate", "dataplane-token", "--mesh", "nope")
	require.Contains(t, bad.stderr, `mesh "nope" does not exist`)
	require.Contains(t, c.fail("generate", "dataplane-token", "--tag", "x").stderr, "key=value")
}

func TestRevokeDataplaneToken(t *testing.T) {
	cp := startControlPlane(t)
	c := newCLI(t, cp)
	token := strings.TrimSpace(c.ok("generate", "dataplane-token", "--mesh", "default", "--name", "web-1"))
	file := c.writeFile("web-1.token", token+"\n")
	out := c.ok("revoke", "dataplane-token", "--token-file", file)
	require.Contains(t, out, `of mesh "default"`)
	_, err := cp.tokens.Verify(t.Context(), token, "default", "web-1", nil)
	require.Error(t, err, "the token is refused after revocation")
	require.Contains(t, c.fail("revoke", "dataplane-token").stderr, "give --token-file, or --mesh and --id")
	require.Contains(t, c.fail("revoke", "dataplane-token", "--mesh", "nope", "--id", "x").stderr, `mesh "nope" does not exist`)
}
