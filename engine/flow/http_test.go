package flow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The caller's body and content type reach the upstream unchanged when the
// step has no request transform, whatever else the flow evaluates first.
func TestPassthroughRequestBody(t *testing.T) {
	steps := map[string]string{
		"plain": `
  - {id: fwd, type: http, http: {method: POST, url: '{{up}}/in'}}`,
		"interpolated header": `
  - {id: fwd, type: http, http: {method: POST, url: '{{up}}/in', headers: {X-Req: '${.request.appId}'}}}`,
		"interpolated url": `
  - {id: fwd, type: http, http: {method: POST, url: '{{up}}/${.request.apiCode}'}}`,
		"when": `
  - {id: fwd, type: http, when: '.request.method == "POST"', http: {method: POST, url: '{{up}}/in'}}`,
		"after a script": `
  - {id: pre, type: script, script: {source: 'function main(ctx) { return 1 }'}}
  - {id: fwd, type: http, http: {method: POST, url: '{{up}}/in'}}`,
		"PUT": `
  - {id: fwd, type: http, http: {method: PUT, url: '{{up}}/in'}}`,
	}
	bodies := []struct{ name, ct, body string }{
		{"xml", "application/xml; charset=utf-8", `<order><no>1</no></order>`},
		{"form", "application/x-www-form-urlencoded", `a=1&b=%20x`},
		{"json as written", "application/json", "{\"z\": 1,  \"a\": [1,2],\n\"n\": 12345678901234567890}"},
		{"binary", "application/octet-stream", "\x00\xff\x01binary\xfe"},
	}
	for name, st := range steps {
		for _, b := range bodies {
			t.Run(name+"/"+b.name, func(t *testing.T) {
				up := newUpstream(t, jsonReply(200, `{}`))
				f := compileFlow(t, testEnv(t), "steps:\n  - {id: start, type: start}"+st+"\n  - {id: end, type: end}\n", up.URL)
				req := jsonReq(b.body)
				req.ContentType = b.ct
				req.Header.Set("Content-Type", b.ct)
				mustOK(t, run(t, f, req))
				got := up.requests()
				if len(got) != 1 {
					t.Fatalf("upstream calls = %d", len(got))
				}
				if string(got[0].Body) != b.body {
					t.Errorf("body = %q, want %q", got[0].Body, b.body)
				}
				if ct := got[0].Header.Get("Content-Type"); ct != b.ct {
					t.Errorf("content type = %q, want %q", ct, b.ct)
				}
			})
		}
	}
}

