package flow

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
)

// scriptFlow compiles start → one script step (id s) → end. The timeout
// defaults to a generous 5s so a loaded machine cannot fail fast scripts.
func scriptFlow(t *testing.T, timeout, source string) *Flow {
	t.Helper()
	if timeout == "" {
		timeout = "5s"
	}
	timeout = "timeout: " + timeout + "\n      "
	indented := "        " + strings.ReplaceAll(strings.TrimSpace(source), "\n", "\n        ")
	return compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script:
      `+timeout+`
      source: |
`+indented+`
  - {id: end, type: end}
`, "")
}

func TestScriptSeesInvocationDocument(t *testing.T) {
	f := scriptFlow(t, "", `
function main(ctx) {
  return {
    method: ctx.request.method, path: ctx.request.path, app: ctx.request.appId,
    tenant: ctx.request.tenantId, client: ctx.request.clientId, ip: ctx.request.ip,
    code: ctx.request.apiCode, version: ctx.request.version,
    header: ctx.request.headers["X-Custom"], q: ctx.request.query.q,
    body: ctx.request.body, trace: ctx.traceId, user: ctx.request.user,
    steps: Object.keys(ctx.steps).length, vars: typeof ctx.vars,
    big: ctx.request.body.big, half: ctx.request.body.n / 2,
    nan: NaN, date: new Date(0), undef: undefined
  };
}`)
	req := jsonReq(`{"n":5,"s":"x","arr":[1,"two",null,true],"big":12345678901234567890123}`)
	req.Header.Set("X-Custom", "hv")
	req.Query = map[string][]string{"q": {"1", "2"}}
	req.User = map[string]any{"id": "1", "name": "bot"}
	res := run(t, f, req)
	jsonEqual(t, mustOK(t, res), `{
	  "method":"POST","path":"/portal/test.api/v1","app":"app-1","tenant":"t-1","client":"client-1",
	  "ip":"127.0.0.1","code":"test.api","version":"v1","header":"hv","q":"1,2",
	  "body":{"n":5,"s":"x","arr":[1,"two",null,true],"big":1.2345678901234568e+22},
	  "trace":"trace-1","user":{"id":"1","name":"bot"},"steps":0,"vars":"object",
	  "big":1.2345678901234568e+22,"half":2.5,"nan":null,"date":"1970-01-01T00:00:00Z","undef":null}`)
	if r := result(t, res, "s"); r.Attempts != 1 || r.Response == nil {
		t.Errorf("script result %+v", r)
	}
}

func TestScriptReturnValues(t *testing.T) {
	tests := []struct{ src, want string }{
		{`function main() { return 1 }`, `1`},
		{`function main() { return 2.5 }`, `2.5`},
		{`function main() { return "s" }`, `"s"`},
		{`function main() { return null }`, `null`},
		{`function main() {}`, `null`},
		{`function main() { return [1, {a: [true]}] }`, `[1,{"a":[true]}]`},
		{`function main() { return 9007199254740993 }`, `9007199254740992`},
		{`function main() { return {f: function () {}, u: undefined, x: 1} }`, `{"u":null,"x":1}`},
		{`function main() { return [1, function () {}] }`, `[1,null]`},
		{`function main() { return function () {} }`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			out := mustOK(t, run(t, scriptFlow(t, "", tt.src), jsonReq(`{}`)))
			jsonEqual(t, out, tt.want)
		})
	}
}

func TestScriptErrors(t *testing.T) {
	tests := []struct {
		name, src string
		status    int
		parts     []string
	}{
		{"throw Error", `function main() { throw new Error("no stock for sku 7") }`, 500, []string{`"s"`, "no stock for sku 7"}},
		{"throw string", `function main() { throw "plain" }`, 500, []string{`"s"`, "plain"}},
		{"type error", `function main(ctx) { return ctx.request.body.missing.deeper }`, 500, []string{`"s"`, "TypeError"}},
		{"too deep", `function main() { var o = {}; var c = o; for (var i = 0; i < 100; i++) { c.x = {}; c = c.x } return o }`, 500, []string{`"s"`, "deeper than 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustFail(t, run(t, scriptFlow(t, "", tt.src), jsonReq(`{}`)), tt.status, tt.parts...)
			if e.Step != "s" {
				t.Errorf("step = %q", e.Step)
			}
		})
	}
}

// An endless loop is interrupted after the script timeout with 504, and
// the interrupted runtime is never used again: state it held (or would
// hold, were runtimes reused) never shows in a later call.
func TestScriptTimeout(t *testing.T) {
	f := scriptFlow(t, "100ms", `
let calls = 0;
function main(ctx) {
  calls++;
  if (ctx.request.body.loop) { for (;;) {} }
  return calls;
}`)
	e := mustFail(t, run(t, f, jsonReq(`{"loop":true}`)), http.StatusGatewayTimeout, `"s"`, "timed out after 100ms")
	if e.Step != "s" {
		t.Errorf("step = %q", e.Step)
	}
	for i := 0; i < 20; i++ {
		out := mustOK(t, run(t, f, jsonReq(`{"loop":false}`)))
		if string(out) != "1" {
			t.Fatalf("call %d after the timeout returned %s: a runtime was reused", i, out)
		}
		if i%5 == 0 {
			mustFail(t, run(t, f, jsonReq(`{"loop":true}`)), http.StatusGatewayTimeout, "timed out")
		}
	}
}

// No state survives a call: not in globals (var, let, const, closures),
// not in the global object, not in built-in prototypes.
func TestScriptNoStateLeaks(t *testing.T) {
	tests := []struct{ name, src string }{
		{"var counter", `var n = 0; function main() { n++; return n }`},
		{"let counter", `let n = 0; function main() { n++; return n }`},
		{"const object", `const c = {n: 0}; function main() { c.n++; return c.n }`},
		{"closure", `var next = (function () { var c = 0; return function () { return ++c } })(); function main() { return next() }`},
		{"array in global", `var seen = []; function main(ctx) { seen.push(1); return seen.length }`},
		{"global object", `function main() { globalThis.q = (globalThis.q || 0) + 1; return globalThis.q || 0 }`},
		{"implicit global", `function main() { try { leaked = (typeof leaked === "number" ? leaked : 0) + 1 } catch (e) {} return typeof leaked === "number" ? leaked : 0 }`},
		{"Array.prototype", `function main() { var before = [].x; Array.prototype.x = 1; return before === undefined ? 0 : 1 }`},
		{"Object.prototype", `function main() { var before = ({}).y; Object.prototype.y = 1; return before === undefined ? 0 : 1 }`},
		{"String.prototype", `function main() { var before = "".z; String.prototype.z = 1; return before === undefined ? 0 : 1 }`},
		{"JSON replaced", `function main() { var before = JSON.parse === undefined ? 1 : 0; JSON.parse = undefined; return before }`},
		{"Math patched", `function main() { var before = Math.leak || 0; Math.leak = 1; return before }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := scriptFlow(t, "", tt.src)
			first := string(mustOK(t, run(t, f, jsonReq(`{}`))))
			for i := 0; i < 10; i++ {
				if got := string(mustOK(t, run(t, f, jsonReq(`{}`)))); got != first {
					t.Fatalf("call %d returned %s, first call %s: state leaked between runs", i+2, got, first)
				}
			}
		})
	}
}

