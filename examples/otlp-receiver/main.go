// Command otlp-receiver is a minimal OTLP trace receiver for trying
// Databus's tracing without a tracing backend: it accepts spans over
// OTLP/gRPC and OTLP/HTTP (protobuf, /v1/traces) and prints each trace as a
// tree once no span of it arrived for a second.
//
//	go run ./examples/otlp-receiver                    # gRPC 127.0.0.1:4317, HTTP 127.0.0.1:4318
//	go run ./examples/otlp-receiver -grpc :4317 -http ""
//
// It keeps at most -max-spans spans waiting to be printed; beyond that,
// new ones are dropped (and counted). For anything real, use an
// OpenTelemetry Collector, Jaeger, Tempo or another OTLP backend.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// maxBody bounds one OTLP/HTTP request.
const maxBody = 16 << 20

type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	out      io.Writer
	maxSpans int

	mu      sync.Mutex
	traces  map[string][]*tracepb.Span
	last    map[string]time.Time
	held    int
	dropped int
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.take(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) take(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				if r.held >= r.maxSpans {
					r.dropped++
					continue
				}
				id := hex.EncodeToString(s.TraceId)
				r.traces[id] = append(r.traces[id], s)
				r.last[id] = now
				r.held++
			}
		}
	}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, "not an OTLP protobuf ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.take(&ex)
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b)
}

// flush prints the traces that have been quiet for quiet.
func (r *receiver) flush(quiet time.Duration) {
	r.mu.Lock()
	var ready [][]*tracepb.Span
	for id, at := range r.last {
		if time.Since(at) >= quiet {
			ready = append(ready, r.traces[id])
			r.held -= len(r.traces[id])
			delete(r.traces, id)
			delete(r.last, id)
		}
	}
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	for _, spans := range ready {
		printTree(r.out, spans)
	}
	if dropped > 0 {
		fmt.Fprintf(r.out, "(%d spans dropped: more than -max-spans waiting)\n", dropped)
	}
}

func printTree(w io.Writer, spans []*tracepb.Span) {
	byID := map[string]bool{}
	children := map[string][]*tracepb.Span{}
	for _, s := range spans {
		byID[hex.EncodeToString(s.SpanId)] = true
	}
	var roots []*tracepb.Span
	for _, s := range spans {
		p := hex.EncodeToString(s.ParentSpanId)
		if len(s.ParentSpanId) == 0 || !byID[p] {
			roots = append(roots, s)
			continue
		}
		children[p] = append(children[p], s)
	}
	byStart := func(l []*tracepb.Span) {
		sort.Slice(l, func(i, j int) bool { return l[i].StartTimeUnixNano < l[j].StartTimeUnixNano })
	}
	byStart(roots)
	fmt.Fprintf(w, "trace %x (%d spans)\n", spans[0].TraceId, len(spans))
	var walk func(s *tracepb.Span, depth int)
	walk = func(s *tracepb.Span, depth int) {
		d := time.Duration(s.EndTimeUnixNano - s.StartTimeUnixNano)
		line := fmt.Sprintf("%s%s [%s] %s span=%x", strings.Repeat("  ", depth+1), s.Name,
			strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"), d.Round(time.Microsecond), s.SpanId)
		if len(s.ParentSpanId) > 0 && depth == 0 {
			line += fmt.Sprintf(" parent=%x", s.ParentSpanId)
		}
		if a := attrs(s.Attributes); a != "" {
			line += " " + a
		}
		if len(s.Events) > 0 {
			n := map[string]int{}
			for _, e := range s.Events {
				n[e.Name]++
			}
			var ev []string
			for k, v := range n {
				ev = append(ev, fmt.Sprintf("%s×%d", k, v))
			}
			sort.Strings(ev)
			line += " events=" + strings.Join(ev, ",")
		}
		if s.Status != nil && s.Status.Code == tracepb.Status_STATUS_CODE_ERROR {
			line += fmt.Sprintf(" ERROR %q", s.Status.Message)
		}
		fmt.Fprintln(w, line)
		kids := children[hex.EncodeToString(s.SpanId)]
		byStart(kids)
		for _, c := range kids {
			walk(c, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
}

// attrs shows the attributes worth a glance.
func attrs(kvs []*commonpb.KeyValue) string {
	var out []string
	for _, kv := range kvs {
		switch kv.Key {
		case "http.response.status_code", "databus.api.code", "databus.api.version", "databus.app_id", "databus.refusal.reason",
			"databus.step.type", "databus.step.attempts", "server.address", "url.path", "rpc.response.status_code":
			var v string
			switch x := kv.Value.Value.(type) {
			case *commonpb.AnyValue_StringValue:
				v = x.StringValue
			case *commonpb.AnyValue_IntValue:
				v = fmt.Sprint(x.IntValue)
			default:
				v = kv.Value.String()
			}
			out = append(out, kv.Key+"="+v)
		}
	}
	return strings.Join(out, " ")
}

func main() {
	grpcAddr := flag.String("grpc", "127.0.0.1:4317", "OTLP/gRPC listen address (\"\": none)")
	httpAddr := flag.String("http", "127.0.0.1:4318", "OTLP/HTTP listen address (\"\": none)")
	maxSpans := flag.Int("max-spans", 100000, "spans held while their trace is still arriving")
	flag.Parse()
	r := &receiver{out: os.Stdout, maxSpans: *maxSpans, traces: map[string][]*tracepb.Span{}, last: map[string]time.Time{}}
	if *grpcAddr != "" {
		ln, err := net.Listen("tcp", *grpcAddr)
		if err != nil {
			log.Fatal(err)
		}
		gs := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(gs, r)
		go func() { log.Fatal(gs.Serve(ln)) }()
		log.Printf("OTLP/gRPC on %s", ln.Addr())
	}
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			log.Fatal(err)
		}
		srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second}
		go func() { log.Fatal(srv.Serve(ln)) }()
		log.Printf("OTLP/HTTP on http://%s/v1/traces", ln.Addr())
	}
	for range time.Tick(250 * time.Millisecond) {
		r.flush(time.Second)
	}
}
