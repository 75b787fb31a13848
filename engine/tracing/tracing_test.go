package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

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
