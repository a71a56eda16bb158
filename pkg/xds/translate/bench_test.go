package translate

import (
	"fmt"
	"testing"

	"github.com/atoll-mesh/atoll/pkg/xds/ir"
)

// benchProxy returns a sidecar in a STRICT mesh with transparent proxying
// that reaches n services (alternately HTTP and TCP), each with three
// endpoints; proxyless proxies reach n gRPC services instead.
func benchProxy(n int, flavour ir.Flavour) *ir.Proxy {
	p := &ir.Proxy{
		Identity: ir.Identity{Mesh: "default", Dataplane: "web-1", Services: []string{"web"}},
		Flavour:  flavour,
		Node:     ir.Node{ID: "default.web-1"},
		MTLS:     ir.NewMTLS(ir.MTLSStrict),
		Inbounds: []ir.Inbound{{Address: "10.0.0.1", Port: 8080, Service: "web", Protocol: ir.ProtocolHTTP, Timeouts: ir.DefaultTimeouts()}},
		Secrets: []ir.Secret{
			{Name: ir.MeshCAName, TrustedCA: "ca"},
			{Name: ir.IdentityCertName, CertificateChain: "cert", PrivateKey: "key"},
		},
	}
	if flavour == ir.FlavourEnvoy {
		p.TransparentProxy = ir.TransparentProxy{RedirectPortInbound: 15006, RedirectPortOutbound: 15001, Passthrough: true}
	}
	for i := range n {
		svc := fmt.Sprintf("svc-%04d", i)
		proto := ir.ProtocolHTTP
		switch {
		case flavour == ir.FlavourProxyless:
			proto = ir.ProtocolGRPC
		case i%2 == 1:
			proto = ir.ProtocolTCP
		}
		p.Outbounds = append(p.Outbounds, ir.Outbound{
			Address:  fmt.Sprintf("240.0.%d.%d", i/250, i%250+1),
			Port:     80,
			Service:  svc,
			Protocol: proto,
			Routes:   []ir.Route{{Clusters: []ir.WeightedCluster{{Name: svc}}}},
			Timeouts: ir.DefaultTimeouts(),
		})
		c := ir.Cluster{Name: svc, Service: svc, Protocol: proto, ExpectedSAN: ir.SPIFFEID("default", svc), ConnectTimeout: ir.DefaultConnectTimeout}
		var eps []ir.Endpoint
		for j := range 3 {
			eps = append(eps, ir.Endpoint{Address: fmt.Sprintf("10.%d.%d.%d", j+1, i/250, i%250+1), Port: 8080})
		}
		c.Localities = []ir.Locality{{Zone: "zone-1", Endpoints: eps}}
		p.Clusters = append(p.Clusters, c)
	}
	p.Normalize()
	return p
}

// BenchmarkTranslate measures one proxy's translation, checks included, at
// 100 and 1,000 destination services (DESIGN §12: ≤ 1 ms CPU per proxy at
// 1,000 services).
func BenchmarkTranslate(b *testing.B) {
	for _, flavour := range []ir.Flavour{ir.FlavourEnvoy, ir.FlavourProxyless} {
		for _, n := range []int{100, 1000} {
			p := benchProxy(n, flavour)
			b.Run(fmt.Sprintf("%s/services=%d", flavour, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Translate(p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkHash measures the IR content hash used as a cache version.
func BenchmarkHash(b *testing.B) {
	for _, n := range []int{100, 1000} {
		p := benchProxy(n, ir.FlavourEnvoy)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Hash(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchProxiesPassCheck runs the full Check on the large benchmark
// proxies, whose translation Translate checks more cheaply.
func TestBenchProxiesPassCheck(t *testing.T) {
	for _, flavour := range []ir.Flavour{ir.FlavourEnvoy, ir.FlavourProxyless} {
		r, err := Translate(benchProxy(300, flavour))
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(r); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkCheck measures the full resource check (every Any unpacked).
func BenchmarkCheck(b *testing.B) {
	r, err := Translate(benchProxy(1000, ir.FlavourEnvoy))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(r); err != nil {
			b.Fatal(err)
		}
	}
}
