package portal

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/store"
)

// AccessLog receives one record per portal request.
type AccessLog interface {
	Append(r *store.Record)
}

// finish counts the request in the metrics and writes its access-log record,
// after the answer went out. Records of refusals are written within their
// own budget (storage.accessLog.refusalsPerSecond); the rest are counted.
func (h *Handler) finish(c *Call) {
	elapsed := time.Since(c.started)
	h.endSpan(c)
	api, version := "", ""
	if c.Route != nil {
		api, version = c.Route.API.Code, c.Route.API.Version
	}
	if m := h.metrics; m != nil {
		if c.Reason != "" {
			m.Refusals.WithLabelValues(c.Reason).Inc()
		}
		m.Requests.WithLabelValues(api, version, strconv.Itoa(c.Status)).Inc()
		m.Traffic.Add(c.started, c.Status >= 500 || c.Status == 0)
		m.Duration.WithLabelValues(api, version).Observe(elapsed.Seconds())
		if c.wasAdmitted {
			m.AdmittedDuration.Observe(elapsed.Seconds())
		}
		for _, s := range c.Steps {
			if s.Skipped {
				continue
			}
			m.StepDuration.WithLabelValues(s.Type).Observe(s.Elapsed.Seconds())
			if s.Error != "" && (s.Type == config.StepHTTP || s.Type == config.StepRPC) {
				m.UpstreamErrors.WithLabelValues(api, version, s.ID).Inc()
			}
		}
	}
	snap := c.Snap
	if snap == nil {
		// Refused before the Snapshot was taken (headers too large): the
		// settings of the one serving now apply.
		if snap = h.current(); snap != nil {
			defer snap.Release()
		}
	}
	if h.acc == nil || snap == nil || !*snap.Settings.APIPortal.EnableAudit {
		return
	}
	al := snap.Settings.Storage.AccessLog
	if c.Reason != "" && !h.refusals.allow(h.now(), *al.RefusalsPerSecond) {
		if m := h.metrics; m != nil {
			m.AccessLogRefusalsSkipped.WithLabelValues(c.Reason).Inc()
		}
		return
	}
	ip := c.ClientIP
	if !ip.IsValid() {
		// Refused before the chain looked at the address (not a route,
		// headers too large): who sent it matters all the more.
		ip = security.ClientIP(c.R, snap.TrustedProxies)
	}
	x := &call.Exchange{
		TraceID: c.TraceID, APICode: api, Version: version, AppID: c.AppID(), TenantID: c.TenantID,
		Method: c.R.Method, Path: c.R.URL.Path, Header: c.R.Header, Body: c.Body,
		Status: c.Status, Message: c.Message, Reason: c.Reason, Response: c.respBody, Streamed: c.streamed,
		Steps: append(c.Chain, c.Steps...), Started: c.started, Elapsed: elapsed,
	}
	if ip.IsValid() {
		x.ClientIP = ip.String()
	}
	if c.User != nil || c.encrypt != nil {
		x.Extra = map[string]any{}
		if c.User != nil {
			x.Extra["user"] = c.User
		}
		if c.encrypt != nil {
			x.Extra["encrypted"] = true
		}
	}
	if capture := al.Capture; capture.SampleRatio > 0 && c.Route != nil && c.Reason == "" &&
		(capture.SampleRatio >= 1 || rand.Float64() < capture.SampleRatio) {
		// A request that reached its flow, sampled: kept whole for replay.
		x.Query = c.R.URL.RawQuery
		rec, result := call.RecordCaptured(x, *al.MaxBodyChars, al.RedactHeaders, capture.MaxBytes)
		if m := h.metrics; m != nil {
			m.AccessLogCaptured.WithLabelValues(result).Inc()
		}
		h.acc.Append(rec)
		return
	}
	h.acc.Append(call.Record(x, *al.MaxBodyChars, al.RedactHeaders))
}
