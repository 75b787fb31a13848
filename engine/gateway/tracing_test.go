package gateway

// Tracing against a real OTLP receiver in the test process (the official
// collector service protos over gRPC, and the OTLP/HTTP handler at
// /v1/traces): the span tree of a multi-step API call (server → security
// chain → steps → client calls, hook callouts included), the traceparent
// each upstream received, and an exporter outage that neither blocks nor
// fails requests.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc/rpctest"
)

// otlpReceiver collects the spans exported to it, over gRPC and HTTP.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	calls int
	// hold, when not nil, blocks every export until it is closed (a
	// receiver that hangs).
	hold chan struct{}
	held chan struct{} // receives once per export that is held

	grpcAddr string // host:port of the gRPC service
	httpURL  string // http://host:port of the HTTP handler
}

func (r *otlpReceiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.take(ctx, req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) take(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) {
	if r.hold != nil {
		select {
		case r.held <- struct{}{}:
		default:
		}
		select {
		case <-r.hold:
		case <-ctx.Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
}

// ServeHTTP is OTLP/HTTP: a protobuf ExportTraceServiceRequest at /v1/traces.
func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ex coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &ex); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.take(req.Context(), &ex)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// startReceiver serves the receiver on loopback, gRPC and HTTP.
func startReceiver(t *testing.T, hold chan struct{}) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{hold: hold, held: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, r)
	go gs.Serve(ln)
	hs := httptest.NewServer(r)
	r.grpcAddr, r.httpURL = ln.Addr().String(), hs.URL
	t.Cleanup(func() {
		hs.Close()
		gs.Stop()
	})
	return r
}

// trace returns the spans of trace id (hex), by span id.
func (r *otlpReceiver) trace(id string) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if hex.EncodeToString(s.TraceId) == id {
			out[hex.EncodeToString(s.SpanId)] = s
		}
	}
	return out
}

// upstream is a loopback HTTP upstream that records the trace headers of
// each call it answers, by path.
type upstream struct {
	mu    sync.Mutex
	seen  map[string][]http.Header
	calls map[string]int
	srv   *httptest.Server
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{seen: map[string][]http.Header{}, calls: map[string]int{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.calls[r.URL.Path]++
		n := u.calls[r.URL.Path]
		h := http.Header{}
		for _, k := range []string{"Traceparent", "Tracestate", "Baggage", "X-Trace-Id"} {
			if v := r.Header.Values(k); len(v) > 0 {
				h[k] = v
			}
		}
		u.seen[r.URL.Path] = append(u.seen[r.URL.Path], h)
		u.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/flaky": // the first call of each pair fails: one retry
			if n%2 == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"busy":true}`))
				return
			}
			w.Write([]byte(`{"id":"a1"}`))
		case "/job": // done on every second call: two poll iterations
			fmt.Fprintf(w, `{"done":%v}`, n%2 == 0)
		case "/fate/hooks/client_authentication":
			w.Write([]byte(`{"code":0,"message":"ok"}`))
		default:
			w.Write([]byte(`{"ok":true}`))
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) headers(path string) []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen[path]...)
}

// tracedAPI calls the upstream three ways: a GET retried once, a registry
// service (POST), and a poll of two iterations.
func tracedAPI(up string) string {
	return `apiVersion: databus/v1
kind: Api
code: t.traced
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: fetch
    type: http
    http: {method: GET, url: '` + up + `/flaky', retry: {attempts: 1, backoff: 1ms}}
  - id: notify
    type: http
    http: {method: POST, service: {server: HOOKS, name: notify}}
  - id: wait
    type: http
    http: {method: GET, url: '` + up + `/job', poll: {until: '.body.done', interval: 1ms, timeout: 60s}}
  - {id: end, type: end}
`
}

// tracingRepo writes a repository whose telemetry block is telemetry, with
// the client_authentication hook on and the traced API.
func tracingRepo(t *testing.T, up *upstream, telemetry string) (string, registry.Resolver) {
	t.Helper()
	dir := t.TempDir()
	writeRepo(t, dir, map[string]string{
		"databus.yaml": "apiPortal:\n  security: {enabled: false}\nhooks:\n  server: hooks\n  clientAuthentication: true\n" + telemetry,
		"apis/t.yaml":  tracedAPI(up.srv.URL),
	})
	u, _ := url.Parse(up.srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	reg := &hookRegistry{server: registry.Server{Name: "HOOKS", Host: host, Port: p, Protocol: "http"}, services: map[string]registry.Service{}}
	reg.register("client_authentication")
	reg.services["notify"] = registry.Service{ServerName: "HOOKS", ServiceName: "notify", URI: "/notify", Method: "POST"}
	return dir, reg
}

// tracedCall posts to the traced API with header and returns the envelope.
func (ts *testServer) tracedCall(t *testing.T, header http.Header) envelope {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.portalURL+basePath+"/t.traced/v1", strings.NewReader(`{"x":1}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &env); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	return env
}

