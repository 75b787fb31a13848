package flow

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/rpc/rpctest"
)

// rpcEnv is testEnv with a gRPC pool, closed when the test ends.
func rpcEnv(tb testing.TB) *Env {
	env := testEnv(tb)
	env.RPC = rpc.NewPool()
	tb.Cleanup(env.RPC.Close)
	return env
}

// compileRPCFlow is compileFlow with extra repository files (descriptor
// sets); {{up}} in body is the gRPC server's address.
func compileRPCFlow(tb testing.TB, env *Env, body, addr string, files map[string][]byte) *Flow {
	tb.Helper()
	dir := tb.TempDir()
	files["databus.yaml"] = []byte(settingsFile)
	files["apis/test.yaml"] = []byte(apiHeader + strings.ReplaceAll(body, "{{up}}", addr))
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		tb.Fatalf("load: %v\n%v", err, diags.Errors())
	}
	f, err := Compile(repo.APIs[0], env)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return f
}

// services is a Resolver over a fixed table: server/name → address.
type services map[string]string

func (s services) Resolve(_ context.Context, server, name string) (registry.Endpoint, error) {
	addr, ok := s[strings.ToUpper(server)+"/"+name]
	if !ok {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	host, port, _ := strings.Cut(addr, ":")
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	return registry.Endpoint{Server: registry.Server{Name: strings.ToUpper(server), Host: host, Port: p}, Service: registry.Service{ServerName: strings.ToUpper(server), ServiceName: name}}, nil
}

const rpcByService = `
steps:
  - {id: start, type: start}
  - id: stock
    type: rpc
    rpc: {service: {server: inventory, name: stock}, method: test.v1.Stock/Get}
    transforms: {request: '{sku: .request.body.sku, qty: 1}', response: '.body.available'}
  - {id: end, type: end}
`

// A registry service is resolved at call time; a missing one, or no
// registry at all, is a 502 naming what is missing.
func TestRPCStepService(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	env := rpcEnv(t)
	reg := services{}
	env.Services = reg
	f := compileRPCFlow(t, env, rpcByService, "", map[string][]byte{})

	mustFail(t, run(t, f, jsonReq(`{"sku":"A1"}`)), http.StatusBadGateway, `step "stock"`, `service "stock" of server "INVENTORY"`, "not registered")
	reg["INVENTORY/stock"] = srv.Addr
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"sku":"A1"}`))), `7`)
	if got := result(t, run(t, f, jsonReq(`{"sku":"A1"}`)), "stock").Request.(map[string]any)["target"]; got != srv.Addr {
		t.Errorf("recorded target = %v, want %s", got, srv.Addr)
	}

	env.Services = nil
	f = compileRPCFlow(t, env, rpcByService, "", map[string][]byte{})
	mustFail(t, run(t, f, jsonReq(`{"sku":"A1"}`)), http.StatusBadGateway, `step "stock"`, "the service registry is not available")
}

// Without the gateway's pool an rpc step is a 500, not a panic.
func TestRPCStepWithoutPool(t *testing.T) {
	f := compileRPCFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: stock, type: rpc, rpc: {target: '127.0.0.1:1', method: test.v1.Stock/Get}}
  - {id: end, type: end}
`, "", map[string][]byte{})
	mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusInternalServerError, "gRPC client pool")
}

// The request message comes from the current body when the step has no
// request transform: the caller's JSON, or the API-level transform's
// value; a body that is not JSON is the caller's mistake.
func TestRPCStepRequestFromBody(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	env := rpcEnv(t)
	f := compileRPCFlow(t, env, `
steps:
  - {id: start, type: start}
  - {id: stock, type: rpc, rpc: {target: '{{up}}', method: test.v1.Stock/Get}}
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"sku": "B2", "qty": 3}`))), `{"sku":"B2","available":21,"checkedAt":"2024-03-01T09:00:00Z"}`)
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(``))), `{"sku":"","available":0,"checkedAt":"2024-03-01T09:00:00Z"}`)
	mustFail(t, run(t, f, jsonReq(`sku=B2`)), http.StatusBadRequest, `step "stock"`, "not JSON")

	f = compileRPCFlow(t, env, `
transforms: {request: '{sku: "C3", qty: (.request.body.qty * 2)}'}
steps:
  - {id: start, type: start}
  - {id: stock, type: rpc, rpc: {target: '{{up}}', method: test.v1.Stock/Get}}
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"qty": 1}`))), `{"sku":"C3","available":14,"checkedAt":"2024-03-01T09:00:00Z"}`)
}

