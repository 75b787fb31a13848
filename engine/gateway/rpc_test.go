package gateway

// rpc steps end to end: portal calls over loopback HTTP to a gateway whose
// flows call a real gRPC server on loopback (engine/rpc/rpctest), with its
// message types from server reflection or from a descriptor set in the
// repository.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/rpc/rpctest"
)

// rpcAPI is an API of one rpc step calling method on target, with extra
// keys for the rpc block and the step's transforms.
func rpcAPI(code, target, method, rpcExtra, transforms string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: stock
    type: rpc
    rpc: {target: '%s', method: %s%s}
    transforms: {%s}
  - {id: end, type: end}
`, code, target, method, rpcExtra, transforms)
}

// post sends body to the API code and fails the test unless the envelope
// has status want and a message containing every one of parts.
func (ts *testServer) post(t *testing.T, code, body string, want int, parts ...string) envelope {
	t.Helper()
	env, err := ts.do(http.MethodPost, code, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if env.Code != want {
		t.Fatalf("%s: %d %s %s, want %d", code, env.Code, env.Message, env.Response, want)
	}
	for _, p := range parts {
		if !strings.Contains(env.Message, p) {
			t.Errorf("%s: message %q does not contain %q", code, env.Message, p)
		}
	}
	return env
}

func jsonIs(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("response\n got: %s\nwant: %s", gb, wb)
	}
}

// An http step and an rpc step in one flow, with jq around the rpc step:
// the request message from a transform, metadata from templates, the
// reply's fields and metadata read by the response transform; the access
// log shows the call and its gRPC status.
func TestRPCThroughPortal(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	prices := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sku": %q, "price": 9.5}`, strings.TrimPrefix(r.URL.Path, "/prices/"))
	}))
	t.Cleanup(prices.Close)
	api := fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: t.stock
version: v1
status: online
methods: [POST]
transforms:
  response: '{sku: .steps.price.sku, price: .steps.price.price, available: .steps.stock.available, checkedAt: .steps.stock.checkedAt, source: .steps.stock.source, servedBy: .steps.stock.servedBy, status: .steps.stock.status}'
steps:
  - {id: start, type: start}
  - id: price
    type: http
    http: {method: GET, url: '%s/prices/${.request.body.sku}'}
  - id: stock
    type: rpc
    rpc:
      target: '%s'
      method: test.v1.Stock/Get
      timeout: 5s
      metadata: {X-Tenant: '${.request.body.tenant}', x-static: fixed}
    transforms:
      request: '{sku: .steps.price.sku, qty: (.request.body.lines | map(.qty) | add), lines: .request.body.lines}'
      response: '{available: .body.available, checkedAt: .body.checkedAt, source: .headers["x-source"], servedBy: .headers["x-served-by"], status}'
  - {id: end, type: end}
