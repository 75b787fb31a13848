// Package metrics holds the gateway's Prometheus metrics, exported on the
// admin listener at /metrics. Label values are bounded: reasons, API ids of
// the repository, policy names — never trace ids or raw paths.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is one gateway's set of metrics, on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Refusals counts requests the security chain or the portal refused, by
	// reason (ip, credential, signature, replay, rate_limit, ...).
	Refusals *prometheus.CounterVec
	// RateLimit counts rate-limit decisions by policy and outcome
	// (allowed, rejected, fail_open, fail_closed).
	RateLimit *prometheus.CounterVec
	// StoreErrors counts failed calls to a shared store, by store (nonce,
	// ratelimit) and backend (redis, memory).
	StoreErrors *prometheus.CounterVec
}

// New registers the metrics on a fresh registry, with the Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_portal_refusals_total", Help: "Portal requests refused, by reason.",
		}, []string{"reason"}),
		RateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_ratelimit_decisions_total", Help: "Rate-limit decisions, by policy and outcome.",
		}, []string{"policy", "outcome"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_store_errors_total", Help: "Failed calls to the nonce and rate-limit stores, by store and backend.",
		}, []string{"store", "backend"}),
	}
	r.MustRegister(m.Refusals, m.RateLimit, m.StoreErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