// A GET carries no body even when the caller sent one; an API-level request
// transform replaces the passed-through body with its JSON.
func TestRequestBodyShaping(t *testing.T) {
	t.Run("GET has no body", func(t *testing.T) {
		up := newUpstream(t, jsonReply(200, `{}`))
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {method: GET, url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
		mustOK(t, run(t, f, jsonReq(`{"a":1}`)))
		if b := up.requests()[0].Body; len(b) != 0 {
			t.Errorf("GET sent body %q", b)
		}
	})
	t.Run("API request transform", func(t *testing.T) {
		up := newUpstream(t, jsonReply(200, `{}`))
		f := compileFlow(t, testEnv(t), `
transforms: {request: '{wrapped: .request.body, n: 12345678901234567890}'}
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {method: POST, url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
		req := jsonReq(`<x/>`)
		req.ContentType = "application/xml"
		mustOK(t, run(t, f, req))
		got := up.requests()[0]
		if string(got.Body) != `{"n":12345678901234567890,"wrapped":"<x/>"}` {
			t.Errorf("body = %s", got.Body)
		}
		if ct := got.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type = %q", ct)
		}
	})
	t.Run("string request transform is text", func(t *testing.T) {
		up := newUpstream(t, jsonReply(200, `{}`))
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {method: POST, url: '{{up}}/'}, transforms: {request: '"no=\(.request.body.no)"'}}
  - {id: end, type: end}
`, up.URL)
		mustOK(t, run(t, f, jsonReq(`{"no":7}`)))
		got := up.requests()[0]
		if string(got.Body) != "no=7" || !strings.HasPrefix(got.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("body %q content type %q", got.Body, got.Header.Get("Content-Type"))
		}
	})
	t.Run("explicit Content-Type header wins", func(t *testing.T) {
		up := newUpstream(t, jsonReply(200, `{}`))
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {method: POST, url: '{{up}}/', headers: {Content-Type: 'application/vnd.x+json'}}, transforms: {request: '{a: 1}'}}
  - {id: end, type: end}
`, up.URL)
		mustOK(t, run(t, f, jsonReq(`{}`)))
		if ct := up.requests()[0].Header.Get("Content-Type"); ct != "application/vnd.x+json" {
			t.Errorf("content type = %q", ct)
		}
	})
}

// The upstream's JSON reaches Output.JSON byte for byte: big integers,
// number spelling and key order are kept, even when programs decoded the
// output on the way.
func TestPassthroughResponseJSON(t *testing.T) {
	const body = `{"z":1,"a":12345678901234567890,"m":[3,2,1],"f":1.50,"e":1e400,"s":"<&>"}`
	apis := map[string]string{
		"plain": `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}`,
		"document built before the step": `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/${.request.apiCode}', headers: {X-T: '${.traceId}'}}}
  - {id: end, type: end}`,
		"a later step reads it": `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: later, type: http, when: '.steps.s.z == 2', http: {url: '{{up}}/never'}}
  - {id: end, type: end}`,
	}
	for name, api := range apis {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, "  "+body+"\n")
			})
			f := compileFlow(t, testEnv(t), api, up.URL)
			out := mustOK(t, run(t, f, jsonReq(`{}`)))
			if string(out) != body {
				t.Errorf("JSON() = %s\n      want %s", out, body)
			}
		})
	}
}

func TestResponseBodyKinds(t *testing.T) {
	tests := []struct {
		name, ct, body, want string
	}{
		{"text", "text/plain", "hello <b>world</b> \"q\"", `"hello <b>world</b> \"q\""`},
		{"html", "text/html", "<html>ok</html>\n", `"<html>ok</html>\n"`},
		{"empty", "application/json", "", `null`},
		{"whitespace", "text/plain", " \n\t", `null`},
		{"invalid utf-8", "application/octet-stream", "a\xffb", `"a\ufffdb"`},
		{"json string", "application/json", `"s"`, `"s"`},
		{"json scalar", "application/json", `42`, `42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ct)
				io.WriteString(w, tt.body)
			})
			f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
			out := mustOK(t, run(t, f, jsonReq(`{}`)))
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %q", out)
			}
			jsonEqual(t, out, tt.want)
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	dead := closedURL(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	slowHeaders := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	slowBody := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"partial":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	tests := []struct {
		name    string
		handler http.HandlerFunc
		url     string
		extra   string
		status  int
		parts   []string
	}{
		{name: "500", handler: jsonReply(500, `{"error":"x"}`), status: 502, parts: []string{"upstream answered HTTP 500"}},
		{name: "404", handler: jsonReply(404, ``), status: 502, parts: []string{"upstream answered HTTP 404"}},
		{name: "connection refused", url: dead, status: 502, parts: []string{"refused"}},
		{name: "slow headers", url: slowHeaders.URL, extra: "timeout: 50ms", status: 504, parts: []string{"timed out"}},
		{name: "slow body", url: slowBody.URL, extra: "timeout: 100ms", status: 504, parts: []string{"timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url
			if u == "" {
				u = newUpstream(t, tt.handler).URL
			}
			f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http: {url: '`+u+`/x', `+tt.extra+`}
  - {id: end, type: end}
`, "")
			e := mustFail(t, run(t, f, jsonReq(`{}`)), tt.status, append(tt.parts, `"call"`)...)
			if e.Step != "call" {
				t.Errorf("step = %q", e.Step)
			}
		})
	}
}

// The flow's default timeout applies when a step sets none.
func TestDefaultTimeout(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	})
	env := testEnv(t)
	env.DefaultTimeout = 50 * time.Millisecond
	f := compileFlow(t, env, `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
	mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusGatewayTimeout, `"call"`, "timed out after 50ms")
}

func TestMaxResponseBytes(t *testing.T) {
	env := testEnv(t)
	env.MaxResponseBytes = 1024
	for _, tt := range []struct {
		size int
		ok   bool
	}{{1024, true}, {1025, false}, {1 << 20, false}} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write(bytes.Repeat([]byte("a"), tt.size))
			})
			f := compileFlow(t, env, `
steps:
  - {id: start, type: start}
  - {id: big, type: http, http: {url: '{{up}}/'}}
  - {id: end, type: end}
`, up.URL)
			res := run(t, f, jsonReq(`{}`))
			if tt.ok {
				if out := mustOK(t, res); len(out) != tt.size+2 {
					t.Errorf("output length %d", len(out))
				}
				return
			}
			mustFail(t, res, http.StatusBadGateway, `"big"`, "larger than 1024 bytes")
		})
	}
}

