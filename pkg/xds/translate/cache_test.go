package translate

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// cacheCases are every golden IR plus the large benchmark proxies.
func cacheCases(t *testing.T) map[string]*ir.Proxy {
	t.Helper()
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.ir.yaml"))
	require.NoError(t, err)
	cases := map[string]*ir.Proxy{}
	for _, in := range inputs {
		cases[filepath.Base(in)] = loadIR(t, in)
	}
	cases["bench-envoy"] = benchProxy(200, ir.FlavourEnvoy)
	cases["bench-proxyless"] = benchProxy(200, ir.FlavourProxyless)
	return cases
}

// TestCacheMatchesTranslate: translating through a Cache, cold or warm,
// and in two parts joined by Merge, yields exactly what Translate yields.
func TestCacheMatchesTranslate(t *testing.T) {
	c := NewCache()
	for name, p := range cacheCases(t) {
		t.Run(name, func(t *testing.T) {
			want, err := Translate(p)
			require.NoError(t, err)
			wantYAML, err := want.EncodeYAML()
			require.NoError(t, err)
			var versions []string
			for range 2 { // cold, then warm
				got, version, err := c.Translate(p)
				require.NoError(t, err)
				require.NoError(t, Check(got))
				gotYAML, err := got.EncodeYAML()
				require.NoError(t, err)
				require.Equal(t, string(wantYAML), string(gotYAML))
				versions = append(versions, version)
			}
			require.Equal(t, versions[0], versions[1], "a version is a function of content")
			require.Len(t, versions[0], 32)
		})
	}
}

func TestCacheSharesOutboundResources(t *testing.T) {
	c := NewCache()
	a := benchProxy(50, ir.FlavourEnvoy)
	b := benchProxy(50, ir.FlavourEnvoy)
	b.Identity.Dataplane, b.Node.ID = "web-2", "default.web-2"
	b.Inbounds[0].Address = "10.0.0.2"

	ra, va, err := c.Translate(a)
	require.NoError(t, err)
	entries := c.Len()
	rb, vb, err := c.Translate(b)
	require.NoError(t, err)
	require.NotEqual(t, va, vb, "different inbounds, different versions")
	require.Equal(t, entries+1, c.Len(), "only the new inbound was rendered")
	require.Same(t, ra.Endpoints[7], rb.Endpoints[7], "equal clusters share one load assignment")

	// A changed endpoint re-renders that cluster only, and changes the version.
	b2 := benchProxy(50, ir.FlavourEnvoy)
	b2.Identity.Dataplane, b2.Node.ID = "web-2", "default.web-2"
	b2.Inbounds[0].Address = "10.0.0.2"
	b2.Clusters[3].Localities[0].Endpoints[0].Port = 9999
	rb2, vb2, err := c.Translate(b2)
	require.NoError(t, err)
	require.NotEqual(t, vb, vb2)
	require.NotSame(t, rb.Endpoints[3], rb2.Endpoints[3])
	require.Same(t, rb.Endpoints[4], rb2.Endpoints[4])

	// What translation does not read (the node's address) leaves the version.
	b3 := benchProxy(50, ir.FlavourEnvoy)
	b3.Identity.Dataplane, b3.Node.ID = "web-2", "default.web-2"
	b3.Inbounds[0].Address = "10.0.0.2"
	b3.Node.Address = "192.0.2.1"
	_, vb3, err := c.Translate(b3)
	require.NoError(t, err)
	require.Equal(t, vb, vb3)

	c.Sweep()
	c.Sweep()
	require.Zero(t, c.Len(), "entries unused for a whole sweep interval are dropped")
}

func TestCacheRejectsWhatTranslateRejects(t *testing.T) {
	c := NewCache()
	p := loadIR(t, "testdata/http-strict.ir.yaml")
	p.Secrets = nil
	_, _, err := c.Translate(p)
	require.ErrorContains(t, err, `mTLS refers to secret "atoll-identity", which is missing`)

	p = loadIR(t, "testdata/http-plain.ir.yaml")
	p.Outbounds[0].Routes[0].Clusters[0].Name = "nope"
	_, _, err = c.Outbounds(p)
	require.ErrorContains(t, err, `cluster "nope" is not defined`)
}

// TestDigestCoversEveryField fails when an IR type gains or loses a field:
// the digester (digest.go) must then be updated, or two different IRs could
// share a cache entry and a version.
func TestDigestCoversEveryField(t *testing.T) {
	want := map[reflect.Type]int{
		reflect.TypeFor[ir.Cluster](): 7, reflect.TypeFor[ir.Locality](): 5, reflect.TypeFor[ir.Endpoint](): 3,
		reflect.TypeFor[ir.Outbound](): 7, reflect.TypeFor[ir.Route](): 5, reflect.TypeFor[ir.RouteMatch](): 3,
		reflect.TypeFor[ir.WeightedCluster](): 2, reflect.TypeFor[ir.Retry](): 5, reflect.TypeFor[ir.Timeouts](): 7,
		reflect.TypeFor[ir.Inbound](): 10, reflect.TypeFor[ir.Authorization](): 2, reflect.TypeFor[ir.Principal](): 2,
		reflect.TypeFor[ir.Secret](): 4, reflect.TypeFor[ir.MTLS](): 3, reflect.TypeFor[ir.TransparentProxy](): 3,
	}
	for typ, n := range want {
		require.Equal(t, n, typ.NumField(), "ir.%s changed: update digest.go and this count", typ.Name())
	}
}
