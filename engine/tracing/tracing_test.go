package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/databus-gateway/databus/engine/config"
)

func settings(endpoint string) config.TelemetrySettings {
	r, pb := 1.0, true
	return config.TelemetrySettings{ServiceName: "databus", OTLP: config.OTLPSettings{Endpoint: endpoint, Protocol: "grpc",
		SampleRatio: &r, ParentBased: &pb, Timeout: config.Duration(1e9), QueueSize: 8, BatchSize: 4,
		Headers: map[string]config.SecretRef{"Authorization": {Ref: "env:OTLP_AUTH"}}}}
}

// The pool key names the header by reference and the value by hash: a
// rotated secret makes a new exporter, and the key never holds the secret.
func TestKeyHidesHeaderValues(t *testing.T) {
	a := Key(settings("127.0.0.1:4317"), map[string]string{"Authorization": "Bearer s3cret"}, "v1")
	b := Key(settings("127.0.0.1:4317"), map[string]string{"Authorization": "Bearer other"}, "v1")
	if strings.Contains(a, "s3cret") || a == b {
		t.Errorf("keys %q and %q", a, b)
	}
	if Key(settings("127.0.0.1:4317"), map[string]string{"Authorization": "Bearer s3cret"}, "v1") != a {
		t.Error("the same settings gave another key")
	}
}

// A root span takes the trace id put in its context; a malformed one is
// ignored.
func TestRootSpanTakesTheEnvelopeID(t *testing.T) {
	p, err := New(settings("127.0.0.1:1"), nil, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(0)
	const id = "01a24cea9bb8b773e03bc3174516c976"
	_, s := p.Tracer.Start(WithTraceID(context.Background(), id), "x")
	if got := s.SpanContext().TraceID().String(); got != id {
		t.Errorf("trace id %s, want %s", got, id)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("0", 32), strings.Repeat("A", 32)} {
		_, s := p.Tracer.Start(WithTraceID(context.Background(), bad), "x")
		if !s.SpanContext().TraceID().IsValid() || s.SpanContext().TraceID().String() == bad {
			t.Errorf("%q: trace id %s", bad, s.SpanContext().TraceID())
		}
	}
}

// Without a span in the context nothing is injected and Start makes none;
// with one, traceparent goes into HTTP headers and gRPC metadata alike.
func TestInject(t *testing.T) {
	h := http.Header{}
	Inject(context.Background(), h)
	if len(h) != 0 {
		t.Errorf("injected %v without a span", h)
	}
	if ctx, sp := Start(context.Background(), "x", trace.SpanKindClient); sp != nil || ctx != context.Background() {
		t.Error("Start made a span without a recording parent")
	}
	p, err := New(settings("127.0.0.1:1"), nil, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(0)
	ctx, s := p.Tracer.Start(context.Background(), "server")
	cctx, c := Start(ctx, "call", trace.SpanKindClient)
	if c == nil {
		t.Fatal("no child span under a recording parent")
	}
	want := "00-" + s.SpanContext().TraceID().String() + "-" + trace.SpanContextFromContext(cctx).SpanID().String() + "-01"
	Inject(cctx, h)
	md := metadata.MD{}
	InjectMD(cctx, md)
	if h.Get("Traceparent") != want || len(md.Get("traceparent")) != 1 || md.Get("traceparent")[0] != want {
		t.Errorf("header %v, metadata %v, want %s", h, md, want)
	}
}

// The ratio is a random draw, not a function of the trace id, which the
// caller chooses: ids ending in zeros (which TraceIDRatioBased samples at
// any ratio) are sampled at the ratio like any other.
func TestRandomRatioIgnoresTheTraceID(t *testing.T) {
	s := randomRatio{ratio: 0.0001}
	var low trace.TraceID
	low[0] = 1 // the last 8 bytes zero
	sampled := 0
	for i := 0; i < 2000; i++ {
		if s.ShouldSample(sdktrace.SamplingParameters{TraceID: low}).Decision == sdktrace.RecordAndSample {
			sampled++
		}
	}
	if sampled > 10 {
		t.Errorf("%d of 2000 traces with a low id sampled at ratio 0.0001", sampled)
	}
	if d := (randomRatio{ratio: 1}).ShouldSample(sdktrace.SamplingParameters{TraceID: low}).Decision; d != sdktrace.RecordAndSample {
		t.Errorf("ratio 1: %v", d)
	}
	if d := (randomRatio{ratio: 0}).ShouldSample(sdktrace.SamplingParameters{TraceID: low}).Decision; d != sdktrace.Drop {
		t.Errorf("ratio 0: %v", d)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 400) // 2 bytes a rune
	got := Clip(long)
	if !utf8.ValidString(got) || len(got) > MaxStatusLength+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("Clip: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if Clip("short") != "short" {
		t.Error("Clip changed a short message")
	}
}
