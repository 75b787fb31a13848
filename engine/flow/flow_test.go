package flow

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
)

// orderUpstream serves POST /orders/{no} and PUT /orders/{id}/confirm.
func orderUpstream(t *testing.T) *upstream {
	t.Helper()
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/orders/"):
			io.WriteString(w, `{"id":"ORD-`+strings.TrimPrefix(r.URL.Path, "/orders/")+`","state":"new"}`)
		case r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/confirm"):
			io.WriteString(w, `{"ok":true,"by":"confirm-svc"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

const multiStepAPI = `
input:
  type: object
  required: [orderNo, items]
  properties:
    orderNo: {type: string}
    items:
      type: array
      items:
        type: object
        required: [sku, qty]
        properties:
          sku: {type: string}
          qty: {type: integer}
transforms:
  request: '.request.body + {channel: "gw"}'
  response: '{orderNo: .steps.create.id, echo: .steps.create.echoNo, trace: .steps.create.trace, score: .steps.score.score, lines: .steps.score.lines, confirmed: .steps.confirm.ok, createdSeen: .steps.confirm.created}'
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http:
      method: POST
      url: '{{up}}/orders/${.request.body.orderNo}'
      headers: {X-Tenant: '${.request.tenantId}', X-Static: 'yes', X-App: '${.request.appId}-${.request.body.channel}'}
      query: {src: '${.request.appId}', n: '${.request.body.items | length}', fixed: 'a b&c'}
    transforms:
      request: '{no: .request.body.orderNo, lines: [.request.body.items[] | {sku, qty}], channel: .request.body.channel}'
      response: '{id: .body.id, status: .status, trace: $traceId, echoNo: $request.body.orderNo}'
  - id: score
    type: script
    script:
      source: |
        function main(ctx) {
          var qty = 0;
          ctx.request.body.items.forEach(function (i) { qty += i.qty; });
          return {score: qty * 10, lines: ctx.request.body.items.length, id: ctx.steps.create.id};
        }
  - id: confirm
    type: http
    http:
      method: PUT
      url: '{{up}}/orders/${.steps.create.id}/confirm'
    transforms:
      request: '{score: .steps.score.score, id: .steps.score.id}'
      response: '.body + {created: $steps.create.id, status: .status}'
  - {id: end, type: end}
`

func TestMultiStepFlow(t *testing.T) {
	up := orderUpstream(t)
	f := compileFlow(t, testEnv(t), multiStepAPI, up.URL)
	res := run(t, f, jsonReq(`{"orderNo":"A-1","items":[{"sku":"x","qty":2},{"sku":"y","qty":3,"note":"dropped"}]}`))
	out := mustOK(t, res)
	jsonEqual(t, out, `{"orderNo":"ORD-A-1","echo":"A-1","trace":"trace-1","score":50,"lines":2,"confirmed":true,"createdSeen":"ORD-A-1"}`)

	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(reqs))
	}
	create := reqs[0]
	if create.Method != http.MethodPost || create.Path != "/orders/A-1" {
		t.Errorf("create: %s %s", create.Method, create.Path)
	}
	q, _ := url.ParseQuery(create.Query)
	if q.Get("src") != "app-1" || q.Get("n") != "2" || q.Get("fixed") != "a b&c" {
		t.Errorf("create query = %q", create.Query)
	}
	for k, want := range map[string]string{
		"X-Tenant":     "t-1",
		"X-Static":     "yes",
		"X-App":        "app-1-gw", // the API request transform added channel
		"X-Trace-Id":   "trace-1",
		"Content-Type": "application/json",
	} {
		if got := create.Header.Get(k); got != want {
			t.Errorf("create header %s = %q, want %q", k, got, want)
		}
	}
	jsonEqual(t, create.Body, `{"no":"A-1","lines":[{"sku":"x","qty":2},{"sku":"y","qty":3}],"channel":"gw"}`)

	confirm := reqs[1]
	if confirm.Method != http.MethodPut || confirm.Path != "/orders/ORD-A-1/confirm" {
		t.Errorf("confirm: %s %s", confirm.Method, confirm.Path)
	}
	if confirm.Header.Get("X-Trace-Id") != "trace-1" {
		t.Errorf("confirm X-Trace-Id = %q", confirm.Header.Get("X-Trace-Id"))
	}
	jsonEqual(t, confirm.Body, `{"score":50,"id":"ORD-A-1"}`)

	var ids []string
	for _, r := range res.Inv.Results {
		ids = append(ids, r.ID+":"+r.Type)
		if r.Error != "" || r.Skipped {
			t.Errorf("step %s: error %q skipped %v", r.ID, r.Error, r.Skipped)
		}
	}
	if got := strings.Join(ids, ","); got != "start:start,create:http,score:script,confirm:http,end:end" {
		t.Errorf("results = %s", got)
	}
	if r := result(t, res, "create"); r.Status != 200 || r.Attempts != 1 {
		t.Errorf("create result: status %d attempts %d", r.Status, r.Attempts)
	}
	if r := result(t, res, "confirm"); r.Status != 200 {
		t.Errorf("confirm status %d", r.Status)
	}
}

// Without transforms the end step's output is the last step's body, and a
// step's default output is its body.
func TestDefaultOutputs(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"v":1}`))
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: a
    type: http
    http: {url: '{{up}}/a'}
  - id: b
    type: script
    script: {source: 'function main(ctx) { return {fromA: ctx.steps.a.v + 1} }'}
  - {id: end, type: end, transforms: {response: '{b: ., a: $steps.a}'}}
