package sync

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the reconciler's Prometheus metrics.
type metrics struct {
	rounds       prometheus.Counter
	roundSeconds prometheus.Histogram
	builds       prometheus.Counter
	publishes    prometheus.Counter
	unchanged    prometheus.Counter
	errors       *prometheus.CounterVec
	connected    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rounds: prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_sync_rounds_total",
			Help: "Reconciliation rounds (each builds the proxies that changes touched)."}),
		roundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "atoll_xds_sync_round_duration_seconds",
			Help: "Time to build, translate and publish the proxies of one round.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
		builds: prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_sync_builds_total",
			Help: "Proxies built."}),
		publishes: prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_sync_publishes_total",
			Help: "Configurations published (their version changed)."}),
		unchanged: prometheus.NewCounter(prometheus.CounterOpts{Name: "atoll_xds_sync_unchanged_total",
			Help: "Proxies built whose version had not changed, so nothing was published."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "atoll_xds_sync_errors_total",
			Help: "Proxies that could not be regenerated, by stage (identity, build, translate, publish); they keep their last configuration."}, []string{"stage"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "atoll_xds_sync_connected_proxies",
			Help: "Proxies the reconciler keeps configured."}),
	}
	for _, stage := range []string{"identity", "build", "translate", "publish"} {
		m.errors.WithLabelValues(stage)
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.rounds, m.roundSeconds, m.builds, m.publishes, m.unchanged, m.errors, m.connected} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