func TestTracingSpanTree(t *testing.T) {
	for _, protocol := range []string{"grpc", "http"} {
		t.Run(protocol, func(t *testing.T) {
			rcv := startReceiver(t, nil)
			endpoint := rcv.grpcAddr
			if protocol == "http" {
				endpoint = rcv.httpURL
			}
			up := startUpstream(t)
			// The caller's baggage goes on only with forwardBaggage (here
			// over gRPC export; the http case keeps the default, off).
			forward := protocol == "grpc"
			telemetry := "telemetry:\n  otlp: {endpoint: '" + endpoint + "', protocol: " + protocol + "}\n"
			wantBaggage := ""
			if forward {
				telemetry += "  forwardBaggage: true\n"
				wantBaggage = "tenant=blue"
			}
			dir, reg := tracingRepo(t, up, telemetry)
			ts := startServer(t, Options{Dir: dir, Services: reg})

			// A caller with a sampled traceparent, tracestate and baggage.
			const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			env := ts.tracedCall(t, http.Header{
				"Traceparent": {"00-" + callerTrace + "-" + callerSpan + "-01"},
				"Tracestate":  {"vendor=opaque"},
				"Baggage":     {"tenant=blue"},
			})
			if env.TraceID != callerTrace {
				t.Fatalf("envelope traceId %s, want the caller's %s", env.TraceID, callerTrace)
			}
			// The server span ends after the answer: wait for the whole tree
			// (server, chain, hook, 5 steps, 2+1+2 http calls = 13 spans).
			var spans map[string]*tracepb.Span
			waitFor(t, pollTimeout, "13 spans of the trace at the receiver", func() bool {
				spans = rcv.trace(callerTrace)
				return len(spans) >= 13
			}, func() string { return fmt.Sprintf("%d spans: %v", len(spans), spanNames(spans)) })

			byName := map[string][]*tracepb.Span{}
			for _, s := range spans {
				byName[s.Name] = append(byName[s.Name], s)
			}
			one := func(name string) *tracepb.Span {
				t.Helper()
				if len(byName[name]) != 1 {
					t.Fatalf("%d spans named %q; spans: %v", len(byName[name]), name, spanNames(spans))
				}
				return byName[name][0]
			}
			id := func(s *tracepb.Span) string { return hex.EncodeToString(s.SpanId) }
			parent := func(s *tracepb.Span) string { return hex.EncodeToString(s.ParentSpanId) }

			server := one("POST t.traced/v1")
			if server.Kind != tracepb.Span_SPAN_KIND_SERVER || parent(server) != callerSpan {
				t.Errorf("server span: kind %v parent %s, want SERVER under the caller's %s", server.Kind, parent(server), callerSpan)
			}
			if a := attrs(server); a["databus.api.code"] != "t.traced" || a["databus.api.version"] != "v1" || a["http.response.status_code"] != "200" || a["http.request.method"] != "POST" || a["http.route"] != basePath+"/t.traced/v1" {
				t.Errorf("server span attributes: %v", a)
			}
			chain := one("security chain")
			if parent(chain) != id(server) {
				t.Errorf("chain's parent %s, want the server span %s", parent(chain), id(server))
			}
			hook := one("hook client_authentication")
			if parent(hook) != id(chain) || hook.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("hook span: parent %s kind %v, want CLIENT under the chain %s", parent(hook), hook.Kind, id(chain))
			}
			steps := map[string]*tracepb.Span{}
			for _, name := range []string{"start", "fetch", "notify", "wait", "end"} {
				s := one("step " + name)
				steps[name] = s
				if parent(s) != id(server) {
					t.Errorf("step %s: parent %s, want the server span %s", name, parent(s), id(server))
				}
			}
			if a := attrs(steps["fetch"]); a["databus.step.type"] != "http" || a["databus.step.attempts"] != "2" {
				t.Errorf("step fetch attributes: %v", a)
			}
			if n := countEvents(steps["fetch"], "retry"); n != 1 {
				t.Errorf("step fetch: %d retry events, want 1", n)
			}
			if n := countEvents(steps["wait"], "poll"); n != 2 {
				t.Errorf("step wait: %d poll events, want 2", n)
			}
			// Client spans: each call's span is a child of its step, and the
			// upstream saw it as the parent in traceparent.
			clients := map[string][]string{} // step id → client span ids, in start order
			for _, s := range byName["HTTP GET"] {
				clients[stepOf(s, steps)] = append(clients[stepOf(s, steps)], id(s))
			}
			for _, s := range byName["HTTP POST"] {
				clients[stepOf(s, steps)] = append(clients[stepOf(s, steps)], id(s))
			}
			for step, path := range map[string]string{"fetch": "/flaky", "notify": "/notify", "wait": "/job"} {
				hs := up.headers(path)
				if len(hs) != len(clients[step]) || len(hs) == 0 {
					t.Errorf("step %s: %d client spans, upstream %s saw %d calls", step, len(clients[step]), path, len(hs))
					continue
				}
				for _, h := range hs {
					tp := h.Get("Traceparent")
					parts := strings.Split(tp, "-")
					if len(parts) != 4 || parts[1] != callerTrace || parts[3] != "01" || !contains(clients[step], parts[2]) {
						t.Errorf("%s received traceparent %q; want trace %s, a parent among the step's client spans %v, sampled", path, tp, callerTrace, clients[step])
					}
					if h.Get("Tracestate") != "vendor=opaque" || h.Get("Baggage") != wantBaggage || h.Get("X-Trace-Id") != callerTrace {
						t.Errorf("%s received %v: want the caller's tracestate, baggage %q, and X-Trace-Id", path, h, wantBaggage)
					}
				}
			}
			// The hook service saw the hook span as parent.
			if hs := up.headers("/fate/hooks/client_authentication"); len(hs) != 1 || !strings.Contains(hs[0].Get("Traceparent"), "-"+id(hook)+"-") {
				t.Errorf("hook service received %v, want the hook span %s as parent", hs, id(hook))
			}

			// A caller without traceparent: a new trace, whose id is the
			// envelope's traceId, with a root server span.
			env = ts.tracedCall(t, nil)
			waitFor(t, pollTimeout, "the new trace at the receiver", func() bool {
				spans = rcv.trace(env.TraceID)
				return len(spans) >= 13
			})
			for _, s := range spans {
				if s.Kind == tracepb.Span_SPAN_KIND_SERVER && len(s.ParentSpanId) != 0 {
					t.Errorf("server span of a new trace has parent %x", s.ParentSpanId)
				}
			}
		})
	}
}

