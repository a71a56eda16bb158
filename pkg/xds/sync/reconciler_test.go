package sync

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/resource"
	"github.com/atoll-mesh/atoll/pkg/store"
	"github.com/atoll-mesh/atoll/pkg/xds/identity"
	"github.com/atoll-mesh/atoll/pkg/xds/ir"
	"github.com/atoll-mesh/atoll/pkg/xds/translate"
)

// shop is a mesh where web calls backend and payments, backend calls db,
// and admin calls nothing.
const shop = `type: Mesh
name: shop
---
` + "%s"

func shopEnv(t *testing.T, o envOptions) *env {
	e := newEnv(t, o)
	e.apply(fmt.Sprintf(shop, dp("shop", "web-1", "10.0.0.1", "web", outbounds("backend", "payments"))+"---\n"+
		dp("shop", "backend-1", "10.0.0.2", "backend", outbounds("db"))+"---\n"+
		dp("shop", "db-1", "10.0.0.3", "db")+"---\n"+
		dp("shop", "payments-1", "10.0.0.4", "payments")+"---\n"+
		dp("shop", "admin-1", "10.0.0.5", "admin")))
	e.connect(ir.FlavourEnvoy, "shop", "web-1", "backend-1", "db-1", "payments-1", "admin-1")
	return e
}

func TestConnectedProxiesGetTheirConfiguration(t *testing.T) {
	e := shopEnv(t, envOptions{})
	web := e.current("shop", "web-1")
	require.NoError(t, translate.Check(web.res))
	require.Equal(t, []string{"10.0.0.2:8080"}, endpointsOf(web.res, "backend"))
	require.Equal(t, []string{"10.0.0.4:8080"}, endpointsOf(web.res, "payments"))
	require.Len(t, web.version, 32)

	// A dataplane that is not connected gets nothing; connecting publishes
	// it, disconnecting forgets it.
	e.apply(dp("shop", "lonely-1", "10.0.0.9", "lonely"))
	e.quiet()
	_, ok := e.rec.get(resource.Key{Mesh: "shop", Name: "lonely-1"})
	require.False(t, ok)
	mark := e.rec.mark()
	e.connect(ir.FlavourEnvoy, "shop", "lonely-1")
	require.Equal(t, []string{"lonely-1"}, e.rec.publishedTo(mark))
	mark = e.rec.mark()
	e.r.ProxyDisconnected(resource.Key{Mesh: "shop", Name: "lonely-1"})
	e.quiet()
	require.Equal(t, []string{"shop/lonely-1"}, e.rec.forgotten(mark))
	require.Empty(t, e.rec.publishedTo(mark))
}

func TestNewEndpointReachesExactlyTheCallers(t *testing.T) {
	e := shopEnv(t, envOptions{})
	mark := e.rec.mark()
	e.apply(dp("shop", "backend-2", "10.0.0.12", "backend"))
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark), "only web calls backend")
	require.Equal(t, []string{"10.0.0.12:8080", "10.0.0.2:8080"}, endpointsOf(e.current("shop", "web-1").res, "backend"))

	// A not-ready instance is no endpoint.
	mark = e.rec.mark()
	e.apply(dp("shop", "backend-2", "10.0.0.12", "backend", "      state: NotReady"))
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
	require.Equal(t, []string{"10.0.0.2:8080"}, endpointsOf(e.current("shop", "web-1").res, "backend"))
}

func TestUnrelatedChangeKeepsVersions(t *testing.T) {
	e := shopEnv(t, envOptions{})
	web := e.current("shop", "web-1").version
	mark := e.rec.mark()
	e.apply(dp("shop", "db-2", "10.0.0.13", "db"))
	e.quiet()
	require.Equal(t, []string{"backend-1"}, e.rec.publishedTo(mark), "only backend calls db")
	require.Equal(t, web, e.current("shop", "web-1").version)
}

func TestMeshTimeoutChangesOnlyTheCallersOfItsTarget(t *testing.T) {
	e := shopEnv(t, envOptions{})
	mark := e.rec.mark()
	e.apply(`type: MeshTimeout
mesh: shop
name: backend-timeout
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        http: {requestTimeout: 3s}
`)
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
	rc := routeOf(t, e.current("shop", "web-1").res, "outbound:127.0.0.1:10001")
	require.Equal(t, 3*time.Second, rc.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetTimeout().AsDuration())
	rc = routeOf(t, e.current("shop", "web-1").res, "outbound:127.0.0.1:10002")
	require.Equal(t, 15*time.Second, rc.GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetTimeout().AsDuration(), "payments keeps the default")

	// A policy for backend's own inbounds changes backend only.
	mark = e.rec.mark()
	e.apply(`type: MeshTimeout
mesh: shop
name: backend-inbound
spec:
  targetRef: {kind: MeshService, name: backend}
  rules:
    - default: {idleTimeout: 10m}
`)
	e.quiet()
	require.Equal(t, []string{"backend-1"}, e.rec.publishedTo(mark))

	// Deleting the first policy restores web's previous configuration.
	mark = e.rec.mark()
	e.delete("MeshTimeout", resource.Key{Mesh: "shop", Name: "backend-timeout"})
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
}

