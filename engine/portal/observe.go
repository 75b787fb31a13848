package portal

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/store"
)

// AccessLog receives one record per portal request.
type AccessLog interface {
	Append(r *store.Record)
}

// finish counts the request in the metrics and writes its access-log record,
// after the answer went out.
func (h *Handler) finish(c *Call) {
	elapsed := time.Since(c.started)
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
		snap = h.current()
	}
	if h.acc == nil || snap == nil || !*snap.Settings.APIPortal.EnableAudit {
		return
	}
	al := snap.Settings.Storage.AccessLog
	maxChars := *al.MaxBodyChars
	headers := store.Redact(c.R.Header, al.RedactHeaders)
	if c.Status == http.StatusRequestHeaderFieldsTooLarge {
		// The headers are what was too large: keep the record bounded.
		for k, v := range headers {
			headers[k] = store.Truncate(v, maxChars)
		}
	}
	rec := &store.Record{
		TraceID:        c.TraceID,
		APICode:        api,
		Version:        version,
		TenantID:       c.TenantID,
		Method:         c.R.Method,
		Path:           c.R.URL.Path,
		RequestHeaders: headers,
		RequestBody:    store.Truncate(string(c.Body), maxChars),
		ResponseBody:   store.Truncate(string(c.respBody), maxChars),
		HTTPStatus:     c.Status,
		Status:         store.StatusOf(c.Status),
		ErrorCode:      c.Reason,
		StartedAt:      c.started,
		DurationMs:     float64(elapsed.Microseconds()) / 1000,
		StepResults:    StepRecords(append(c.Chain, c.Steps...), maxChars),
	}
	ip := c.ClientIP
	if !ip.IsValid() {
		// Refused before the chain looked at the address (not a route,
		// headers too large): who sent it matters all the more.
		ip = security.ClientIP(c.R, snap.TrustedProxies)
	}
	if ip.IsValid() {
		rec.ClientIP = ip.String()
	}
	rec.AppID = c.AppID()
	if c.Status >= 400 {
		rec.ErrorMessage = c.Message
		if rec.ErrorCode == "" {
			rec.ErrorCode = "flow"
		}
	}
	extra := map[string]any{}
	if c.User != nil {
		extra["user"] = c.User
	}
	if c.encrypt != nil {
		extra["encrypted"] = true
	}
	if c.streamed {
		extra["streamed"] = true
		rec.ResponseBody = "(streamed)"
	}
	if len(extra) > 0 {
		rec.Extra = extra
	}
	h.acc.Append(rec)
}

// StepRecords turns step results into access-log records, their bodies
// truncated to maxChars.
func StepRecords(results []flow.StepResult, maxChars int) []store.StepRecord {
	out := make([]store.StepRecord, 0, len(results))
	for _, r := range results {
		out = append(out, store.StepRecord{
			ID: r.ID, Type: r.Type, Skipped: r.Skipped, Status: r.Status, Error: r.Error, Attempts: r.Attempts,
			Request: truncValue(r.Request, maxChars), Response: truncValue(r.Response, maxChars),
			ElapsedMs: float64(r.Elapsed.Microseconds()) / 1000,
		})
	}
	return out
}

// truncValue bounds what a step recorded: strings directly, the string
// fields of a map, anything else through its JSON form.
func truncValue(v any, maxChars int) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return store.Truncate(x, maxChars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok {
				out[k] = store.Truncate(s, maxChars)
			} else {
				out[k] = truncValue(e, maxChars)
			}
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	if maxChars >= 0 && len(b) > maxChars {
		return store.Truncate(string(b), maxChars)
	}
	return json.RawMessage(b)
}
