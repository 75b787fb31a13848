package portal

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// testRepo writes files into a temp repository and returns its path.
func testRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const openSettings = `apiPortal:
  basePath: /api
  legacyBasePaths: [/old/api]
  maxBodyBytes: 1024
  security: {enabled: false}
`

const policy = "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\nlimit: 1000000\n"

func api(code, status, methods, steps string) string {
	return "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: v1\nstatus: " + status +
		"\nmethods: " + methods + "\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n" + steps + "  - {id: end, type: end}\n"
}

func scriptStep(src string) string {
	return "  - id: s\n    type: script\n    script: {source: '" + src + "'}\n"
}

// newPortal loads dir and returns a portal serving it.
func newPortal(t testing.TB, dir string) (*Handler, *snapshot.Snapshot) {
	t.Helper()
	repo, diags, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatalf("test repository is invalid:\n%s", diags.Error())
	}
	env := &flow.Env{Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, DefaultTimeout: 5 * time.Second, MaxResponseBytes: 1 << 20}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[snapshot.Snapshot]
	cur.Store(snap)
	return New(cur.Load, Options{}), snap
}

type envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
	TraceID  string          `json:"traceId"`
}

func do(t testing.TB, h http.Handler, method, target, body string, hdr map[string]string) (*httptest.ResponseRecorder, envelope) {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.10:40000"
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var env envelope
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: answer is not an envelope: %v\n%s", method, target, err, w.Body.String())
	}
	if env.Code != w.Code {
		t.Errorf("%s %s: envelope code %d != HTTP status %d", method, target, env.Code, w.Code)
	}
	if env.TraceID == "" || w.Header().Get(TraceHeader) != env.TraceID {
		t.Errorf("%s %s: trace id %q not echoed in %s (%q)", method, target, env.TraceID, TraceHeader, w.Header().Get(TraceHeader))
	}
	return w, env
}

func TestRoutingAndEnvelope(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("demo.echo", "online", "[POST, GET]", scriptStep(`function main(c) { return {got: c.request.body, q: c.request.query.x || null, m: c.request.method} }`)),
		"apis/b.yaml":     api("demo.off", "offline", "[GET]", scriptStep(`function main(c) { return 1 }`)),
		"apis/c.yaml":     api("demo.draft", "draft", "[GET]", scriptStep(`function main(c) { return 1 }`)),
		"apis/d.yaml":     api("demo.old", "deprecated", "[GET]", scriptStep(`function main(c) { return 1 }`)),
	})
	h, _ := newPortal(t, dir)
	tests := []struct {
		name, method, target, body string
		status                     int
		message                    string
		response                   string // "" = don't check
	}{
		{"ok", "POST", "/api/demo.echo/v1", `{"a":1}`, 200, MsgOK, `{"got":{"a":1},"m":"POST","q":null}`},
		{"legacy base path", "GET", "/old/api/demo.echo/v1?x=7", "", 200, MsgOK, `{"got":null,"m":"GET","q":"7"}`},
		{"unknown api", "POST", "/api/nope/v1", "", 404, MsgNotFound, "null"},
		{"unknown version", "POST", "/api/demo.echo/v2", "", 404, MsgNotFound, "null"},
		{"offline", "GET", "/api/demo.off/v1", "", 404, MsgNotFound, "null"},
		{"draft", "GET", "/api/demo.draft/v1", "", 404, MsgNotFound, "null"},
		{"deprecated", "GET", "/api/demo.old/v1", "", 404, MsgNotFound, "null"},
		{"wrong method", "DELETE", "/api/demo.echo/v1", "", 405, MsgMethod, "null"},
		{"path under route", "POST", "/api/demo.echo/v1/extra", "", 404, MsgNotFound, ""},
		{"trailing slash", "POST", "/api/demo.echo/v1/", "", 404, MsgNotFound, ""},
		{"no version", "POST", "/api/demo.echo", "", 404, MsgNotFound, ""},
		{"base only", "POST", "/api", "", 404, MsgNotFound, ""},
		{"outside base", "GET", "/other/demo.echo/v1", "", 404, MsgNotFound, ""},
		{"prefix of base", "GET", "/apix/demo.echo/v1", "", 404, MsgNotFound, ""},
		{"traversal", "GET", "/api/../api/demo.echo/v1", "", 404, MsgNotFound, ""},
		{"encoded slash", "GET", "/api/demo.echo%2Fv1/v1", "", 404, MsgNotFound, ""},
		{"upper case code", "GET", "/api/DEMO.ECHO/v1", "", 404, MsgNotFound, ""},
		{"bad version", "GET", "/api/demo.echo/1", "", 404, MsgNotFound, ""},
		{"too large", "POST", "/api/demo.echo/v1", strings.Repeat("x", 2000), 413, MsgTooLarge, "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, env := do(t, h, tt.method, tt.target, tt.body, nil)
			if w.Code != tt.status || env.Message != tt.message {
				t.Fatalf("got %d %q, want %d %q; body %s", w.Code, env.Message, tt.status, tt.message, w.Body)
			}
			if tt.response != "" && string(env.Response) != tt.response {
				t.Errorf("response = %s, want %s", env.Response, tt.response)
			}
			if tt.status == 405 && w.Header().Get("Allow") != "POST, GET" {
				t.Errorf("Allow = %q", w.Header().Get("Allow"))
			}
		})
	}
}