// flaky answers fails times with status, then 200 {"n": calls}.
func flaky(fails, status int) http.HandlerFunc {
	var mu sync.Mutex
	calls := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n <= fails {
			w.WriteHeader(status)
			io.WriteString(w, `{"error":"busy"}`)
			return
		}
		fmt.Fprintf(w, `{"n":%d}`, n)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		retry    string
		fails    int
		status   int
		calls    int
		wantErr  int
		wantBody string
	}{
		{name: "GET retried on 503", method: "GET", retry: "{attempts: 3, backoff: 10ms}", fails: 2, status: 503, calls: 3, wantBody: `{"n":3}`},
		{name: "GET retried on 502", method: "GET", retry: "{attempts: 1, backoff: 10ms}", fails: 1, status: 502, calls: 2, wantBody: `{"n":2}`},
		{name: "GET retried on 504", method: "GET", retry: "{attempts: 1, backoff: 10ms}", fails: 1, status: 504, calls: 2, wantBody: `{"n":2}`},
		{name: "PUT is idempotent", method: "PUT", retry: "{attempts: 2, backoff: 10ms}", fails: 1, status: 503, calls: 2, wantBody: `{"n":2}`},
		{name: "attempts exhausted", method: "GET", retry: "{attempts: 2, backoff: 5ms}", fails: 10, status: 503, calls: 3, wantErr: 502},
		{name: "500 is not retried", method: "GET", retry: "{attempts: 3, backoff: 5ms}", fails: 1, status: 500, calls: 1, wantErr: 502},
		{name: "4xx is not retried", method: "GET", retry: "{attempts: 3, backoff: 5ms}", fails: 1, status: 429, calls: 1, wantErr: 502},
		{name: "POST not retried", method: "POST", retry: "{attempts: 3, backoff: 5ms}", fails: 1, status: 503, calls: 1, wantErr: 502},
		{name: "PATCH not retried", method: "PATCH", retry: "{attempts: 3, backoff: 5ms}", fails: 1, status: 503, calls: 1, wantErr: 502},
		{name: "POST retried with force", method: "POST", retry: "{attempts: 3, backoff: 5ms, force: true}", fails: 2, status: 503, calls: 3, wantBody: `{"n":3}`},
		{name: "no retry block", method: "GET", fails: 1, status: 503, calls: 1, wantErr: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, flaky(tt.fails, tt.status))
			retry := ""
			if tt.retry != "" {
				retry = ", retry: " + tt.retry
			}
			f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {method: `+tt.method+`, url: '{{up}}/'`+retry+`}}
  - {id: end, type: end}
`, up.URL)
			res := run(t, f, jsonReq(`{"x":1}`))
			if tt.wantErr != 0 {
				mustFail(t, res, tt.wantErr, `"call"`, fmt.Sprintf("HTTP %d", tt.status))
			} else if out := mustOK(t, res); string(out) != tt.wantBody {
				t.Errorf("output = %s, want %s", out, tt.wantBody)
			}
			if up.count() != tt.calls {
				t.Errorf("upstream calls = %d, want %d", up.count(), tt.calls)
			}
			if r := result(t, res, "call"); r.Attempts != tt.calls {
				t.Errorf("Attempts = %d, want %d", r.Attempts, tt.calls)
			}
			// A retried POST sends the same body every time; every
			// attempt, the same headers, once each.
			for i, r := range up.requests() {
				if tt.method == "POST" && string(r.Body) != `{"x":1}` {
					t.Errorf("attempt %d body = %q", i+1, r.Body)
				}
				if v := r.Header.Values("X-Trace-Id"); len(v) != 1 || v[0] != "trace-1" {
					t.Errorf("attempt %d X-Trace-Id = %q", i+1, v)
				}
			}
		})
	}
}

// Retries wait the backoff, doubling it each time. Only lower bounds are
// asserted: a loaded machine may be slower, never faster.
func TestRetryBackoff(t *testing.T) {
	up := newUpstream(t, flaky(3, 503))
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {url: '{{up}}/', retry: {attempts: 3, backoff: 40ms}}}
  - {id: end, type: end}
`, up.URL)
	mustOK(t, run(t, f, jsonReq(`{}`)))
	reqs := up.requests()
	if len(reqs) != 4 {
		t.Fatalf("calls = %d", len(reqs))
	}
	for i, want := range []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond} {
		if gap := reqs[i+1].At.Sub(reqs[i].At); gap < want {
			t.Errorf("gap before attempt %d = %s, want >= %s", i+2, gap, want)
		}
	}
}