`, prices.URL, srv.Addr)
	ts := startServer(t, Options{Dir: newRepo(t, map[string]string{"stock.yaml": api})})

	env := ts.post(t, "t.stock", `{"sku": "A1", "tenant": "t-9", "lines": [{"sku": "A1", "qty": 2}, {"sku": "A1", "qty": 1}]}`, http.StatusOK)
	jsonIs(t, env.Response, `{"sku":"A1","price":9.5,"available":21,"checkedAt":"2024-03-01T09:00:00Z","source":"rpctest","servedBy":"stock","status":0}`)

	calls := srv.Calls()
	if len(calls) != 1 {
		t.Fatalf("server calls: %+v", calls)
	}
	c := calls[0]
	if c.Method != "Get" {
		t.Errorf("method = %q", c.Method)
	}
	for k, want := range map[string]string{"x-tenant": "t-9", "x-static": "fixed", "x-trace-id": env.TraceID} {
		if got := c.Metadata.Get(k); len(got) != 1 || got[0] != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	var req map[string]any
	json.Unmarshal([]byte(c.Request), &req)
	if req["sku"] != "A1" || req["qty"] != 3.0 || len(req["lines"].([]any)) != 2 {
		t.Errorf("request message = %s", c.Request)
	}

	// The access log: the rpc step with its target, method, gRPC status and
	// metadata.
	var page struct {
		List []struct {
			StepResults []struct {
				ID       string         `json:"id"`
				Type     string         `json:"type"`
				Status   int            `json:"status"`
				Request  map[string]any `json:"request"`
				Response map[string]any `json:"response"`
			} `json:"stepResults"`
		} `json:"list"`
	}
	waitFor(t, pollTimeout, "the access-log record", func() bool {
		ts.adminData(t, "/databus/gateway/access-log/page?traceId="+url.QueryEscape(env.TraceID), &page)
		return len(page.List) == 1
	})
	var found bool
	for _, s := range page.List[0].StepResults {
		if s.ID != "stock" {
			continue
		}
		found = true
		if s.Type != "rpc" || s.Request["target"] != srv.Addr || s.Request["method"] != "test.v1.Stock/Get" {
			t.Errorf("step request = %+v", s)
		}
		md, _ := s.Response["metadata"].(map[string]any)
		if s.Response["code"] != "OK" || md["x-source"] != "rpctest" || md["x-served-by"] != "stock" {
			t.Errorf("step response = %+v", s.Response)
		}
	}
	if !found {
		t.Errorf("no stock step in %+v", page.List[0].StepResults)
	}
}

// Every gRPC failure names the code and the server's message: 504 for a
// deadline, 502 for the rest, a target that is down included.
func TestRPCErrorCodes(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	down := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	down.Stop()
	apis := map[string]string{
		"fail.yaml":   rpcAPI("t.fail", srv.Addr, "test.v1.Stock/Fail", "", `request: '{code: .request.body.code, message: "because \(.request.body.code)"}'`),
		"down.yaml":   rpcAPI("t.down", down.Addr, "test.v1.Stock/Get", "", ""),
		"pinned.yaml": rpcAPI("t.pinned", down.Addr, "test.v1.Stock/Get", ", descriptorSet: protos/stock.pb", ""),
	}
	dir := newRepo(t, apis)
	writeRepo(t, dir, map[string]string{"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV1))})
	ts := startServer(t, Options{Dir: dir})

	for code, want := range map[string]int{
		"NotFound":          http.StatusBadGateway,
		"InvalidArgument":   http.StatusBadGateway,
		"Unavailable":       http.StatusBadGateway,
		"PermissionDenied":  http.StatusBadGateway,
		"Internal":          http.StatusBadGateway,
		"ResourceExhausted": http.StatusBadGateway,
		"DeadlineExceeded":  http.StatusGatewayTimeout,
	} {
		t.Run(code, func(t *testing.T) {
			ts.post(t, "t.fail", fmt.Sprintf(`{"code": %q}`, code), want, `step "stock"`, "gRPC "+code+": because "+code)
		})
	}
	t.Run("target down, reflection", func(t *testing.T) {
		ts.post(t, "t.down", `{}`, http.StatusBadGateway, `step "stock" failed`, "gRPC Unavailable: dial tcp", "connection refused")
	})
	t.Run("target down, descriptor set", func(t *testing.T) {
		ts.post(t, "t.pinned", `{}`, http.StatusBadGateway, `step "stock" failed`, "gRPC Unavailable: dial tcp", "connection refused")
	})
}

// The step's timeout is the call's deadline: a server slower than that is
// a 504 naming the step and the timeout.
func TestRPCStepTimeout(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	dir := newRepo(t, map[string]string{
		// Reflection first, then the call, within one deadline: the slow
		// handler answers only when the deadline passes, so the length
		// of the timeout does not matter to the outcome.
		"slow.yaml": rpcAPI("t.slow", srv.Addr, "test.v1.Stock/Slow", ", timeout: 300ms", ""),
	})
	ts := startServer(t, Options{Dir: dir})
	ts.post(t, "t.slow", `{"sku": "A1"}`, http.StatusGatewayTimeout, `step "stock" timed out after 300ms`, "gRPC DeadlineExceeded")
}

// A value of the wrong type for a message field is the caller's mistake:
// 400 naming the field, before anything is sent.
func TestRPCFieldTypeMismatch(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	dir := newRepo(t, map[string]string{
		"mapped.yaml": rpcAPI("t.mapped", srv.Addr, "test.v1.Stock/Get", "", `request: '{sku: .request.body.sku, qty: .request.body.qty}'`),
		"passed.yaml": rpcAPI("t.passed", srv.Addr, "test.v1.Stock/Get", "", ""),
	})
	ts := startServer(t, Options{Dir: dir})
	cases := []struct {
		code, body string
		parts      []string
	}{
		{"t.mapped", `{"sku": "A1", "qty": "many"}`, []string{`step "stock"`, "invalid request message test.v1.GetRequest", `field qty: expected int32, got "many"`}},
		{"t.mapped", `{"sku": 12, "qty": 1}`, []string{`field sku: expected string, got 12`}},
		{"t.mapped", `{"sku": "A1", "qty": 1.5}`, []string{`field qty: expected int32, got 1.5`}},
		{"t.passed", `{"sku": "A1", "lines": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": [2]}]}`, []string{`field lines[1].qty: expected int32, got an array`}},
		{"t.passed", `{"sku": "A1", "colour": "red"}`, []string{`field colour: no such field in the message`}},
		{"t.passed", `["A1"]`, []string{`invalid request message test.v1.GetRequest: expected a JSON object, got an array`}},
	}
	for _, c := range cases {
		ts.post(t, c.code, c.body, http.StatusBadRequest, c.parts...)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("the server received %d calls", n)
	}
}