// A script cannot change the invocation document other programs see.
func TestScriptCannotMutateDocument(t *testing.T) {
	f := compileFlow(t, testEnv(t), `
transforms: {response: '{body: .request.body, s: .steps.s}'}
steps:
  - {id: start, type: start}
  - {id: s, type: script, script: {source: 'function main(ctx) { ctx.request.body.a = 99; ctx.request.body.list.push(4); ctx.steps.fake = 1; return "ok" }'}}
  - {id: end, type: end}
`, "")
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"a":1,"list":[1]}`))), `{"body":{"a":1,"list":[1]},"s":"ok"}`)
}

// Compile refuses a script without main or whose top level throws.
func TestScriptCompileErrors(t *testing.T) {
	for _, src := range []string{
		`function notMain() {}`,
		`var main = 1;`,
		`throw new Error("top")`,
		`function main() {} for (;;) {}`,
	} {
		t.Run(src, func(t *testing.T) {
			cs := &config.Step{ID: "s", Type: config.StepScript, Script: &config.Script{Source: src}}
			if _, err := compileScript(cs); err == nil {
				t.Errorf("compiled %q", src)
			}
		})
	}
}

// Many goroutines run one compiled script at once (run with -race).
func TestScriptConcurrent(t *testing.T) {
	f := scriptFlow(t, "5s", `
let hits = 0;
function main(ctx) {
  hits++;
  var s = 0;
  for (var i = 0; i < ctx.request.body.n; i++) { s += i; }
  return {n: ctx.request.body.n, sum: s, hits: hits};
}`)
	const workers, calls = 50, 10
	var wg sync.WaitGroup
	errs := make(chan string, workers*calls)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for c := 0; c < calls; c++ {
				n := w*calls + c
				res := f.Run(t.Context(), jsonReq(fmt.Sprintf(`{"n":%d}`, n)))
				if res.Err != nil {
					errs <- res.Err.Message
					continue
				}
				out, _ := res.Output.JSON()
				if want := fmt.Sprintf(`{"hits":1,"n":%d,"sum":%d}`, n, n*(n-1)/2); string(out) != want {
					errs <- fmt.Sprintf("got %s, want %s", out, want)
				}
				res.Close()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