// Connection failures are retried too, and a step timeout ends each
// attempt, not the whole retry loop.
func TestRetryTransportFailures(t *testing.T) {
	f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {url: '`+closedURL(t)+`/', retry: {attempts: 2, backoff: 5ms}}}
  - {id: end, type: end}
`, "")
	res := run(t, f, jsonReq(`{}`))
	mustFail(t, res, http.StatusBadGateway, `"call"`, "refused")
	if r := result(t, res, "call"); r.Attempts != 3 {
		t.Errorf("Attempts = %d, want 3", r.Attempts)
	}

	var mu sync.Mutex
	calls := 0
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			<-r.Context().Done() // the first attempt times out
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})
	f = compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {url: '{{up}}/', timeout: 500ms, retry: {attempts: 1, backoff: 5ms}}}
  - {id: end, type: end}
`, up.URL)
	res = run(t, f, jsonReq(`{}`))
	if out := mustOK(t, res); string(out) != `{"ok":true}` {
		t.Errorf("output = %s", out)
	}
	if r := result(t, res, "call"); r.Attempts != 2 {
		t.Errorf("Attempts = %d, want 2", r.Attempts)
	}
}

// pollUpstream answers {"status": states[i]} on call i (the last repeats).
func pollUpstream(t *testing.T, states ...string) *upstream {
	var mu sync.Mutex
	i := 0
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := states[min(i, len(states)-1)]
		i++
		n := i
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":%q,"call":%d}`, s, n)
	})
}

func TestPoll(t *testing.T) {
	const poll = `
steps:
  - {id: start, type: start}
  - id: query
    type: http
    http:
      url: '{{up}}/job/${.request.body.job}'
      poll: {until: '.body.status == "success"', failWhen: '.body.status == "failed"', interval: 20ms, timeout: %s}
  - {id: end, type: end}
`
	t.Run("until reached", func(t *testing.T) {
		up := pollUpstream(t, "running", "running", "success")
		f := compileFlow(t, testEnv(t), fmt.Sprintf(poll, "5s"), up.URL)
		res := run(t, f, jsonReq(`{"job":"j1"}`))
		if out := mustOK(t, res); string(out) != `{"status":"success","call":3}` {
			t.Errorf("output = %s", out)
		}
		if up.count() != 3 {
			t.Errorf("calls = %d", up.count())
		}
		if r := result(t, res, "query"); r.Attempts != 3 || r.Status != 200 {
			t.Errorf("result %+v", r)
		}
		for _, r := range up.requests() {
			if r.Path != "/job/j1" {
				t.Errorf("path = %s", r.Path)
			}
		}
		reqs := up.requests()
		if gap := reqs[2].At.Sub(reqs[1].At); gap < 20*time.Millisecond {
			t.Errorf("poll interval not respected: %s", gap)
		}
	})
	t.Run("failWhen", func(t *testing.T) {
		up := pollUpstream(t, "running", "failed", "success")
		f := compileFlow(t, testEnv(t), fmt.Sprintf(poll, "5s"), up.URL)
		e := mustFail(t, run(t, f, jsonReq(`{"job":"j1"}`)), http.StatusBadGateway, `"query"`, "failWhen")
		if e.Step != "query" {
			t.Errorf("step = %q", e.Step)
		}
		if up.count() != 2 {
			t.Errorf("calls = %d, want 2", up.count())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		up := pollUpstream(t, "running")
		f := compileFlow(t, testEnv(t), fmt.Sprintf(poll, "200ms"), up.URL)
		start := time.Now()
		e := mustFail(t, run(t, f, jsonReq(`{"job":"j1"}`)), http.StatusGatewayTimeout, `"query"`, "poll.until not reached within 200ms")
		if e.Step != "query" {
			t.Errorf("step = %q", e.Step)
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("gave up after %s", d)
		}
		if up.count() < 2 {
			t.Errorf("calls = %d", up.count())
		}
	})
	t.Run("timeout while evaluating until", func(t *testing.T) {
		up := pollUpstream(t, "running")
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - id: query
    type: http
    http:
      url: '{{up}}/'
      poll: {until: 'reduce range(0; 1e12) as $i (0; . + 1) < 0', interval: 20ms, timeout: 100ms}
  - {id: end, type: end}
`, up.URL)
		mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusGatewayTimeout, `"query"`, "poll.until not reached within 100ms")
	})
	t.Run("cancelled while polling", func(t *testing.T) {
		up := pollUpstream(t, "running")
		f := compileFlow(t, testEnv(t), fmt.Sprintf(poll, "30s"), up.URL)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		res := f.Run(ctx, jsonReq(`{"job":"j1"}`))
		defer res.Close()
		mustFail(t, res, http.StatusGatewayTimeout, `"query"`, "cancelled")
	})
	t.Run("upstream error stops polling", func(t *testing.T) {
		up := newUpstream(t, jsonReply(500, `{}`))
		f := compileFlow(t, testEnv(t), fmt.Sprintf(poll, "5s"), up.URL)
		mustFail(t, run(t, f, jsonReq(`{"job":"j1"}`)), http.StatusBadGateway, "HTTP 500")
		if up.count() != 1 {
			t.Errorf("calls = %d", up.count())
		}
	})
	t.Run("jq error in until", func(t *testing.T) {
		up := pollUpstream(t, "running")
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: query, type: http, http: {url: '{{up}}/', poll: {until: '.body.status | tonumber', interval: 20ms, timeout: 1s}}}
  - {id: end, type: end}
`, up.URL)
		e := mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusInternalServerError, `"query"`, "poll.until")
		if e.Phase != "http.poll.until" {
			t.Errorf("phase = %q", e.Phase)
		}
	})
}