`, up.URL)
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{}`))), `{"b":{"fromA":2},"a":{"v":1}}`)
	if got := up.requests()[0].Method; got != http.MethodGet {
		t.Errorf("default method = %s, want GET", got)
	}
}

func TestWhen(t *testing.T) {
	const api = `
transforms:
  response: '{opt: .steps.opt, optIsNull: (.steps.opt == null), hasKey: (.steps | has("opt")), after: .steps.after}'
steps:
  - {id: start, type: start}
  - id: opt
    type: http
    when: '.request.body.flag == true'
    http: {url: '{{up}}/opt'}
  - id: after
    type: script
    script: {source: 'function main(ctx) { return ctx.steps.opt == null ? "opt was null" : ctx.steps.opt.v }'}
  - {id: end, type: end}
`
	tests := []struct {
		name    string
		body    string
		calls   int
		skipped bool
		want    string
	}{
		{"true", `{"flag":true}`, 1, false, `{"opt":{"v":"ran"},"optIsNull":false,"hasKey":true,"after":"ran"}`},
		{"false", `{"flag":false}`, 0, true, `{"opt":null,"optIsNull":true,"hasKey":false,"after":"opt was null"}`},
		{"missing", `{}`, 0, true, `{"opt":null,"optIsNull":true,"hasKey":false,"after":"opt was null"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, jsonReply(200, `{"v":"ran"}`))
			f := compileFlow(t, testEnv(t), api, up.URL)
			res := run(t, f, jsonReq(tt.body))
			jsonEqual(t, mustOK(t, res), tt.want)
			if up.count() != tt.calls {
				t.Errorf("upstream calls = %d, want %d", up.count(), tt.calls)
			}
			r := result(t, res, "opt")
			if r.Skipped != tt.skipped {
				t.Errorf("Skipped = %v, want %v", r.Skipped, tt.skipped)
			}
			if tt.skipped && (r.Status != 0 || r.Attempts != 0) {
				t.Errorf("skipped step has status %d attempts %d", r.Status, r.Attempts)
			}
		})
	}
}

// A skipped last step leaves the end step the output of the step before it.
func TestWhenSkippedLastStep(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"from":"a"}`))
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: a
    type: http
    http: {url: '{{up}}/a'}
  - id: b
    type: http
    when: 'false'
    http: {url: '{{up}}/b'}
  - {id: end, type: end}
`, up.URL)
	out := mustOK(t, run(t, f, jsonReq(`{}`)))
	if string(out) != `{"from":"a"}` {
		t.Errorf("output = %s", out)
	}
	if up.count() != 1 {
		t.Errorf("upstream calls = %d", up.count())
	}
}

func TestOnError(t *testing.T) {
	tests := []struct {
		name      string
		onError   string
		errT      string
		dead      bool // the step's upstream refuses connections
		wantErr   int
		wantSteps string // .steps.x as the response transform sees it
	}{
		{name: "continue with error transform", onError: "continue", errT: `{reason: .body.message, code: .status, ct: .headers["Content-Type"], trace: $traceId}`,
			wantSteps: `{"reason":"out of stock","code":409,"ct":"application/json","trace":"trace-1"}`},
		{name: "continue without error transform", onError: "continue", wantSteps: `null`},
		{name: "continue, connection refused", onError: "continue", errT: `{reason: .body.message}`, dead: true, wantSteps: `null`},
		{name: "fail", onError: "fail", wantErr: http.StatusBadGateway},
		{name: "default is fail", wantErr: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newUpstream(t, jsonReply(http.StatusConflict, `{"message":"out of stock"}`))
			good := newUpstream(t, jsonReply(200, `{"ok":true}`))
			badURL := bad.URL
			if tt.dead {
				badURL = closedURL(t)
			}
			step := "  - id: x\n    type: http\n    http: {url: '" + badURL + "/x'}\n"
			if tt.onError != "" {
				step += "    onError: " + tt.onError + "\n"
			}
			if tt.errT != "" {
				step += "    transforms: {error: '" + tt.errT + "'}\n"
			}
			f := compileFlow(t, testEnv(t), `
transforms:
  response: '{x: .steps.x, next: .steps.next}'
  error: '{failed: .error.step, why: .error.message, status: .error.status, order: .request.body.no}'
steps:
  - {id: start, type: start}
`+step+`
  - id: next
    type: http
    http: {url: '`+good.URL+`/next'}
  - {id: end, type: end}
`, "")
			res := run(t, f, jsonReq(`{"no":"N-7"}`))
			if tt.wantErr != 0 {
				e := mustFail(t, res, tt.wantErr, `"x"`, "upstream answered HTTP 409")
				if e.Step != "x" {
					t.Errorf("Err.Step = %q", e.Step)
				}
				if good.count() != 0 {
					t.Errorf("the step after a failed step ran")
				}
				b, _ := json.Marshal(res.ErrResponse)
				jsonEqual(t, b, `{"failed":"x","why":`+strconvQuote(res.Err.Message)+`,"status":502,"order":"N-7"}`)
				if r := result(t, res, "x"); r.Error == "" || r.Status != http.StatusConflict {
					t.Errorf("x result: %+v", r)
				}
				return
			}
			jsonEqual(t, mustOK(t, res), `{"x":`+tt.wantSteps+`,"next":{"ok":true}}`)
			if res.ErrResponse != nil {
				t.Errorf("ErrResponse = %v on success", res.ErrResponse)
			}
			r := result(t, res, "x")
			if r.Error == "" {
				t.Errorf("continued step records no error: %+v", r)
			}
			if !tt.dead && r.Status != http.StatusConflict {
				t.Errorf("x status = %d", r.Status)
			}
			if good.count() != 1 {
				t.Errorf("next step calls = %d", good.count())
			}
		})
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Without an API error transform ErrResponse stays nil; a failing error
// transform leaves it nil too rather than masking the flow's error.
func TestErrResponse(t *testing.T) {
	up := newUpstream(t, jsonReply(500, `{}`))
	for _, tt := range []struct{ name, transforms string }{
		{"none", ""},
		{"failing", "transforms: {error: 'error(\"nope\")'}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := compileFlow(t, testEnv(t), tt.transforms+`
steps:
  - {id: start, type: start}
  - {id: x, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
			res := run(t, f, jsonReq(`{}`))
			mustFail(t, res, http.StatusBadGateway, `step "x"`, "upstream answered HTTP 500")
			if res.ErrResponse != nil {
				t.Errorf("ErrResponse = %v", res.ErrResponse)
			}
		})
	}
}