// A server without reflection is called with the message types of a
// descriptor set in the repository; without one, the step says what to do.
func TestRPCDescriptorSetWithoutReflection(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.NoReflection})
	dir := newRepo(t, map[string]string{
		"pinned.yaml":    rpcAPI("t.pinned", srv.Addr, "test.v1.Stock/Get", ", descriptorSet: protos/stock.pb", `request: '{sku: "A1", qty: 2}'`),
		"reflected.yaml": rpcAPI("t.reflected", srv.Addr, "test.v1.Stock/Get", "", ""),
	})
	writeRepo(t, dir, map[string]string{"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV1))})
	ts := startServer(t, Options{Dir: dir})
	env := ts.post(t, "t.pinned", `{}`, http.StatusOK)
	jsonIs(t, env.Response, `{"sku":"A1","available":14,"checkedAt":"2024-03-01T09:00:00Z"}`)
	ts.post(t, "t.reflected", `{}`, http.StatusBadGateway, `step "stock"`, "serves no reflection service (neither grpc.reflection.v1 nor v1alpha)", "set rpc.descriptorSet")

	v1alpha := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1AlphaOnly})
	writeFile(t, dir+"/apis/reflected.yaml", rpcAPI("t.reflected", v1alpha.Addr, "test.v1.Stock/Get", "", `request: '{qty: 1}'`))
	waitFor(t, pollTimeout, "t.reflected calls the v1alpha server", func() bool {
		env, err := ts.do(http.MethodPost, "t.reflected", strings.NewReader(`{}`))
		return err == nil && env.Code == http.StatusOK
	})
}

// What reflection told is cached until the next reload, which asks again
// even when no file changed; a descriptor set changed in the repository
// is read again by a reload.
func TestRPCReflectionRefreshedOnReload(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	dir := newRepo(t, map[string]string{
		"reflected.yaml": rpcAPI("t.reflected", srv.Addr, "test.v1.Stock/Get", "", `request: '{sku: "A1", qty: 1}'`),
		"pinned.yaml":    rpcAPI("t.pinned", srv.Addr, "test.v1.Stock/Get", ", descriptorSet: protos/stock.pb", `request: '{sku: "A1", qty: 1}'`),
	})
	writeRepo(t, dir, map[string]string{"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV1))})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	v1 := `{"sku":"A1","available":7,"checkedAt":"2024-03-01T09:00:00Z"}`
	v2 := `{"sku":"A1","available":7,"checkedAt":"2024-03-01T09:00:00Z","warehouse":"north"}`
	jsonIs(t, ts.post(t, "t.reflected", `{}`, http.StatusOK).Response, v1)

	// The server is redeployed with a new field: until a reload, the
	// gateway decodes with what it learnt (the new field is unknown).
	if err := srv.SetSchema(rpctest.SchemaV2); err != nil {
		t.Fatal(err)
	}
	jsonIs(t, ts.post(t, "t.reflected", `{}`, http.StatusOK).Response, v1)
	if res := ts.Reload(context.Background(), "test"); !res.OK || res.Changed {
		t.Fatalf("reload: %+v", res)
	}
	jsonIs(t, ts.post(t, "t.reflected", `{}`, http.StatusOK).Response, v2)

	// The descriptor set is the repository's: it changes with the file.
	jsonIs(t, ts.post(t, "t.pinned", `{}`, http.StatusOK).Response, v1)
	writeRepo(t, dir, map[string]string{"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV2))})
	if res := ts.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload after the descriptor set changed: %+v", res)
	}
	jsonIs(t, ts.post(t, "t.pinned", `{}`, http.StatusOK).Response, v2)
}

// A streaming method is refused: by validate with a descriptor set, at
// call time with reflection.
func TestRPCStreamingRefused(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	dir := newRepo(t, map[string]string{
		"watch.yaml": rpcAPI("t.watch", srv.Addr, "test.v1.Stock/Watch", "", ""),
	})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	ts.post(t, "t.watch", `{}`, http.StatusBadGateway, `step "stock"`, "test.v1.Stock/Watch is a server-streaming method: rpc steps call unary methods only")

	writeRepo(t, dir, map[string]string{
		"protos/stock.pb": string(rpctest.DescriptorSet(t, rpctest.SchemaV1)),
		"apis/watch.yaml": rpcAPI("t.watch", srv.Addr, "test.v1.Stock/Watch", ", descriptorSet: protos/stock.pb", ""),
	})
	res := ts.Reload(context.Background(), "test")
	if res.OK || len(res.Errors) != 1 {
		t.Fatalf("reload: %+v", res)
	}
	if got := res.Errors[0].String(); !strings.HasPrefix(got, "apis/watch.yaml:11:") || !strings.Contains(got, "steps[1].rpc.method: descriptor set protos/stock.pb: test.v1.Stock/Watch is a server-streaming method") {
		t.Errorf("error = %s", got)
	}
}