// With onError: continue the error transform reads the gRPC status as the
// raw result: status is the code's number, body {code, message}, headers
// the metadata.
func TestRPCStepErrorTransform(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	f := compileRPCFlow(t, rpcEnv(t), `
steps:
  - {id: start, type: start}
  - id: stock
    type: rpc
    rpc: {target: '{{up}}', method: test.v1.Stock/Fail}
    transforms:
      request: '{code: "NotFound", message: "no sku \(.request.body.sku)"}'
      error: '{status, reason: .body.message, code: .body.code, failed: .headers["x-failed"]}'
    onError: continue
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	res := run(t, f, jsonReq(`{"sku":"Z9"}`))
	jsonEqual(t, mustOK(t, res), `{"status":5,"reason":"no sku Z9","code":"NotFound","failed":"NotFound"}`)
	r := result(t, res, "stock")
	if r.Status != 5 || !strings.Contains(r.Error, "gRPC NotFound: no sku Z9") {
		t.Errorf("step result = %+v", r)
	}
}

func TestJSONPathAt(t *testing.T) {
	doc := `{"sku":"A","lines":[{"sku":"x","qty":1},{"sku":"y","qty":"two"}],"meta":{"a":[1,[2,3]]}}`
	cases := map[string]string{
		`"A"`:     "sku",
		`"two"`:   "lines[1].qty",
		`"qty":1`: "lines[0].qty",
		`3]`:      "meta.a[1][1]",
		`[2`:      "meta.a[1]",
		`{"a"`:    "meta",
	}
	for at, want := range cases {
		off := strings.Index(doc, at)
		if got := jsonPathAt([]byte(doc), off); got != want {
			t.Errorf("at %q (offset %d): %q, want %q", at, off, got, want)
		}
	}
	if got := byteOffset([]byte("{\n \"ä\": 1}"), 2, 7); got != 9 {
		t.Errorf("byteOffset = %d, want 9", got)
	}
}

// onError: continue covers failed calls, not a caller's values that do
// not fit the message.
func TestRPCStepBadRequestNotContinued(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	f := compileRPCFlow(t, rpcEnv(t), `
steps:
  - {id: start, type: start}
  - id: stock
    type: rpc
    rpc: {target: '{{up}}', method: test.v1.Stock/Get}
    transforms: {error: '{failed: true}'}
    onError: continue
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	mustFail(t, run(t, f, jsonReq(`{"qty": "x"}`)), http.StatusBadRequest, `field qty: expected int32, got "x"`)
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("server calls = %d", n)
	}
}

// A reply larger than MaxResponseBytes is refused by the client.
func TestRPCStepResponseLimit(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	env := rpcEnv(t)
	env.MaxResponseBytes = 8
	f := compileRPCFlow(t, env, `
steps:
  - {id: start, type: start}
  - {id: stock, type: rpc, rpc: {target: '{{up}}', method: test.v1.Stock/Get}}
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	mustFail(t, run(t, f, jsonReq(`{"sku": "A-very-long-sku"}`)), http.StatusBadGateway, `step "stock" failed: gRPC ResourceExhausted`)
}

// google.protobuf.Any values resolve against the method's own types, both
// ways.
func TestRPCStepAny(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	f := compileRPCFlow(t, rpcEnv(t), `
steps:
  - {id: start, type: start}
  - {id: echo, type: rpc, rpc: {target: '{{up}}', method: test.v1.Stock/Echo}}
  - {id: end, type: end}
`, srv.Addr, map[string][]byte{})
	body := `{"payload":{"@type":"type.googleapis.com/test.v1.Line","sku":"x","qty":2}}`
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(body))), body)
}