// TestTracingOff: without telemetry no upstream receives a traceparent
// (and the Snapshot has no tracer).
func TestTracingOff(t *testing.T) {
	up := startUpstream(t)
	dir, reg := tracingRepo(t, up, "")
	ts := startServer(t, Options{Dir: dir, Services: reg})
	if ts.Current().Tracer != nil {
		t.Fatal("tracing off, yet the Snapshot has a tracer")
	}
	ts.tracedCall(t, http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
	for _, path := range []string{"/flaky", "/notify", "/job", "/fate/hooks/client_authentication"} {
		for _, h := range up.headers(path) {
			if h.Get("Traceparent") != "" {
				t.Errorf("tracing off, yet %s received traceparent %q", path, h.Get("Traceparent"))
			}
		}
	}
}

// TestTracingExporterOutage: a receiver that hangs, and one that is not
// there at all, neither block nor fail requests: every request answers 200
// while the exporter is stuck, and the spans it loses are counted.
func TestTracingExporterOutage(t *testing.T) {
	t.Run("hanging receiver", func(t *testing.T) {
		hold := make(chan struct{})
		rcv := startReceiver(t, hold)
		up := startUpstream(t)
		// A tiny queue and batch: the exporter is stuck on its first batch
		// and the queue fills at once.
		dir, reg := tracingRepo(t, up, "telemetry:\n  otlp: {endpoint: '"+rcv.grpcAddr+"', protocol: grpc, queueSize: 4, batchSize: 2, timeout: 60s}\n")
		ts := startServer(t, Options{Dir: dir, Services: reg})
		t.Cleanup(func() { close(hold) }) // before the server stops (cleanups run last first)
		// Enough requests to fill the queue many times over; the first
		// export reaches the receiver and hangs there.
		for i := 0; i < 3; i++ {
			ts.tracedCall(t, nil)
		}
		select {
		case <-rcv.held:
		case <-time.After(pollTimeout):
			t.Fatal("no export reached the receiver")
		}
		// While the receiver holds the export, requests go on answering.
		ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 20 && ctx.Err() == nil; i++ {
				ts.tracedCall(t, nil)
			}
		}()
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("requests blocked while the OTLP receiver hangs")
		}
		rcv.mu.Lock()
		calls := rcv.calls
		rcv.mu.Unlock()
		if calls != 0 {
			t.Errorf("%d exports completed while the receiver hung", calls)
		}
	})
	t.Run("closed port", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		up := startUpstream(t)
		dir, reg := tracingRepo(t, up, "telemetry:\n  otlp: {endpoint: '"+closed+"', protocol: grpc, timeout: 200ms, batchSize: 4}\n")
		ts := startServer(t, Options{Dir: dir, Services: reg})
		for i := 0; i < 5; i++ {
			ts.tracedCall(t, nil)
		}
		// The batch processor exports within its delay; each failed
		// export is counted.
		waitFor(t, pollTimeout, "databus_trace_spans_total{result=failed} > 0", func() bool {
			return metricValue(ts.metricFamilies(t), "databus_trace_spans_total", map[string]string{"result": "failed"}) > 0
		})
	})
}

