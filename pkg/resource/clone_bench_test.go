package resource_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atoll-mesh/atoll/api/insight"
	"github.com/atoll-mesh/atoll/pkg/resource"
)

// busyInsight is a DataplaneInsight as the data-plane server keeps it: five
// subscriptions with counters and versions, and a certificate.
func busyInsight() *resource.Resource {
	now := time.Now()
	di := &insight.DataplaneInsight{MTLS: &insight.MTLS{CertificateExpirationTime: &now, LastCertificateRegeneration: &now,
		CertificateRegenerations: 3, IssuedBackend: "ca-1", SupportedBackends: []string{"ca-1"}}}
	for i := range 5 {
		di.Subscriptions = append(di.Subscriptions, insight.Subscription{
			ID: fmt.Sprintf("cp-1-delta-%d", i), ControlPlaneInstanceID: "cp-1", ConnectTime: &now, DisconnectTime: &now,
			Status: insight.SubscriptionStatus{LastUpdateTime: &now, Total: insight.DiscoveryStats{ResponsesSent: 40, ResponsesAcknowledged: 39},
				CDS: insight.DiscoveryStats{ResponsesSent: 10, ResponsesAcknowledged: 10}, LastNACK: "cds version x: bad"},
			Version: &insight.Version{KumaDp: &insight.Component{Version: "0.1.0"}, Envoy: &insight.Component{Version: "1.36.2"}},
		})
	}
	return &resource.Resource{Type: resource.DataplaneInsightType, Meta: resource.Meta{Mesh: "default", Name: "web-1"}, Spec: di}
}

// BenchmarkCloneDataplaneInsight: stores clone every insight written and
// read; "json" is what Clone does for specs without DeepCopySpec.
func BenchmarkCloneDataplaneInsight(b *testing.B) {
	reg, err := resource.NewRegistry(resource.CoreDescriptors()...)
	require.NoError(b, err)
	d, ok := reg.Get(resource.DataplaneInsightType)
	require.True(b, ok)
	res := busyInsight()
	b.Run("typed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := resource.Clone(d, res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := json.Marshal(res.Spec)
			if err != nil {
				b.Fatal(err)
			}
			if err := json.Unmarshal(raw, d.NewSpec()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