func routeOf(t *testing.T, res *translate.Resources, name string) *routev3.RouteConfiguration {
	t.Helper()
	for _, r := range res.Routes {
		if r.GetName() == name {
			return r
		}
	}
	t.Fatalf("no route configuration %q", name)
	return nil
}

func TestDeletingTheMeshForgetsItsProxies(t *testing.T) {
	e := shopEnv(t, envOptions{})
	e.apply("type: Mesh\nname: other\n---\n" + dp("other", "web-1", "10.9.0.1", "web"))
	e.connect(ir.FlavourEnvoy, "other", "web-1")
	mark := e.rec.mark()
	e.delete(resource.MeshType, resource.Key{Name: "shop"})
	e.quiet()
	require.Equal(t, []string{"shop/admin-1", "shop/backend-1", "shop/db-1", "shop/payments-1", "shop/web-1"}, e.rec.forgotten(mark))
	require.Empty(t, e.rec.publishedTo(mark))
	_, ok := e.rec.get(resource.Key{Mesh: "other", Name: "web-1"})
	require.True(t, ok, "another mesh is untouched")

	// Deleting one dataplane forgets that proxy only.
	mark = e.rec.mark()
	e.delete(resource.DataplaneType, resource.Key{Mesh: "other", Name: "web-1"})
	e.quiet()
	require.Equal(t, []string{"other/web-1"}, e.rec.forgotten(mark))
}

func TestMTLSDeliversCertificatesWithTheSPIFFEID(t *testing.T) {
	e := shopEnv(t, envOptions{})
	mark := e.rec.mark()
	e.apply(`type: Mesh
name: shop
mtls:
  enabledBackend: ca-1
  backends:
    - name: ca-1
      type: builtin
`)
	e.quiet()
	require.Equal(t, []string{"admin-1", "backend-1", "db-1", "payments-1", "web-1"}, e.rec.publishedTo(mark), "a mesh-wide change reaches every proxy")
	web := e.current("shop", "web-1")
	require.NoError(t, translate.Check(web.res))
	leaf := identityCert(t, web.res)
	require.Len(t, leaf.URIs, 1+2) // spiffe id, then kuma:// tag URIs
	require.Equal(t, "spiffe://shop/web", leaf.URIs[0].String())
	require.NotNil(t, findCluster(web.res, "backend").GetTransportSocket(), "upstream mTLS")

	// A new endpoint does not re-issue certificates.
	mark = e.rec.mark()
	e.apply(dp("shop", "backend-2", "10.0.0.12", "backend"))
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
	require.Equal(t, leaf.SerialNumber, identityCert(t, e.current("shop", "web-1").res).SerialNumber)
}

func identityCert(t *testing.T, res *translate.Resources) *x509.Certificate {
	t.Helper()
	for _, s := range res.Secrets {
		if s.GetName() != ir.IdentityCertName {
			continue
		}
		chain := s.GetType().(*tlsv3.Secret_TlsCertificate).TlsCertificate.GetCertificateChain().GetInlineString()
		block, _ := pem.Decode([]byte(chain))
		require.NotNil(t, block)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		return cert
	}
	t.Fatal("no identity secret")
	return nil
}

func TestABrokenProxyKeepsItsLastConfigurationAndOthersContinue(t *testing.T) {
	e := shopEnv(t, envOptions{})
	before := e.current("shop", "web-1")
	errorsBefore := e.counter("atoll_xds_sync_errors_total", "stage", "build")
	// web's inbound now listens where its first outbound does.
	mark := e.rec.mark()
	e.apply(`type: Dataplane
mesh: shop
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 10001
      address: 127.0.0.1
      tags:
        kuma.io/service: web
` + outbounds("backend", "payments"))
	e.apply(dp("shop", "payments-2", "10.0.0.14", "payments"))
	e.quiet()
	require.Empty(t, e.rec.publishedTo(mark))
	require.Empty(t, e.rec.forgotten(mark))
	require.Equal(t, before.version, e.current("shop", "web-1").version, "the last good configuration stays")
	require.Greater(t, e.counter("atoll_xds_sync_errors_total", "stage", "build"), errorsBefore)

	// Other proxies are still served.
	mark = e.rec.mark()
	e.apply(dp("shop", "db-2", "10.0.0.13", "db"))
	e.quiet()
	require.Equal(t, []string{"backend-1"}, e.rec.publishedTo(mark))
}

