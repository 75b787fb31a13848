// Package tracing is Databus's OpenTelemetry tracing: the tracer provider
// built from telemetry settings (an OTLP exporter behind a batch
// processor), W3C propagation (traceparent, tracestate, baggage) to every
// outbound call, and the helpers the portal, the flow and the hooks use to
// make spans.
//
// The spans of one request hang off the context: the portal starts the
// server span with the Snapshot's tracer, and everything below it starts
// children of whatever span the context carries. With tracing off the
// context carries none: Start returns at once, allocating nothing, and
// nothing is injected into outbound calls.
package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/databus-gateway/databus/engine/config"
)

// Bounds of what one span may carry, whatever a flow does: a poll of
// thousands of iterations keeps its first MaxEvents events (the SDK counts
// the rest as dropped), and no attribute value is longer than
// MaxAttributeLength bytes.
const (
	MaxAttributes      = 32
	MaxEvents          = 128
	MaxAttributeLength = 512
	// BatchDelay is how long the batch processor waits to fill a batch.
	BatchDelay = 2 * time.Second
	// ShutdownTimeout bounds the flush of a provider whose last Snapshot
	// was retired (a reload changed the telemetry settings, or the
	// gateway stops).
	ShutdownTimeout = 5 * time.Second
)

// ScopeName is the instrumentation scope of Databus's spans.
const ScopeName = "github.com/databus-gateway/databus"

// Propagator reads and writes W3C traceparent, tracestate and baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// edge reads only traceparent and tracestate: the caller's baggage stays
// out unless telemetry.forwardBaggage.
var edge propagation.TextMapPropagator = propagation.TraceContext{}

// randomRatio samples a share of traces by a random draw. The SDK's
// TraceIDRatioBased decides by the trace id, which the caller chooses here
// (X-Trace-Id, traceparent): an id ending in zeros would be sampled at any
// ratio, one ending in f's never.
type randomRatio struct{ ratio float64 }

func (s randomRatio) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := sdktrace.Drop
	if s.ratio >= 1 || (s.ratio > 0 && rand.Float64() < s.ratio) {
		d = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (s randomRatio) Description() string {
	return fmt.Sprintf("RandomRatio{%g}", s.ratio)
}

// Provider is one exporter with its tracer provider: a pooled resource,
// shared by the Snapshots whose telemetry settings are the same.
type Provider struct {
	tp     *sdktrace.TracerProvider
	Tracer trace.Tracer
}

// Counter receives the spans an export handed over (result "exported") or
// lost to a failed export ("failed"); nil: not counted.
type Counter func(result string, n int)

// New builds the provider of t (which must be Enabled) with the export
// headers already resolved. It waits for no connection: the exporter
// connects when it exports, so a receiver that is down delays no build.
func New(t config.TelemetrySettings, headers map[string]string, version string, count Counter) (*Provider, error) {
	ep, err := config.ParseOTLPEndpoint(t.OTLP.Endpoint)
	if err != nil {
		return nil, err
	}
	timeout := t.OTLP.Timeout.D()
	var client otlptrace.Client
	switch t.OTLP.Protocol {
	case "grpc":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(ep.HostPort), otlptracegrpc.WithTimeout(timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: timeout, MaxElapsedTime: timeout})}
		if !ep.TLS {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(headers))
		}
		client = otlptracegrpc.NewClient(opts...)
	case "http":
		path := ep.Path
		if path == "" {
			path = "/v1/traces"
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(ep.HostPort), otlptracehttp.WithURLPath(path), otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: timeout, MaxElapsedTime: timeout})}
		if !ep.TLS {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if len(headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(headers))
		}
		client = otlptracehttp.NewClient(opts...)
	default:
		return nil, fmt.Errorf("telemetry.otlp.protocol %q: expected grpc or http", t.OTLP.Protocol)
	}
	// Start dials nothing: gRPC connects on the first export, HTTP per export.
	started, err := otlptrace.New(context.Background(), client)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter = started
	if count != nil {
		exp = &countingExporter{SpanExporter: exp, count: count}
	}
	res := resource.NewSchemaless(attribute.String("service.name", t.ServiceName), attribute.String("service.version", version))
	var sampler sdktrace.Sampler = randomRatio{ratio: *t.OTLP.SampleRatio}
	if *t.OTLP.ParentBased {
		sampler = sdktrace.ParentBased(sampler)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   MaxAttributeLength,
			AttributeCountLimit:         MaxAttributes,
			EventCountLimit:             MaxEvents,
			LinkCountLimit:              4,
			AttributePerEventCountLimit: 8,
			AttributePerLinkCountLimit:  4,
		}),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(t.OTLP.QueueSize),
			sdktrace.WithMaxExportBatchSize(t.OTLP.BatchSize),
			sdktrace.WithBatchTimeout(BatchDelay),
			sdktrace.WithExportTimeout(timeout)),
	)
	return &Provider{tp: tp, Tracer: tp.Tracer(ScopeName)}, nil
}

// Shutdown flushes what is queued and stops the exporter, within timeout.
func (p *Provider) Shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.tp.Shutdown(ctx)
}

// ForceFlush exports what is queued now (tests, shutdown).
func (p *Provider) ForceFlush(ctx context.Context) error { return p.tp.ForceFlush(ctx) }

