// Package metrics holds the gateway's Prometheus metrics, exported on the
// admin listener at /metrics. Label values are bounded: API ids and step ids
// of the repository, step types, reasons, policy names, status codes —
// never trace ids or raw paths.
package metrics

import (
	"sort"
	"sync"
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
	// ratelimit, registry, fleet) and backend (redis, memory).
	StoreErrors *prometheus.CounterVec
	// HookCalls counts callouts to the hook services, by hook
	// (client_authentication, site_authentication, signature, permission)
	// and outcome (ok, refused, timeout, not_registered, error).
	HookCalls *prometheus.CounterVec
	// HookDuration observes callout durations by hook.
	HookDuration *prometheus.HistogramVec
	// JQBudgetKills counts jq evaluations stopped by their budget, by
	// reason (time, memory).
	JQBudgetKills *prometheus.CounterVec
	// TraceSpans counts spans handed to the OTLP exporter, by result
	// (exported, failed: lost with an export that failed).
	TraceSpans *prometheus.CounterVec

	// BodyBytesInFlight is the bytes of request bodies the portal holds
	// now (bounded by apiPortal.maxBodyBytesInFlight).
	BodyBytesInFlight prometheus.Gauge
	// Connections is the portal's open connections (bounded by databus
	// serve --max-connections); ConnectionsRefused counts connections
	// refused above that cap, by how (answered: a 503 envelope; closed:
	// too many refusals at once to answer each).
	Connections        prometheus.Gauge
	ConnectionsRefused *prometheus.CounterVec
	// InFlight and Queued are the portal requests worked on now (bounded
	// by apiPortal.maxInFlight) and waiting for a slot (apiPortal.queue);
	// Shed counts those answered 503 without one, by reason (queue_full,
	// queue_timeout, canceled); QueueWait is how long admitted waiters waited.
	InFlight  prometheus.Gauge
	Queued    prometheus.Gauge
	Shed      *prometheus.CounterVec
	QueueWait prometheus.Histogram
	// AdmittedDuration is the duration of the portal requests given a slot
	// (queue wait included): what overload must keep fast.
	AdmittedDuration prometheus.Histogram

	ReloadSuccess   prometheus.Gauge
	ReloadTimestamp prometheus.Gauge
	Reloads         *prometheus.CounterVec
	// ReloadDuration is how long reload attempts take, by result.
	ReloadDuration *prometheus.HistogramVec
	ConfigInfo     *prometheus.GaugeVec

	// GitSyncSuccess is 1 when the last git-sync attempt left the checkout
	// on the remote head (moved or already there), 0 when it stayed behind;
	// GitSyncs counts attempts by result (moved, up_to_date, refused: the
	// gate refused the remote revision, failed: fetch, divergence, local
	// edits).
	GitSyncSuccess prometheus.Gauge
	GitSyncs       *prometheus.CounterVec

	// FleetReplicas is the live replicas per served revision as this
	// replica reads the fleet (at most MaxFleetRevisions labels, the rest
	// counted under revision="other"); FleetDrift is 1 when they serve
	// different revisions or one is behind its branch head; FleetStale
	// counts replicas listed without a recent heartbeat; FleetHeartbeat is
	// 1 when the last heartbeat reached Redis and the fleet was read.
	FleetReplicas  *prometheus.GaugeVec
	FleetDrift     prometheus.Gauge
	FleetStale     prometheus.Gauge
	FleetHeartbeat prometheus.Gauge
	fleetMu        sync.Mutex
	fleetLabels    map[string]bool // the revision labels set now

	// Traffic is the last hour of requests and errors per minute, counted
	// from New.
	Traffic Series

	AccessLogQueue   prometheus.Gauge
	AccessLogDropped prometheus.Counter
	AccessLogWrite   prometheus.Histogram
	// AccessLogRefusalsSkipped counts records of refused requests not
	// written because storage.accessLog.refusalsPerSecond was spent, by
	// reason.
	AccessLogRefusalsSkipped *prometheus.CounterVec
	// AccessLogCaptured counts records sampled by
	// storage.accessLog.capture, by result: kept (whole), over_budget or
	// streamed (recorded as usual).
	AccessLogCaptured *prometheus.CounterVec
	// AccessLogWriteErrors counts failed access-log write transactions
	// (their records count in AccessLogDropped too).
	AccessLogWriteErrors prometheus.Counter
	// AccessLogDegraded is 1 from a failed access-log write until the
	// next one succeeds.
	AccessLogDegraded prometheus.Gauge
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
			Name: "databus_store_errors_total", Help: "Failed calls to the shared stores (nonce, ratelimit, registry, fleet), by store and backend.",
		}, []string{"store", "backend"}),
		HookCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_hook_calls_total", Help: "Callouts to the hook services, by hook and outcome.",
		}, []string{"hook", "outcome"}),
		HookDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "databus_hook_duration_seconds", Help: "Duration of callouts to the hook services, by hook.", Buckets: latency,
		}, []string{"hook"}),
		BodyBytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_portal_body_bytes_in_flight", Help: "Bytes of request bodies the portal holds now (apiPortal.maxBodyBytesInFlight bounds it).",
		}),
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_portal_connections", Help: "Open portal connections (databus serve --max-connections bounds them).",
		}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_portal_connections_refused_total", Help: "Portal connections refused above --max-connections, by how (answered, closed).",
		}, []string{"how"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_portal_in_flight", Help: "Portal requests worked on now (apiPortal.maxInFlight bounds them).",
		}),
		Queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_portal_queued", Help: "Portal requests waiting for a slot under apiPortal.maxInFlight (apiPortal.queue.length bounds them).",
		}),
		Shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_portal_shed_total", Help: "Portal requests answered 503 without a slot, by reason: queue_full, queue_timeout, canceled (the caller left while waiting).",
		}, []string{"reason"}),
		AdmittedDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "databus_portal_admitted_duration_seconds", Help: "Duration of the portal requests given a slot of apiPortal.maxInFlight, queue wait included (shed requests are not in it).", Buckets: latency,
		}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "databus_portal_queue_wait_seconds", Help: "How long portal requests admitted from the queue waited for a slot.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		JQBudgetKills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_jq_budget_kills_total", Help: "jq evaluations stopped by their budget (gateway.jq), by reason: time or memory.",
		}, []string{"reason"}),
		TraceSpans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_trace_spans_total", Help: "Spans the OTLP exporter handled (telemetry.otlp), by result: exported, or failed (lost with an export that failed: the receiver is down or slow).",
		}, []string{"result"}),
		ReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_config_last_reload_success", Help: "1 when the last reload attempt succeeded, 0 when it failed (the previous configuration keeps serving).",
		}),
		ReloadTimestamp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_config_last_reload_timestamp_seconds", Help: "Time of the last reload attempt.",
		}),
		ReloadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "databus_config_reload_duration_seconds", Help: "Duration of reload attempts (load, check, compile; a reload reads and parses only what changed), by result (changed, unchanged, failed).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_config_reloads_total", Help: "Reload attempts, by result (changed, unchanged, failed).",
		}, []string{"result"}),
		GitSyncSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_gitsync_last_success", Help: "1 when the last git-sync attempt left the checkout on the remote head, 0 when it stayed behind (refused or failed: see /readyz lastGitSync).",
		}),
		GitSyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_gitsync_total", Help: "Git-sync attempts, by result: moved, up_to_date, refused (the remote revision does not validate), failed (fetch, divergence, local edits).",
		}, []string{"result"}),
		FleetReplicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "databus_fleet_replicas", Help: "Live replicas (heartbeat within 3 intervals) per served revision, as this replica reads the fleet through Redis; without Redis, this replica alone. At most 8 revisions are labelled, the rest count under revision=\"other\".",
		}, []string{"revision"}),
		FleetDrift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_fleet_drift", Help: "1 when the live replicas serve different revisions, or one serves a commit behind its branch head (git sync on); 0 otherwise. See GET /databus/gateway/fleet.",
		}),
		FleetStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_fleet_stale_replicas", Help: "Replicas still listed in Redis whose last heartbeat is older than 3 intervals (stopped without leaving, or cut off from Redis).",
		}),
		FleetHeartbeat: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_fleet_heartbeat_last_success", Help: "1 when this replica's last heartbeat reached Redis and the fleet was read; 0 when Redis failed, and without Redis.",
		}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "databus_config_info", Help: "The configuration being served: 1 for its revision.",
		}, []string{"revision"}),
		AccessLogQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_accesslog_queue_depth", Help: "Access-log records waiting to be written.",
		}),
		AccessLogDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "databus_accesslog_dropped_total", Help: "Access-log records lost: dropped because the queue was full or the log closed, or lost with a failed write.",
		}),
		AccessLogWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "databus_accesslog_write_seconds", Help: "Duration of one access-log write transaction.", Buckets: latency,
		}),
		AccessLogRefusalsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_accesslog_refusals_skipped_total",
			Help: "Records of refused requests not written because storage.accessLog.refusalsPerSecond was spent, by reason.",
		}, []string{"reason"}),
		AccessLogCaptured: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "databus_accesslog_captured_total",
			Help: "Records sampled by storage.accessLog.capture, by result: kept whole, or recorded as usual because over maxBytes or streamed.",
		}, []string{"result"}),
		AccessLogWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "databus_accesslog_write_errors_total", Help: "Failed access-log write transactions (a full disk, say); their records count in databus_accesslog_dropped_total.",
		}),
		AccessLogDegraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "databus_accesslog_degraded", Help: "1 from a failed access-log write until the next write succeeds.",
		}),
	}
	r.MustRegister(m.Requests, m.Duration, m.StepDuration, m.UpstreamErrors, m.Refusals, m.RateLimit, m.RateLimitEvictions, m.StoreErrors,
		m.HookCalls, m.HookDuration, m.BodyBytesInFlight, m.Connections, m.ConnectionsRefused, m.JQBudgetKills, m.TraceSpans,
		m.InFlight, m.Queued, m.Shed, m.QueueWait, m.AdmittedDuration,
		m.ReloadSuccess, m.ReloadTimestamp, m.Reloads, m.ReloadDuration, m.ConfigInfo, m.GitSyncSuccess, m.GitSyncs,
		m.FleetReplicas, m.FleetDrift, m.FleetStale, m.FleetHeartbeat,
		m.AccessLogQueue, m.AccessLogDropped, m.AccessLogWrite, m.AccessLogRefusalsSkipped, m.AccessLogCaptured, m.AccessLogWriteErrors, m.AccessLogDegraded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, reason := range []string{"time", "memory"} {
		m.JQBudgetKills.WithLabelValues(reason)
	}
	for _, result := range []string{"kept", "over_budget", "streamed"} {
		m.AccessLogCaptured.WithLabelValues(result)
	}
	for _, reason := range []string{"queue_full", "queue_timeout", "canceled"} {
		m.Shed.WithLabelValues(reason)
	}
	m.Traffic.Start(time.Now())
	return m
}