// streamBody writes size bytes of a repeating pattern without allocating
// size bytes.
func streamBody(size int, ct string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
		for left := size; left > 0; {
			n := min(left, len(chunk))
			if _, err := w.Write(chunk[:n]); err != nil {
				return
			}
			left -= n
		}
	}
}

const streamAPI = `
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/file/${.request.body.file}', stream: true, timeout: 60s, headers: {X-T: '${.traceId}'}}}
  - {id: end, type: end}
`

func TestStreamPassthrough(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pdf")
		io.WriteString(w, "%PDF-1.7 not json")
	})
	f := compileFlow(t, testEnv(t), streamAPI, up.URL)
	res := run(t, f, jsonReq(`{"file":"a.pdf"}`))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	stream, ct := res.Output.Stream()
	if stream == nil {
		t.Fatal("Output.Stream() is nil for a streaming step that reaches the end unchanged")
	}
	if ct != "application/pdf" {
		t.Errorf("content type = %q", ct)
	}
	b, err := io.ReadAll(stream)
	if err != nil || string(b) != "%PDF-1.7 not json" {
		t.Errorf("stream = %q, %v", b, err)
	}
	if got := up.requests()[0].Path; got != "/file/a.pdf" {
		t.Errorf("path = %s", got)
	}
	if r := result(t, res, "dl"); r.Status != 200 {
		t.Errorf("status = %d", r.Status)
	}
}

// 50 MB flow through a streaming step without being buffered.
func TestStreamBoundedMemory(t *testing.T) {
	const size = 50 << 20
	up := newUpstream(t, streamBody(size, "application/octet-stream"))
	env := testEnv(t)
	env.MaxResponseBytes = 1 << 20 // a buffered body this size would fail
	f := compileFlow(t, env, streamAPI, up.URL)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := f.Run(context.Background(), jsonReq(`{"file":"big.bin"}`))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	stream, _ := res.Output.Stream()
	if stream == nil {
		t.Fatal("no stream")
	}
	h := sha256.New()
	n, err := io.Copy(io.Discard, io.TeeReader(stream, h))
	res.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	want := sha256.New()
	streamBody(size, "").ServeHTTP(&hashWriter{h: want}, nil)
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Errorf("streamed bytes differ from the upstream's")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d MB while streaming 50 MB", alloc>>20)
	}
}

// hashWriter is a ResponseWriter that hashes what is written.
type hashWriter struct{ h io.Writer }

func (w *hashWriter) Header() http.Header         { return http.Header{} }
func (w *hashWriter) Write(b []byte) (int, error) { return w.h.Write(b) }
func (w *hashWriter) WriteHeader(int)             {}

