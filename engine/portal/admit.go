package portal

import (
	"net/http"
	"time"

	"github.com/databus-gateway/databus/engine/admission"
	"github.com/databus-gateway/databus/engine/metrics"
)

// ReasonOverload refuses a request apiPortal.maxInFlight and its queue had
// no room for (databus_portal_shed_total says which bound).
const ReasonOverload = "overload"

// admit takes a slot of apiPortal.maxInFlight for c, waiting in
// apiPortal.queue when the slots are taken. It runs once the request line
// and headers passed their checks and before the body is read, so a shed
// request costs neither a body nor a signature, decryption or flow, and
// requests refused anyway by those header checks never take a slot. The
// limits are the serving Snapshot's, so a reload changes them; the limiter
// and its counts outlive reloads.
func (h *Handler) admit(c *Call) *fault {
	p := c.Snap.Settings.APIPortal
	lim := admission.Limits{MaxInFlight: p.MaxInFlight, QueueLength: *p.Queue.Length, QueueTimeout: time.Duration(p.Queue.Timeout)}
	if shed := h.admission.Acquire(c.R.Context(), lim); shed != "" {
		c.W.Header().Set("Retry-After", "1")
		return refuse(ReasonOverload, http.StatusServiceUnavailable, MsgBusy)
	}
	c.admitted, c.wasAdmitted = true, true
	return nil
}

// leave gives back c's slot, if it holds one.
func (h *Handler) leave(c *Call) {
	if c.admitted {
		c.admitted = false
		h.admission.Release()
	}
}

// admissionMetrics reports the limiter's counts in Prometheus.
type admissionMetrics struct{ m *metrics.Metrics }

var _ admission.Observer = admissionMetrics{}

func (a admissionMetrics) InFlight(n int)         { a.m.InFlight.Set(float64(n)) }
func (a admissionMetrics) Queued(n int)           { a.m.Queued.Set(float64(n)) }
func (a admissionMetrics) Shed(reason string)     { a.m.Shed.WithLabelValues(reason).Inc() }
func (a admissionMetrics) Waited(d time.Duration) { a.m.QueueWait.Observe(d.Seconds()) }