func TestInputSchema(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"ok":true}`))
	f := compileFlow(t, testEnv(t), `
input:
  type: object
  required: [orderNo, items]
  properties:
    orderNo: {type: string}
    items:
      type: array
      minItems: 1
      items:
        type: object
        required: [sku, qty]
        properties:
          sku: {type: string}
          qty: {type: integer, minimum: 1}
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {method: POST, url: '{{up}}/x'}}
  - {id: end, type: end}
`, up.URL)
	tests := []struct {
		name  string
		body  string
		ct    string
		parts []string // the message names the field
	}{
		{name: "missing top-level field", body: `{"items":[{"sku":"a","qty":1}]}`, parts: []string{"orderNo"}},
		{name: "wrong type nested", body: `{"orderNo":"A","items":[{"sku":"a","qty":"2"}]}`, parts: []string{"items[0].qty"}},
		{name: "missing nested field", body: `{"orderNo":"A","items":[{"sku":"a","qty":1},{"sku":"b"}]}`, parts: []string{"items[1].qty"}},
		{name: "below minimum", body: `{"orderNo":"A","items":[{"sku":"a","qty":0}]}`, parts: []string{"items[0].qty"}},
		{name: "wrong top-level type", body: `{"orderNo":5,"items":[{"sku":"a","qty":1}]}`, parts: []string{"orderNo"}},
		{name: "empty array", body: `{"orderNo":"A","items":[]}`, parts: []string{"items"}},
		{name: "not an object", body: `[1,2]`, parts: []string{"body"}},
		{name: "not JSON", body: `orderNo=A`, ct: "application/x-www-form-urlencoded", parts: []string{"not valid JSON"}},
		{name: "truncated JSON", body: `{"orderNo":"A",`, parts: []string{"not valid JSON"}},
		{name: "empty body", body: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := jsonReq(tt.body)
			if tt.ct != "" {
				req.ContentType = tt.ct
			}
			res := run(t, f, req)
			e := mustFail(t, res, http.StatusBadRequest, tt.parts...)
			if e.Phase != "input" {
				t.Errorf("phase = %q", e.Phase)
			}
			if r := result(t, res, "start"); r.Error == "" {
				t.Errorf("start result records no error")
			}
			// CheckInput judges the body as the start step did.
			if c := f.CheckInput([]byte(tt.body)); c == nil || c.Message != e.Message || c.Status != e.Status {
				t.Errorf("CheckInput = %v, the start step answered %v", c, e)
			}
		})
	}
	if c := f.CheckInput([]byte(`{"orderNo":"A","items":[{"sku":"a","qty":1}]}`)); c != nil || !f.HasInput() {
		t.Errorf("CheckInput of a valid body: %v", c)
	}
	if up.count() != 0 {
		t.Fatalf("an invalid request reached the upstream %d times", up.count())
	}
	mustOK(t, run(t, f, jsonReq(`{"orderNo":"A","items":[{"sku":"a","qty":1}]}`)))
	if up.count() != 1 {
		t.Errorf("valid request: upstream calls = %d", up.count())
	}
}

func TestJQRuntimeErrors(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"x":"abc"}`))
	fail := newUpstream(t, jsonReply(500, `{}`))
	tests := []struct {
		name  string
		api   string
		step  string
		phase string
		parts []string
	}{
		{name: "step response", step: "s", phase: "transforms.response", parts: []string{`"s"`, "transforms.response", "abc"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}, transforms: {response: '.body.x | tonumber'}}
  - {id: end, type: end}`},
		{name: "step request", step: "s", phase: "transforms.request", parts: []string{`"s"`, "transforms.request", "boom"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {method: POST, url: '{{up}}/'}, transforms: {request: 'error("boom")'}}
  - {id: end, type: end}`},
		{name: "step error transform", step: "s", phase: "transforms.error", parts: []string{`"s"`, "transforms.error", "bad error"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '` + fail.URL + `/'}, onError: continue, transforms: {error: 'error("bad error")'}}
  - {id: end, type: end}`},
		{name: "when", step: "s", phase: "when", parts: []string{`"s"`, "when"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, when: '.request.body.n | tonumber', http: {url: '{{up}}/'}}
  - {id: end, type: end}`},
		{name: "url interpolation", step: "s", phase: "http.url", parts: []string{`"s"`, "http.url", "no url"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/${error("no url")}'}}
  - {id: end, type: end}`},
		{name: "header interpolation", step: "s", phase: "http.headers.X-A", parts: []string{`"s"`, "http.headers.X-A"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/', headers: {X-A: '${.request.body.n + 1}'}}}
  - {id: end, type: end}`},
		{name: "query interpolation", step: "s", phase: "http.query.q", parts: []string{`"s"`, "http.query.q"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/', query: {q: '${error("q")}'}}}
  - {id: end, type: end}`},
		{name: "end response", step: "end", phase: "transforms.response", parts: []string{`"end"`, "transforms.response"}, api: `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end, transforms: {response: '.x | tonumber'}}`},
		{name: "api response", step: "", phase: "transforms.response", parts: []string{"transforms.response", "api boom"}, api: `
transforms: {response: 'error("api boom")'}
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}`},
		{name: "api request", step: "", phase: "transforms.request", parts: []string{"transforms.request", "req boom"}, api: `
transforms: {request: 'error("req boom")'}
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := compileFlow(t, testEnv(t), tt.api, up.URL)
			e := mustFail(t, run(t, f, jsonReq(`{"n":"not a number"}`)), http.StatusInternalServerError, tt.parts...)
			if e.Step != tt.step || e.Phase != tt.phase {
				t.Errorf("step %q phase %q, want %q %q", e.Step, e.Phase, tt.step, tt.phase)
			}
			if e.Err == nil {
				t.Errorf("Err is not wrapped")
			}
		})
	}
}

