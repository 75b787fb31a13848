// Package metrics holds the gateway's Prometheus metrics, exported on the
// admin listener at /metrics. Label values are bounded: API ids and step ids
// of the repository, step types, reasons, policy names, status codes —
// never trace ids or raw paths.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is one gateway's set of metrics, on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Requests counts portal answers by API, version and HTTP status;
	// requests that match no API count under api="".
	Requests *prometheus.CounterVec
	// Duration observes portal request durations by API and version.
	Duration *prometheus.HistogramVec
	// StepDuration observes step durations by step type.
	StepDuration *prometheus.HistogramVec
	// UpstreamErrors counts failed http and rpc steps by API, version and
	// step id (with onError: continue too).
	UpstreamErrors *prometheus.CounterVec
	// Refusals counts requests the chain refused, by reason (ip,
	// credential, signature, replay, rate_limit, ...).
	Refusals *prometheus.CounterVec
	// RateLimit counts rate-limit decisions by policy and outcome
	// (allowed, rejected, fail_open, fail_closed).
	RateLimit *prometheus.CounterVec
	// RateLimitEvictions counts live keys the embedded rate-limit store
	// dropped (least recently used first) to make room for new ones.
	RateLimitEvictions prometheus.Counter
	// StoreErrors counts failed calls to a shared store, by store (nonce,
	// ratelimit) and backend (redis, memory).
	StoreErrors *prometheus.CounterVec
	// HookCalls counts callouts to the hook services, by hook
	// (client_authentication, site_authentication, signature, permission)
	// and outcome (ok, refused, timeout, not_registered, error).
	HookCalls *prometheus.CounterVec
	// HookDuration observes callout durations by hook.
	HookDuration *prometheus.HistogramVec

	ReloadSuccess   prometheus.Gauge
	ReloadTimestamp prometheus.Gauge
	Reloads         *prometheus.CounterVec
	ConfigInfo      *prometheus.GaugeVec

	// Traffic is the last hour of requests and errors per minute.
	Traffic Series

	AccessLogQueue   prometheus.Gauge
	AccessLogDropped prometheus.Counter
	AccessLogWrite   prometheus.Histogram
}

// New registers the metrics on a fresh registry, with the Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Registry: r,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_requests_total", Help: "Portal requests answered, by API, version and HTTP status code.",
		}, []string{"api", "version", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "databus_request_duration_seconds", Help: "Portal request duration, by API and version.", Buckets: latency,
		}, []string{"api", "version"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "databus_step_duration_seconds", Help: "Step duration, by step type.", Buckets: latency,
		}, []string{"type"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_upstream_errors_total", Help: "Failed upstream steps (http, rpc), by API, version and step id.",
		}, []string{"api", "version", "step"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_portal_refusals_total", Help: "Portal requests refused, by reason.",
		}, []string{"reason"}),
		RateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_ratelimit_decisions_total", Help: "Rate-limit decisions, by policy and outcome.",
		}, []string{"policy", "outcome"}),
		RateLimitEvictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "databus_ratelimit_evictions_total", Help: "Live keys the embedded rate-limit store dropped, least recently used first, because it was full.",
		}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_store_errors_total", Help: "Failed calls to the nonce and rate-limit stores, by store and backend.",
		}, []string{"store", "backend"}),
		HookCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_hook_calls_total", Help: "Callouts to the hook services, by hook and outcome.",
		}, []string{"hook", "outcome"}),
		HookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "databus_hook_duration_seconds", Help: "Duration of callouts to the hook services, by hook.", Buckets: latency,
		}, []string{"hook"}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_config_last_reload_success", Help: "1 when the last reload attempt succeeded, 0 when it failed (the previous configuration keeps serving).",
		}),
		ReloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_config_last_reload_timestamp_seconds", Help: "Time of the last reload attempt.",
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_config_reloads_total", Help: "Reload attempts, by result (changed, unchanged, failed).",
		}, []string{"result"}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "databus_config_info", Help: "The configuration being served: 1 for its revision.",
		}, []string{"revision"}),
		AccessLogQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_accesslog_queue_depth", Help: "Access-log records waiting to be written.",
		}),
		AccessLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "databus_accesslog_dropped_total", Help: "Access-log records dropped because the queue was full.",
		}),
		AccessLogWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "databus_accesslog_write_seconds", Help: "Duration of one access-log write transaction.", Buckets: latency,
		}),
	}
	r.MustRegister(m.Requests, m.Duration, m.StepDuration, m.UpstreamErrors, m.Refusals, m.RateLimit, m.RateLimitEvictions, m.StoreErrors,
		m.HookCalls, m.HookDuration,
		m.ReloadSuccess, m.ReloadTimestamp, m.Reloads, m.ConfigInfo,
		m.AccessLogQueue, m.AccessLogDropped, m.AccessLogWrite,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Reloaded records a reload attempt. revision is the one now serving.
func (m *Metrics) Reloaded(ok, changed bool, revision, previous string, at time.Time) {
	m.ReloadTimestamp.Set(float64(at.UnixNano()) / 1e9)
	switch {
	case !ok:
		m.ReloadSuccess.Set(0)
		m.Reloads.WithLabelValues("failed").Inc()
		return
	case changed:
		m.Reloads.WithLabelValues("changed").Inc()
	default:
		m.Reloads.WithLabelValues("unchanged").Inc()
	}
	m.ReloadSuccess.Set(1)
	if previous != "" && previous != revision {
		m.ConfigInfo.DeleteLabelValues(previous)
	}
	m.ConfigInfo.WithLabelValues(revision).Set(1)
}

// AccessLogObserver feeds the access log's queue depth, drops and write
// latency into the metrics.
type AccessLogObserver struct{ M *Metrics }

// QueueDepth sets the queue gauge.
func (o AccessLogObserver) QueueDepth(n int) { o.M.AccessLogQueue.Set(float64(n)) }

// Dropped counts a dropped record.
func (o AccessLogObserver) Dropped() { o.M.AccessLogDropped.Inc() }

// Wrote observes one write transaction.
func (o AccessLogObserver) Wrote(_ int, d time.Duration) { o.M.AccessLogWrite.Observe(d.Seconds()) }
