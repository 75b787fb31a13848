package portal

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/tracing"
)

// discardReceiver is an OTLP/gRPC receiver that counts and drops spans.
type discardReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	spans atomic.Int64
}

func (r *discardReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			r.spans.Add(int64(len(ss.Spans)))
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// BenchmarkTracing measures, in one run, the three-step API of
// BenchmarkProxy (two http steps, a script, jq transforms) over real
// loopback HTTP with tracing off, on at sampleRatio 1 and on at 0.01,
// exporting over OTLP/gRPC to a receiver in the process. Compare ns/op and
// allocs/op of the sub-benchmarks: off is the request path without a
// tracer.
func BenchmarkTracing(b *testing.B) {
	up := benchUpstream()
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rcv := &discardReceiver{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, rcv)
	go gs.Serve(ln)
	defer gs.Stop()

	dir := testRepo(b, map[string]string{
		"databus.yaml": "apiPortal:\n  basePath: /api\n  security: {enabled: false}\n  enableAudit: false\n",
		"apis/three.yaml": "apiVersion: databus/v1\nkind: Api\ncode: bench.three\nversion: v1\nstatus: online\nmethods: [POST]\n" +
			"transforms: {response: '{orderNo: .steps.create.orderNo, score: .steps.score.s, status: .steps.confirm.status}'}\nsteps:\n" +
			"  - {id: start, type: start}\n" +
			"  - id: create\n    type: http\n    http: {method: POST, url: '" + up.URL + "/orders/${.request.body.orderNo}'}\n" +
			"    transforms: {request: '{orderNo: .request.body.orderNo, qty: (.request.body.qty * 2)}', response: '.body.data'}\n" +
			"  - id: score\n    type: script\n    script: {source: 'function main(c) { return {s: c.steps.create.items.length} }'}\n" +
			"  - id: confirm\n    type: http\n    http: {method: POST, url: '" + up.URL + "/confirm', headers: {X-Order: '${.steps.create.orderNo}'}}\n" +
			"    transforms: {request: '{no: .steps.create.orderNo}', response: '.body.data'}\n" +
			"  - {id: end, type: end}\n",
	})
	serve := func(b *testing.B, ratio float64) *httptest.Server {
		repo, diags, err := config.Load(dir)
		if err != nil || diags.HasErrors() {
			b.Fatal(err, diags)
		}
		deps := snapshot.Deps{Env: &flow.Env{Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, DefaultTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20}}
		if ratio > 0 {
			tel := repo.Settings.Telemetry
			tel.OTLP.Endpoint = ln.Addr().String()
			tel.OTLP.SampleRatio = &ratio
			p, err := tracing.New(tel, nil, "bench", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Shutdown(5 * time.Second) })
			deps.Tracer = p.Tracer
		}
		snap, err := snapshot.Build(repo, deps)
		if err != nil {
			b.Fatal(err)
		}
		var cur atomic.Pointer[snapshot.Snapshot]
		cur.Store(snap)
		gw := httptest.NewServer(New(cur.Load, Options{}))
		b.Cleanup(gw.Close)
		return gw
	}
	body := `{"orderNo":"A-1","qty":2}`
	for _, c := range []struct {
		name  string
		ratio float64
	}{{"off", 0}, {"on-100pct", 1}, {"on-1pct", 0.01}} {
		b.Run(c.name, func(b *testing.B) {
			gw := serve(b, c.ratio)
			drive(b, benchClient(), gw.URL+"/api/bench.three/v1", body)
		})
	}
}
