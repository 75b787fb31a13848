package portal

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/tracing"
)

// Span attributes of a portal request beyond the HTTP semantic
// conventions. Never a secret, a header value or a body.
const (
	AttrAPICode   = attribute.Key("databus.api.code")
	AttrAPIVer    = attribute.Key("databus.api.version")
	AttrAppID     = attribute.Key("databus.app_id")
	AttrTenantID  = attribute.Key("databus.tenant_id")
	AttrRefusal   = attribute.Key("databus.refusal.reason")
	AttrTraceID   = attribute.Key("databus.trace_id") // the envelope's traceId, when it is not the span's
	AttrMessage   = attribute.Key("databus.message")
	SpanChainName = "security chain"
)

// startSpan starts the server span of c with the Snapshot's tracer: a
// child of the caller's traceparent (with its tracestate and baggage), or
// the root of a new trace whose id is the envelope's traceId.
func (h *Handler) startSpan(c *Call, t trace.Tracer) {
	r := c.R
	ctx := tracing.Extract(r.Context(), r.Header, c.Snap != nil && c.Snap.Settings.Telemetry.ForwardBaggage)
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = tracing.WithTraceID(ctx, c.TraceID)
	}
	method := spanMethod(r.Method)
	ctx, span := t.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("url.scheme", scheme(r)),
		attribute.String("network.protocol.version", protoVersion(r)),
	))
	if !span.IsRecording() {
		// Not sampled: no span to fill, but the context still carries the
		// trace (sampled flag off) to the upstreams.
		c.R = r.WithContext(ctx)
		return
	}
	if sid := span.SpanContext().TraceID().String(); sid != c.TraceID {
		span.SetAttributes(AttrTraceID.String(c.TraceID))
	}
	c.span = span
	c.R = r.WithContext(ctx)
}

// spanMethod is the request's method as the HTTP semantic conventions
// name it: one of the known methods, else _OTHER. The caller writes the
// method: a megabyte of it must not become a span name.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// endSpan completes the server span once the answer is out.
func (h *Handler) endSpan(c *Call) {
	s := c.span
	if s == nil {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attribute.Int("http.response.status_code", c.Status))
	if c.ClientIP.IsValid() {
		attrs = append(attrs, attribute.String("client.address", c.ClientIP.String()))
	}
	if rt := c.Route; rt != nil {
		s.SetName(spanMethod(c.R.Method) + " " + rt.API.Code + "/" + rt.API.Version)
		// A routed path is {basePath}/{code}/{version}: as few values as
		// there are APIs.
		attrs = append(attrs, attribute.String("http.route", c.R.URL.Path), AttrAPICode.String(rt.API.Code), AttrAPIVer.String(rt.API.Version))
	}
	if id := c.AppID(); id != "" && c.Cred != nil {
		attrs = append(attrs, AttrAppID.String(id))
	}
	if c.TenantID != "" {
		attrs = append(attrs, AttrTenantID.String(c.TenantID))
	}
	if c.Reason != "" {
		attrs = append(attrs, AttrRefusal.String(c.Reason))
	}
	s.SetAttributes(attrs...)
	if c.Status >= http.StatusInternalServerError || c.Status == 0 {
		s.SetStatus(codes.Error, tracing.Clip(c.Message))
	}
	s.End()
}

// tracedChain runs the chain under its own span, a child of the server
// span; the hook callouts of the chain are its children. (No closure: the
// Call stays on the stack when tracing is off.)
func (h *Handler) tracedChain(c *Call) *fault {
	parent := c.R
	ctx, sp := tracing.Start(parent.Context(), SpanChainName, trace.SpanKindInternal)
	c.R = parent.WithContext(ctx)
	f := h.chain(c)
	if f != nil {
		sp.Set(AttrRefusal.String(f.reason), attribute.Int("http.response.status_code", f.status))
		sp.Fail(f.reason)
	}
	sp.End()
	c.R = parent
	return f
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func protoVersion(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "2"
	case 3:
		return "3"
	}
	return "1.1"
}
