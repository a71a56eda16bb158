package diagnostics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/atoll-mesh/atoll/pkg/version"
)

// NewRegistry returns a metrics registry holding the Go runtime and process
// collectors and an atoll_build_info gauge describing info. Binaries create
// one, register their components' metrics in it and serve it at /metrics;
// nothing uses Prometheus's global default registry.
func NewRegistry(info version.Info) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "atoll_build_info",
		Help: "A metric with a constant value of 1, labelled with the version of the running build.",
		ConstLabels: prometheus.Labels{
			"version":       info.Version,
			"git_commit":    info.GitCommit,
			"based_on_kuma": info.BasedOnKuma,
			"goversion":     info.GoVersion,
		},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics collector: %w", err)
		}
	}
	return reg, nil
}