// A program that yields nothing (empty) gives null rather than an error.
func TestEmptyProgramOutput(t *testing.T) {
	up := newUpstream(t, jsonReply(200, `{"items":[]}`))
	f := compileFlow(t, testEnv(t), `
transforms: {response: '{first: .steps.s}'}
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}, transforms: {response: '.body.items[]'}}
  - {id: end, type: end}
`, up.URL)
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{}`))), `{"first":null}`)
}

func TestContextCancelledMidCall(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	arrived := make(chan struct{}, 1)
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	after := newUpstream(t, jsonReply(200, `{}`))
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: slow, type: http, http: {url: '`+slow.URL+`/', timeout: 30s, retry: {attempts: 3, backoff: 10ms}}}
  - {id: after, type: http, http: {url: '`+after.URL+`/'}}
  - {id: end, type: end}
`, "")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	start := time.Now()
	res := f.Run(ctx, jsonReq(`{}`))
	defer res.Close()
	if res.Err == nil {
		t.Fatal("a cancelled run succeeded")
	}
	if res.Err.Step != "slow" {
		t.Errorf("step = %q", res.Err.Step)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", res.Err.Err)
	}
	// Generous: the upstream would hold the call for the 30s step timeout.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %s after cancel", d)
	}
	if n := slow.count(); n != 1 {
		t.Errorf("cancelled call was retried: %d calls", n)
	}
	if after.count() != 0 {
		t.Errorf("the flow went on after the cancel")
	}
}