func TestBurstsAreCoalesced(t *testing.T) {
	e := shopEnv(t, envOptions{})
	mark := e.rec.mark()
	var docs string
	for i := range 30 {
		docs += "---\n" + dp("shop", fmt.Sprintf("backend-%d", i+10), fmt.Sprintf("10.0.1.%d", i+1), "backend")
	}
	e.apply(docs)
	e.quiet()
	var webPublishes int
	for _, c := range e.rec.since(mark) {
		if c.key.Name == "web-1" {
			webPublishes++
		}
	}
	require.Len(t, endpointsOf(e.current("shop", "web-1").res, "backend"), 31)
	require.Less(t, webPublishes, 10, "30 writes in a burst are a few publishes, not 30")
}

func TestProxylessMakeBeforeBreak(t *testing.T) {
	e := newEnv(t, envOptions{mbbDelay: 300 * time.Millisecond})
	e.apply("type: Mesh\nname: grpc\n---\n" +
		dp("grpc", "client-1", "10.3.0.1", "client") + "---\n" +
		dp("grpc", "greeter-1", "10.3.0.2", "greeter") + "---\n" +
		dp("grpc", "echo-1", "10.3.0.3", "echo"))
	e.connect(ir.FlavourProxyless, "grpc", "client-1")
	require.Equal(t, []string{"client", "echo", "greeter"}, clusterNames(e.current("grpc", "client-1").res))

	mark := e.rec.mark()
	e.delete(resource.DataplaneType, resource.Key{Mesh: "grpc", Name: "echo-1"})
	e.quiet()
	var seen [][]string
	for _, c := range e.rec.since(mark) {
		if c.key.Name == "client-1" {
			require.NoError(t, translate.CheckConsistency(c.res))
			var listeners []string
			for _, l := range c.res.Listeners {
				listeners = append(listeners, l.GetName())
			}
			require.NotContains(t, listeners, "echo", "routing to echo stops at once")
			seen = append(seen, clusterNames(c.res))
		}
	}
	require.Equal(t, [][]string{{"client", "echo", "greeter"}, {"client", "greeter"}}, seen,
		"the removed cluster is kept for one publish, then removed")
}

func TestCertificateRenewalRegeneratesExactlyThatProxy(t *testing.T) {
	due := &dueInjector{due: make(chan struct{}, 1)}
	e := shopEnv(t, envOptions{identities: func(c *identity.Cache) Identities { due.Cache = c; return due }})
	e.apply("type: Mesh\nname: shop\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n")
	e.quiet()
	before := identityCert(t, e.current("shop", "web-1").res)

	mark := e.rec.mark()
	key := resource.Key{Mesh: "shop", Name: "web-1"}
	due.Cache.Forget(key) // what the scheduler's due time means: the next Get issues anew
	due.inject(key)
	e.quiet()
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
	require.NotEqual(t, before.SerialNumber, identityCert(t, e.current("shop", "web-1").res).SerialNumber)
}

// dueInjector is the real identity cache with due proxies injected by the
// test (the scheduler itself is tested in package identity).
type dueInjector struct {
	*identity.Cache
	due  chan struct{}
	keys []resource.Key
}

func (d *dueInjector) inject(keys ...resource.Key) {
	d.keys = append(d.keys, keys...)
	d.due <- struct{}{}
}
func (d *dueInjector) Due() <-chan struct{} { return d.due }
func (d *dueInjector) TakeDue() []resource.Key {
	k := d.keys
	d.keys = nil
	return k
}