func TestTraceID(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("demo.trace", "online", "[GET]", scriptStep(`function main(c) { return c.traceId }`)),
	})
	h, _ := newPortal(t, dir)
	tests := []struct {
		hdr  map[string]string
		want string // "" = generated 32 hex
	}{
		{map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{map[string]string{"X-Trace-Id": "order-42.retry_1"}, "order-42.retry_1"},
		{map[string]string{"X-Trace-Id": "bad id with spaces"}, ""},
		{map[string]string{"Traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		_, env := do(t, h, "GET", "/api/demo.trace/v1", "", tt.hdr)
		if tt.want != "" && env.TraceID != tt.want {
			t.Errorf("%v: trace id %q, want %q", tt.hdr, env.TraceID, tt.want)
		}
		if tt.want == "" && (len(env.TraceID) != 32 || !isHex(env.TraceID)) {
			t.Errorf("%v: generated trace id %q is not 32 hex digits", tt.hdr, env.TraceID)
		}
		if string(env.Response) != `"`+env.TraceID+`"` {
			t.Errorf("the flow saw trace id %s, the envelope says %q", env.Response, env.TraceID)
		}
	}
}

func TestIPFilterAndForwardedFor(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml": `apiPortal:
  basePath: /api
  allowedIps: [192.0.2.0/24, "2001:db8::/32"]
  deniedIps: [192.0.2.66]
  trustedProxies: [10.0.0.0/8]
  security: {enabled: false}
`,
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("demo.ip", "online", "[GET]", scriptStep(`function main(c) { return c.request.ip }`)),
	})
	h, _ := newPortal(t, dir)
	tests := []struct {
		remote, xff string
		status      int
		ip          string
	}{
		{"192.0.2.10:1", "", 200, "192.0.2.10"},
		{"192.0.2.66:1", "", 403, ""},
		{"198.51.100.1:1", "", 403, ""},
		{"[2001:db8::5]:1", "", 200, "2001:db8::5"},
		{"[::ffff:192.0.2.11]:1", "", 200, "192.0.2.11"},
		// X-Forwarded-For only counts from a trusted proxy.
		{"10.1.2.3:1", "192.0.2.20", 200, "192.0.2.20"},
		{"10.1.2.3:1", "192.0.2.66", 403, ""},
		{"10.1.2.3:1", "192.0.2.20, 10.9.9.9", 200, "192.0.2.20"},
		{"10.1.2.3:1", "198.51.100.7, 192.0.2.21", 200, "192.0.2.21"},
		{"192.0.2.10:1", "192.0.2.66", 200, "192.0.2.10"},
		{"10.1.2.3:1", "garbage", 403, ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/api/demo.ip/v1", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var env envelope
		json.Unmarshal(w.Body.Bytes(), &env)
		if w.Code != tt.status {
			t.Errorf("%s xff=%q: status %d, want %d (%s)", tt.remote, tt.xff, w.Code, tt.status, w.Body)
			continue
		}
		if tt.status == 403 && env.Message != MsgIPDenied {
			t.Errorf("%s: message %q", tt.remote, env.Message)
		}
		if tt.ip != "" && string(env.Response) != `"`+tt.ip+`"` {
			t.Errorf("%s xff=%q: client ip %s, want %s", tt.remote, tt.xff, env.Response, tt.ip)
		}
	}
}

func TestFlowErrorsBecomeEnvelopes(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(500)
			io.WriteString(w, `{"message":"db down"}`)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		default:
			io.WriteString(w, `{"n": 12345678901234567890, "z": 1, "a": [true]}`)
		}
	}))
	defer up.Close()
	httpStep := func(path, extra string) string {
		return "  - id: call\n    type: http\n    http: {method: GET, url: '" + up.URL + path + "', timeout: 100ms}\n" + extra
	}
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/ok.yaml":    api("up.ok", "online", "[GET]", httpStep("/ok", "")),
		"apis/fail.yaml":  api("up.fail", "online", "[GET]", httpStep("/fail", "")),
		"apis/slow.yaml":  api("up.slow", "online", "[GET]", httpStep("/slow", "")),
		"apis/jq.yaml":    api("up.jq", "online", "[GET]", httpStep("/ok", "    transforms: {response: '.body.n | error(\"boom\")'}\n")),
		"apis/throw.yaml": api("js.throw", "online", "[GET]", scriptStep(`function main(c) { throw new Error("nope") }`)),
		"apis/loop.yaml":  api("js.loop", "online", "[GET]", "  - id: s\n    type: script\n    script: {timeout: 50ms, source: 'function main(c) { for(;;){} }'}\n"),
		"apis/in.yaml": "apiVersion: databus/v1\nkind: Api\ncode: in.check\nversion: v1\nstatus: online\nmethods: [POST]\npolicies: {rateLimit: p}\n" +
			"input: {type: object, required: [orderNo], properties: {orderNo: {type: string}}}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n",
	})
	h, _ := newPortal(t, dir)
	tests := []struct {
		target, method, body string
		status               int
		fragment             string
	}{
		{"/api/up.ok/v1", "GET", "", 200, MsgOK},
		{"/api/up.fail/v1", "GET", "", 502, `step "call"`},
		{"/api/up.slow/v1", "GET", "", 504, `step "call" timed out`},
		{"/api/up.jq/v1", "GET", "", 500, "transforms.response"},
		{"/api/js.throw/v1", "GET", "", 500, "nope"},
		{"/api/js.loop/v1", "GET", "", 504, "timed out"},
		{"/api/in.check/v1", "POST", `{"orderNo": 5}`, 400, "orderNo"},
		{"/api/in.check/v1", "POST", `{}`, 400, "orderNo"},
		{"/api/in.check/v1", "POST", `{not json`, 400, "not valid JSON"},
	}
	for _, tt := range tests {
		w, env := do(t, h, tt.method, tt.target, tt.body, nil)
		if w.Code != tt.status || !strings.Contains(env.Message, tt.fragment) {
			t.Errorf("%s: got %d %q, want %d containing %q", tt.target, w.Code, env.Message, tt.status, tt.fragment)
		}
	}
	// Upstream JSON passes into the envelope byte for byte: no float
	// rounding of large numbers, no key reordering.
	w, _ := do(t, h, "GET", "/api/up.ok/v1", "", nil)
	if !bytes.Contains(w.Body.Bytes(), []byte(`"response":{"n": 12345678901234567890, "z": 1, "a": [true]}`)) {
		t.Errorf("upstream JSON was re-encoded: %s", w.Body)
	}
}

func TestStreamPassesThrough(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		w.Write(payload)
	}))
	defer up.Close()
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/dl.yaml":    api("file.download", "online", "[GET]", "  - id: dl\n    type: http\n    http: {url: '"+up.URL+"', stream: true}\n"),
	})
	h, _ := newPortal(t, dir)
	r := httptest.NewRequest("GET", "/api/file.download/v1", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/csv" || !bytes.Equal(w.Body.Bytes(), payload) {
		t.Fatalf("stream: status %d, type %q, %d bytes (want %d)", w.Code, w.Header().Get("Content-Type"), w.Body.Len(), len(payload))
	}
	if w.Header().Get(TraceHeader) == "" {
		t.Error("a streamed answer carries the trace id header too")
	}
}

func TestNoSnapshot(t *testing.T) {
	h := New(func() *snapshot.Snapshot { return nil }, Options{})
	w, env := do(t, h, "GET", "/api/x/v1", "", nil)
	if w.Code != 503 || env.Message != MsgUnavailable {
		t.Fatalf("got %d %q", w.Code, env.Message)
	}
}

func TestAppendEnvelope(t *testing.T) {
	got := string(appendEnvelope(nil, 400, "bad \"x\" <y> 名字\n", []byte(`{"a":1}`), "t1"))
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if v["message"] != "bad \"x\" <y> 名字\n" || v["code"] != float64(400) || v["traceId"] != "t1" {
		t.Fatalf("round trip: %v", v)
	}
	if !strings.HasPrefix(got, `{"code":400,"message":`) || !strings.Contains(got, `"response":{"a":1},"traceId":"t1"}`) {
		t.Fatalf("field order: %s", got)
	}
}

func TestHugeHeader(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("demo.h", "online", "[GET]", scriptStep(`function main(c) { return 1 }`)),
	})
	h, _ := newPortal(t, dir)
	w, env := do(t, h, "GET", "/api/demo.h/v1", "", map[string]string{"X-Big": strings.Repeat("a", MaxHeaderBytes)})
	if w.Code != http.StatusRequestHeaderFieldsTooLarge || env.Message != MsgHeaderTooLarge {
		t.Fatalf("huge header: %d %q", w.Code, env.Message)
	}
	if w, _ := do(t, h, "GET", "/api/demo.h/v1", "", map[string]string{"X-Ok": strings.Repeat("a", 1000)}); w.Code != 200 {
		t.Fatalf("a normal header was refused: %d", w.Code)
	}
}
