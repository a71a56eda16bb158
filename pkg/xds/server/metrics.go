package server

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the data-plane server's Prometheus metrics.
type metrics struct {
	streams       *prometheus.GaugeVec
	responses     *prometheus.CounterVec
	acks          *prometheus.CounterVec
	nacks         *prometheus.CounterVec
	refused       *prometheus.CounterVec
	requests      *prometheus.CounterVec
	insightWrites *prometheus.CounterVec

	// The children of responses, acks and nacks by type (and protocol),
	// looked up once: streams count every response and answer.
	sent     map[[2]string]prometheus.Counter
	acked    map[string]prometheus.Counter
	rejected map[string]prometheus.Counter
}

// xdsTypes are the short type names metrics use.
var xdsTypes = []string{"lds", "rds", "cds", "eds", "sds", "other"}

func (m *metrics) cacheChildren() {
	m.sent, m.acked, m.rejected = map[[2]string]prometheus.Counter{}, map[string]prometheus.Counter{}, map[string]prometheus.Counter{}
	for _, t := range xdsTypes {
		for _, p := range []string{"sotw", "delta"} {
			m.sent[[2]string{t, p}] = m.responses.WithLabelValues(t, p)
		}
		m.acked[t] = m.acks.WithLabelValues(t)
		m.rejected[t] = m.nacks.WithLabelValues(t)
	}
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "atoll_xds_streams",
			Help: "Open ADS streams, by protocol (sotw, delta).",
		}, []string{"protocol"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_xds_responses_sent_total",
			Help: "xDS responses sent to proxies, by type (lds, rds, cds, eds, sds) and protocol.",
		}, []string{"type", "protocol"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_xds_acks_total",
			Help: "xDS responses proxies accepted, by type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_xds_nacks_total",
			Help: "xDS responses proxies rejected (NACKs), by type. Any increase means a proxy runs on older configuration.",
		}, []string{"type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_xds_streams_refused_total",
			Help: "ADS streams refused, by gRPC code (Unauthenticated, PermissionDenied, NotFound, …).",
		}, []string{"code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_dp_server_http_requests_total",
			Help: "Requests to the data-plane server's HTTP endpoints, by path and status code.",
		}, []string{"path", "code"}),
		insightWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "atoll_dataplane_insight_writes_total",
			Help: "DataplaneInsight writes, by result (ok, error).",
		}, []string{"result"}),
	}
	m.cacheChildren()
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.streams, m.responses, m.acks, m.nacks, m.refused, m.requests, m.insightWrites} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return m, nil
}