func attrs(s *tracepb.Span) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = strconv.FormatBool(v.BoolValue)
		default:
			out[kv.Key] = kv.Value.String()
		}
	}
	return out
}

func countEvents(s *tracepb.Span, name string) int {
	n := 0
	for _, e := range s.Events {
		if e.Name == name {
			n++
		}
	}
	return n
}

func spanNames(spans map[string]*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func stepOf(s *tracepb.Span, steps map[string]*tracepb.Span) string {
	p := hex.EncodeToString(s.ParentSpanId)
	for name, st := range steps {
		if hex.EncodeToString(st.SpanId) == p {
			return name
		}
	}
	return "?"
}

// TestTracingRPCStep: an rpc step's call is a client span under its step,
// and the gRPC server receives traceparent in the call's metadata with
// that span as parent.
func TestTracingRPCStep(t *testing.T) {
	rcv := startReceiver(t, nil)
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	dir := t.TempDir()
	writeRepo(t, dir, map[string]string{
		"databus.yaml": "apiPortal:\n  security: {enabled: false}\ntelemetry:\n  otlp: {endpoint: 'http://" + rcv.grpcAddr + "', protocol: grpc}\n",
		"apis/r.yaml":  rpcAPI("t.rpc", srv.Addr, "test.v1.Stock/Get", ", timeout: 5s", ""),
	})
	ts := startServer(t, Options{Dir: dir})
	env := ts.post(t, "t.rpc", `{"sku": "A1", "qty": 1}`, http.StatusOK)
	var spans map[string]*tracepb.Span
	waitFor(t, pollTimeout, "the rpc trace at the receiver", func() bool {
		spans = rcv.trace(env.TraceID)
		return len(spans) >= 6 // server, chain, start, stock, rpc call, end
	}, func() string { return fmt.Sprint(spanNames(spans)) })
	var step, call *tracepb.Span
	for _, s := range spans {
		switch {
		case s.Name == "step stock":
			step = s
		case s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			call = s
		}
	}
	if step == nil || call == nil || string(call.ParentSpanId) != string(step.SpanId) || call.Name != "test.v1.Stock/Get" {
		t.Fatalf("want the rpc client span under step stock; spans: %v", spanNames(spans))
	}
	calls := srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("server calls: %d", len(calls))
	}
	tp := calls[0].Metadata.Get("traceparent")
	want := "00-" + env.TraceID + "-" + hex.EncodeToString(call.SpanId) + "-01"
	if len(tp) != 1 || tp[0] != want {
		t.Errorf("gRPC metadata traceparent %q, want %q", tp, want)
	}
}