// Key identifies a telemetry configuration in the resource pool: a reload
// with the same settings keeps the exporter; any change builds a new one.
// Headers count by reference and by the value's hash, so a rotated token
// builds a new exporter without the key holding the secret.
func Key(t config.TelemetrySettings, headers map[string]string, version string) string {
	names := make([]string, 0, len(headers))
	for n := range headers {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "otlp:%s|%s|%s|%v|%v|%s|%d|%d|%s", t.OTLP.Protocol, t.OTLP.Endpoint, t.ServiceName, *t.OTLP.SampleRatio, *t.OTLP.ParentBased,
		t.OTLP.Timeout.D(), t.OTLP.QueueSize, t.OTLP.BatchSize, version)
	for _, n := range names {
		fmt.Fprintf(&b, "|%s=%s#%016x", n, t.OTLP.Headers[n].Ref, fnv64(headers[n]))
	}
	return b.String()
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// countingExporter counts what each export carried.
type countingExporter struct {
	sdktrace.SpanExporter
	count Counter
}

func (e *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.count("failed", len(spans))
	} else {
		e.count("exported", len(spans))
	}
	return err
}

// traceIDKey carries the trace id the server span of a new trace takes: the
// envelope's traceId, so that the record, the answer and the trace agree.
type traceIDKey struct{}

// WithTraceID asks the next root span started under ctx to take id (32
// lowercase hex digits; anything else is ignored and a random id is made).
func WithTraceID(ctx context.Context, id string) context.Context {
	var tid trace.TraceID
	if len(id) != 32 {
		return ctx
	}
	if _, err := hex.Decode(tid[:], []byte(id)); err != nil || !tid.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, traceIDKey{}, tid)
}

// idGenerator makes the ids of spans: a root span takes the trace id
// WithTraceID put in its context.
type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, ok := ctx.Value(traceIDKey{}).(trace.TraceID)
	if !ok {
		for !tid.IsValid() {
			putUint64(tid[:8], rand.Uint64())
			putUint64(tid[8:], rand.Uint64())
		}
	}
	return tid, newSpanID()
}

func (idGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		putUint64(sid[:], rand.Uint64())
	}
	return sid
}

func putUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// Recording reports whether ctx carries a span that records: only then are
// child spans made.
func Recording(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// Start starts a child of ctx's span when that span records; otherwise it
// returns ctx and a nil span (End, Fail and the rest accept nil).
func Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, *Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	ctx, s := parent.TracerProvider().Tracer(ScopeName).Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	return ctx, &Span{s: s}
}

// Span wraps a recording span; its methods do nothing on nil.
type Span struct{ s trace.Span }

// Wrap makes a Span of s (nil when s does not record).
func Wrap(s trace.Span) *Span {
	if s == nil || !s.IsRecording() {
		return nil
	}
	return &Span{s: s}
}

// End ends the span.
func (s *Span) End() {
	if s != nil {
		s.s.End()
	}
}

// Set adds attributes.
func (s *Span) Set(attrs ...attribute.KeyValue) {
	if s != nil {
		s.s.SetAttributes(attrs...)
	}
}

// Event records an event.
func (s *Span) Event(name string, attrs ...attribute.KeyValue) {
	if s != nil {
		s.s.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

// Fail marks the span failed with a message (never a body or a secret),
// clipped to MaxStatusLength.
func (s *Span) Fail(msg string) {
	if s != nil {
		s.s.SetStatus(codes.Error, Clip(msg))
	}
}

// MaxStatusLength bounds a span's status description: the span limits
// bound attributes, not the status, and a step's error may quote data.
const MaxStatusLength = 256

// Clip cuts msg to MaxStatusLength bytes, at a rune boundary.
func Clip(msg string) string {
	if len(msg) <= MaxStatusLength {
		return msg
	}
	cut := MaxStatusLength
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// Event records an event on ctx's span when it records.
func Event(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

// Inject writes traceparent, tracestate and baggage of ctx's span into an
// outbound HTTP header, when ctx carries a span (sampled or not: the
// upstream learns the caller's decision).
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// InjectMD is Inject for gRPC metadata.
func InjectMD(ctx context.Context, md metadata.MD) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	Propagator.Inject(ctx, mdCarrier(md))
}

// Extract reads the caller's traceparent and tracestate, and with baggage
// its baggage too (telemetry.forwardBaggage).
func Extract(ctx context.Context, h http.Header, baggage bool) context.Context {
	if !baggage {
		return edge.Extract(ctx, propagation.HeaderCarrier(h))
	}
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

type mdCarrier metadata.MD

func (c mdCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c mdCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }
func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// ClientAttrs are the HTTP client attributes of an outbound call's span:
// method, server address and port, and the path (never the query, which
// may carry tokens).
func ClientAttrs(method string, u *url.URL) []attribute.KeyValue {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	n, _ := strconv.Atoi(port)
	return []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("server.address", u.Hostname()),
		attribute.Int("server.port", n),
		attribute.String("url.scheme", u.Scheme),
		attribute.String("url.path", u.Path),
	}
}

// ErrorLogInterval is how often the exporter's errors are logged at most:
// a receiver that is down fails every export, and the failures are
// counted in databus_trace_spans_total{result="failed"}.
const ErrorLogInterval = 30 * time.Second

// NewErrorHandler logs the SDK's errors (failed exports) through log, at
// most once per interval, with how many were not logged. The OpenTelemetry
// error handler is process-wide: cmd/databus installs it once.
func NewErrorHandler(log func() *slog.Logger, interval time.Duration) otel.ErrorHandler {
	h := &errorHandler{log: log, interval: interval}
	return h
}

type errorHandler struct {
	log        func() *slog.Logger
	interval   time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (h *errorHandler) Handle(err error) {
	h.mu.Lock()
	now := time.Now()
	if now.Sub(h.last) < h.interval {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	n := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	h.log().Warn("tracing: span export failed; spans are dropped, requests are not affected", "error", err, "errorsNotLogged", n)
}