// ReloadResult is the result label of a reload attempt.
func ReloadResult(ok, changed bool) string {
	switch {
	case !ok:
		return "failed"
	case changed:
		return "changed"
	}
	return "unchanged"
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

// MaxFleetRevisions bounds the revision labels of databus_fleet_replicas:
// the most served revisions are labelled, the others summed under
// revision="other".
const MaxFleetRevisions = 8

// FleetRevision is how many live replicas serve one revision.
type FleetRevision struct {
	Revision string
	Replicas int
}

// SetFleet records the fleet as this replica last judged it.
func (m *Metrics) SetFleet(revisions []FleetRevision, drift bool, stale int, heartbeatOK bool) {
	revs := append([]FleetRevision(nil), revisions...)
	sort.SliceStable(revs, func(i, j int) bool { return revs[i].Replicas > revs[j].Replicas })
	counts := map[string]int{}
	for i, r := range revs {
		if i >= MaxFleetRevisions-1 && len(revs) > MaxFleetRevisions {
			counts["other"] += r.Replicas
			continue
		}
		counts[r.Revision] += r.Replicas
	}
	m.fleetMu.Lock()
	defer m.fleetMu.Unlock()
	for l := range m.fleetLabels {
		if _, ok := counts[l]; !ok {
			m.FleetReplicas.DeleteLabelValues(l)
		}
	}
	m.fleetLabels = make(map[string]bool, len(counts))
	for l, n := range counts {
		m.FleetReplicas.WithLabelValues(l).Set(float64(n))
		m.fleetLabels[l] = true
	}
	m.FleetDrift.Set(b2f(drift))
	m.FleetStale.Set(float64(stale))
	m.FleetHeartbeat.Set(b2f(heartbeatOK))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// AccessLogObserver feeds the access log's queue depth, lost records, write
// latency and write errors into the metrics.
type AccessLogObserver struct{ M *Metrics }

// QueueDepth sets the queue gauge.
func (o AccessLogObserver) QueueDepth(n int) { o.M.AccessLogQueue.Set(float64(n)) }

// Dropped counts lost records.
func (o AccessLogObserver) Dropped(n int) { o.M.AccessLogDropped.Add(float64(n)) }

// Wrote observes one write transaction; the log is healthy again.
func (o AccessLogObserver) Wrote(_ int, d time.Duration) {
	o.M.AccessLogWrite.Observe(d.Seconds())
	o.M.AccessLogDegraded.Set(0)
}

// WriteFailed counts a failed write transaction; the log is degraded.
func (o AccessLogObserver) WriteFailed(int) {
	o.M.AccessLogWriteErrors.Inc()
	o.M.AccessLogDegraded.Set(1)
}