func TestInspectBuildsAnyDataplane(t *testing.T) {
	e := shopEnv(t, envOptions{})
	e.apply(dp("shop", "idle-1", "10.0.0.20", "idle", outbounds("backend")))
	e.quiet()
	p, res, err := e.r.Inspect(t.Context(), resource.Key{Mesh: "shop", Name: "idle-1"})
	require.NoError(t, err)
	require.Equal(t, "idle-1", p.Identity.Dataplane)
	require.Equal(t, []string{"10.0.0.2:8080"}, endpointsOf(res, "backend"))

	// A connected proxy inspects to what it was sent.
	_, res, err = e.r.Inspect(t.Context(), resource.Key{Mesh: "shop", Name: "web-1"})
	require.NoError(t, err)
	gotYAML, err := res.EncodeYAML()
	require.NoError(t, err)
	wantYAML, err := e.current("shop", "web-1").res.EncodeYAML()
	require.NoError(t, err)
	require.Equal(t, string(wantYAML), string(gotYAML))

	_, _, err = e.r.Inspect(t.Context(), resource.Key{Mesh: "shop", Name: "nope"})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = e.r.Inspect(t.Context(), resource.Key{Mesh: "nope", Name: "web-1"})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestInspectConfigRedactsPrivateKeys(t *testing.T) {
	e := shopEnv(t, envOptions{})
	e.apply("type: Mesh\nname: shop\nmtls:\n  enabledBackend: ca-1\n  backends:\n    - name: ca-1\n      type: builtin\n")
	e.quiet()
	xds, irJSON, err := e.r.InspectConfig(t.Context(), resource.Key{Mesh: "shop", Name: "web-1"})
	require.NoError(t, err)
	for _, doc := range [][]byte{xds, irJSON} {
		require.NotContains(t, string(doc), "PRIVATE KEY")
		require.Contains(t, string(doc), Redacted)
		require.Contains(t, string(doc), "BEGIN CERTIFICATE", "certificates are public")
	}
	require.Contains(t, string(xds), `"outbound:127.0.0.1:10001"`)
	// The proxy's own configuration keeps its key.
	web := e.current("shop", "web-1")
	chain := web.res.Secrets[1].GetTlsCertificate().GetPrivateKey().GetInlineString()
	require.Contains(t, chain, "PRIVATE KEY")
}

func TestProxiesConnectedBeforeTheirDataplaneOrMesh(t *testing.T) {
	e := newEnv(t, envOptions{})
	// The proxy's stream is up before its mesh and Dataplane exist.
	e.connect(ir.FlavourEnvoy, "late", "web-1")
	_, ok := e.rec.get(resource.Key{Mesh: "late", Name: "web-1"})
	require.False(t, ok)
	e.apply("type: Mesh\nname: late\n---\n" + dp("late", "web-1", "10.0.0.1", "web"))
	e.quiet()
	e.current("late", "web-1")

	// A reconnect is published again, unchanged or not.
	mark := e.rec.mark()
	e.connect(ir.FlavourEnvoy, "late", "web-1")
	require.Equal(t, []string{"web-1"}, e.rec.publishedTo(mark))
}

// TestInspectRulesSaysWhichPoliciesApplyAndWhy: the policies that select a
// dataplane, least specific first, and for each destination the merged
// conf with the policy entries that produced it.
func TestInspectRulesSaysWhichPoliciesApplyAndWhy(t *testing.T) {
	e := shopEnv(t, envOptions{})
	e.apply(`type: MeshTimeout
mesh: shop
name: mesh-wide
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: Mesh}
      default: {connectionTimeout: 4s}
---
type: MeshTimeout
mesh: shop
name: backend-timeout
spec:
  targetRef: {kind: Mesh}
  to:
    - targetRef: {kind: MeshService, name: backend}
      default:
        http: {requestTimeout: 3s}
---
type: MeshTimeout
mesh: shop
name: backend-inbound
spec:
  targetRef: {kind: MeshService, name: backend}
  rules:
    - default: {idleTimeout: 10m}
`)
	e.quiet()
	raw, err := e.r.InspectRules(t.Context(), resource.Key{Mesh: "shop", Name: "web-1"})
	require.NoError(t, err)
	var got struct {
		Mesh, Dataplane string
		Items           []struct {
			Type     string
			Policies []struct{ Name, Specificity string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &got), "%s", raw)
	require.Equal(t, "web-1", got.Dataplane)
	require.Len(t, got.Items, 1)
	mt := got.Items[0]
	require.Equal(t, "MeshTimeout", mt.Type)
	var names []string
	for _, p := range mt.Policies {
		names = append(names, p.Name)
	}
	require.ElementsMatch(t, []string{"mesh-wide", "backend-timeout"}, names, "backend-inbound selects backend's proxies, not web's")
	require.Contains(t, string(raw), `"requestTimeout":"3s"`)
	require.Contains(t, string(raw), `"connectionTimeout":"4s"`)
	require.Contains(t, string(raw), `"name":"backend-timeout","section":"to","index":0`, "the backend destination names the entry that set its timeout")

	_, err = e.r.InspectRules(t.Context(), resource.Key{Mesh: "shop", Name: "nope"})
	require.ErrorIs(t, err, store.ErrNotFound)
}