// A streaming step whose value a program needs is read and decoded.
func TestStreamMaterialized(t *testing.T) {
	const body = `{"items":[1,2,3],"name":"f"}`
	tests := []struct {
		name string
		api  string
		want string
	}{
		{"api response transform", `
transforms: {response: '{count: (.steps.dl.items | length)}'}
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true}}
  - {id: end, type: end}`, `{"count":3}`},
		{"step response transform", `
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true}, transforms: {response: '.body.name'}}
  - {id: end, type: end}`, `"f"`},
		{"later script", `
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true, headers: {X-T: '${.traceId}'}}}
  - {id: s, type: script, script: {source: 'function main(ctx) { return ctx.steps.dl.items.length }'}}
  - {id: end, type: end}`, `3`},
		{"later when", `
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true}}
  - {id: skip, type: http, when: '.steps.dl.name != "f"', http: {url: '{{up}}/never'}}
  - {id: end, type: end, transforms: {response: '$steps.dl.items'}}`, `[1,2,3]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, jsonReply(200, body))
			f := compileFlow(t, testEnv(t), tt.api, up.URL)
			res := run(t, f, jsonReq(`{}`))
			if s, _ := res.Output.Stream(); s != nil {
				t.Errorf("output is still a stream")
			}
			jsonEqual(t, mustOK(t, res), tt.want)
		})
	}
	t.Run("too large for a transform", func(t *testing.T) {
		up := newUpstream(t, streamBody(4096, "text/plain"))
		env := testEnv(t)
		env.MaxResponseBytes = 1024
		f := compileFlow(t, env, `
transforms: {response: '.steps.dl | length'}
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true}}
  - {id: end, type: end}
`, up.URL)
		mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusInternalServerError, "larger than 1024 bytes")
	})
	t.Run("raw bytes kept when only decoded", func(t *testing.T) {
		up := newUpstream(t, jsonReply(200, `{"z":1,"a":12345678901234567890}`))
		f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: dl, type: http, http: {url: '{{up}}/', stream: true}}
  - {id: check, type: http, when: '.steps.dl.z == 2', http: {url: '{{up}}/never'}}
  - {id: end, type: end}
`, up.URL)
		if out := mustOK(t, run(t, f, jsonReq(`{}`))); string(out) != `{"z":1,"a":12345678901234567890}` {
			t.Errorf("output = %s", out)
		}
	})
}

// A streaming step that answers non-2xx fails like any other.
func TestStreamUpstreamError(t *testing.T) {
	up := newUpstream(t, jsonReply(503, `{"busy":true}`))
	f := compileFlow(t, testEnv(t), streamAPI, up.URL)
	mustFail(t, run(t, f, jsonReq(`{"file":"x"}`)), http.StatusBadGateway, `"dl"`, "HTTP 503")
}

// Gateway headers: X-Trace-Id carries the trace id unless the step sets its
// own; the caller's Authorization (or the anonymous caller's internal JWT)
// goes upstream unless the step sets its own.
func TestGatewayHeaders(t *testing.T) {
	tests := []struct {
		name      string
		headers   string
		trace     string
		auth      string
		wantTrace string
		wantAuth  string
	}{
		{name: "defaults", trace: "tr-9", auth: "Bearer caller", wantTrace: "tr-9", wantAuth: "Bearer caller"},
		{name: "no trace, no auth", wantTrace: "", wantAuth: ""},
		{name: "step wins", headers: `{X-Trace-Id: 'own-${.traceId}', Authorization: 'Basic c3RlcA=='}`, trace: "tr-9", auth: "Bearer caller",
			wantTrace: "own-tr-9", wantAuth: "Basic c3RlcA=="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, jsonReply(200, `{}`))
			h := ""
			if tt.headers != "" {
				h = ", headers: " + tt.headers
			}
			f := compileFlow(t, testEnv(t), `
steps:
  - {id: start, type: start}
  - {id: s, type: http, http: {url: '{{up}}/'`+h+`}}
  - {id: end, type: end}
`, up.URL)
			req := jsonReq(`{}`)
			req.TraceID, req.Authorization = tt.trace, tt.auth
			mustOK(t, run(t, f, req))
			got := up.requests()[0].Header
			if v := got.Get("X-Trace-Id"); v != tt.wantTrace {
				t.Errorf("X-Trace-Id = %q, want %q", v, tt.wantTrace)
			}
			if v := got.Get("Authorization"); v != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", v, tt.wantAuth)
			}
		})
	}
}