func TestContextCancelledInScript(t *testing.T) {
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: spin, type: script, script: {timeout: 30s, source: 'function main(ctx) { for (;;) {} }'}}
  - {id: end, type: end}
`, "")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := f.Run(ctx, jsonReq(`{}`))
	defer res.Close()
	e := mustFail(t, res, http.StatusGatewayTimeout, `"spin"`, "cancelled")
	if e.Step != "spin" {
		t.Errorf("step = %q", e.Step)
	}
}

// Compile names the place of what does not compile; config.Load catches
// these first, so the API values are built by hand.
func TestCompileErrors(t *testing.T) {
	httpStep := func(h *config.HTTPCall) config.Step { return config.Step{ID: "s", Type: config.StepHTTP, HTTP: h} }
	tests := []struct {
		name  string
		api   config.Api
		where string
	}{
		{"api transform", config.Api{Transforms: &config.Transforms{Response: "{"}}, "transforms.response"},
		{"when", config.Api{Steps: []config.Step{{ID: "s", Type: config.StepHTTP, When: ".a |", HTTP: &config.HTTPCall{URL: "http://x/"}}}}, "steps[0].when"},
		{"step transform", config.Api{Steps: []config.Step{{ID: "s", Type: config.StepHTTP, HTTP: &config.HTTPCall{URL: "http://x/"}, Transforms: &config.Transforms{Error: "]"}}}}, "steps[0].transforms.error"},
		{"url", config.Api{Steps: []config.Step{httpStep(&config.HTTPCall{URL: "http://x/${.a"})}}, "steps[0].http"},
		{"header", config.Api{Steps: []config.Step{httpStep(&config.HTTPCall{URL: "http://x/", Headers: map[string]string{"X-A": "${)}"}})}}, "X-A"},
		{"poll", config.Api{Steps: []config.Step{httpStep(&config.HTTPCall{URL: "http://x/", Poll: &config.Poll{Until: "("}})}}, "poll.until"},
		{"script syntax", config.Api{Steps: []config.Step{{ID: "s", Type: config.StepScript, Script: &config.Script{Source: "function main( {"}}}}, "steps[0].script"},
		{"input schema", config.Api{Input: map[string]any{"type": 5}}, "input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.api.Source.File = "apis/x.yaml"
			_, err := Compile(&tt.api, testEnv(t))
			if err == nil {
				t.Fatal("compiled")
			}
			if !strings.Contains(err.Error(), "apis/x.yaml") || !strings.Contains(err.Error(), tt.where) {
				t.Errorf("error %q does not name apis/x.yaml and %q", err, tt.where)
			}
		})
	}
}
