package gateway

// The hooks of DESIGN.md section 6, end to end: a gateway on loopback, a
// third party's hook service on loopback (a real HTTP server) reached through
// a Resolver, signed and encrypted portal calls, the access log read back
// through the admin API and /metrics parsed.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/databus-gateway/databus/engine/registry"
)

// hookRule answers one hook: the status and the JSON answer for the body
// the hook received. A negative status blocks until the test ends.
type hookRule func(body map[string]any) (int, string)

func allow(map[string]any) (int, string) { return 200, `{"code":0,"msg":"success"}` }

func blockForever(map[string]any) (int, string) { return -1, "" }

// hookService is a third party's hook service: each hook answers what its
// rule says, and every body it received is kept.
type hookService struct {
	srv     *httptest.Server
	release chan struct{}

	mu     sync.Mutex
	rules  map[string]hookRule
	bodies map[string][][]byte
}

func newHookService(t *testing.T) *hookService {
	t.Helper()
	hs := &hookService{release: make(chan struct{}), rules: map[string]hookRule{}, bodies: map[string][][]byte{}}
	hs.srv = httptest.NewServer(http.HandlerFunc(hs.serve))
	t.Cleanup(hs.srv.Close)
	t.Cleanup(func() { close(hs.release) }) // runs before Close, which waits for blocked handlers
	return hs
}

func (hs *hookService) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/fate/hooks/")
	raw, _ := io.ReadAll(r.Body)
	hs.mu.Lock()
	rule := hs.rules[name]
	hs.bodies[name] = append(hs.bodies[name], raw)
	hs.mu.Unlock()
	if rule == nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "no such hook", http.StatusNotFound)
		return
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "body is not a JSON object: "+err.Error(), http.StatusBadRequest)
		return
	}
	status, answer := rule(body)
	if status < 0 {
		select {
		case <-hs.release:
		case <-r.Context().Done():
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

func (hs *hookService) set(name string, rule hookRule) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.rules[name] = rule
}

// received returns the bodies hook received so far, decoded.
func (hs *hookService) received(t *testing.T, name string) []map[string]any {
	t.Helper()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var out []map[string]any
	for _, raw := range hs.bodies[name] {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s received %q: %v", name, raw, err)
		}
		out = append(out, m)
	}
	return out
}

func (hs *hookService) count(name string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.bodies[name])
}

// hookRegistry is a Resolver over the services registered on the hook
// service's server, HOOKS. (The registry branch brings the real one.)
type hookRegistry struct {
	mu       sync.Mutex
	server   registry.Server
	services map[string]registry.Service
}

func newHookRegistry(t *testing.T, hs *hookService, names ...string) *hookRegistry {
	t.Helper()
	u, _ := url.Parse(hs.srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	reg := &hookRegistry{server: registry.Server{Name: "HOOKS", Host: host, Port: p, Protocol: "http"}, services: map[string]registry.Service{}}
	for _, n := range names {
		reg.register(n)
	}
	return reg
}

func (r *hookRegistry) register(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[name] = registry.Service{ServerName: "HOOKS", ServiceName: name, URI: "/fate/hooks/" + name, Method: "POST"}
}

func (r *hookRegistry) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.services, name)
}

func (r *hookRegistry) Resolve(_ context.Context, server, name string) (registry.Endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	svc, ok := r.services[name]
	if !ok || !strings.EqualFold(server, r.server.Name) {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	return registry.Endpoint{Server: r.server, Service: svc}, nil
}

// hooksRepo writes a repository with the hooks block given, one credential
// (app-a, AES) and the API h.echo, whose script answers the body.
func hooksRepo(t *testing.T, security bool, hooks string) string {
	t.Helper()
	dir := t.TempDir()
	writeRepo(t, dir, map[string]string{
		"databus.yaml":       "apiPortal:\n  security: {enabled: " + strconv.FormatBool(security) + "}\nhooks:\n" + hooks,
		"keys/a.key":         "0123456789abcdef",
		"credentials/a.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-a\nencryptionKey: {secretRef: 'file:keys/a.key'}\n",
		"apis/echo.yaml":     strings.Replace(echoAPI, "code: t.echo", "code: h.echo", 1),
	})
	return dir
}

// hookRecord is an access-log record with what the hook tests read.
type hookRecord struct {
	AppID        string `json:"appId"`
	HTTPStatus   int    `json:"httpStatus"`
	ErrorCode    string `json:"errorCode"`
	ErrorMessage string `json:"errorMessage"`
	StepResults  []struct {
		ID       string         `json:"id"`
		Type     string         `json:"type"`
		Status   int            `json:"status"`
		Error    string         `json:"error"`
		Request  map[string]any `json:"request"`
		Response map[string]any `json:"response"`
	} `json:"stepResults"`
}

func (ts *testServer) hookRecordOf(t *testing.T, trace string) hookRecord {
	t.Helper()
	ts.accessRecordOf(t, trace) // waits until it is written
	var page struct {
		List []hookRecord `json:"list"`
	}
	ts.adminData(t, "/databus/gateway/access-log/page?traceId="+url.QueryEscape(trace), &page)
	if len(page.List) != 1 {
		t.Fatalf("trace %s: %d records", trace, len(page.List))
	}
	return page.List[0]
}

// hookSteps lists the "id:status:error?" of a record's hook entries.
func (r hookRecord) hookSteps() []string {
	var out []string
	for _, s := range r.StepResults {
		if s.Type != "hook" {
			continue
		}
		e := s.ID + ":" + strconv.Itoa(s.Status)
		if s.Error != "" {
			e += ":error"
		}
		out = append(out, e)
	}
	return out
}

// signedCall makes a signed, encrypted POST of body to h.echo with extra
// headers and the trace id, and returns the decrypted envelope.
func signedCall(t *testing.T, ts *testServer, trace, body string, header http.Header) envelope {
	t.Helper()
	cl := signedClient(ts)
	req, err := cl.Prepare(http.MethodPost, "h.echo", url.Values{"q": {"1"}}, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Trace-Id", trace)
	resp, err := cl.Send(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	e := resp.Envelope
	if e.Code != resp.StatusCode || e.TraceID != trace {
		t.Fatalf("%s: HTTP %d, envelope %+v", trace, resp.StatusCode, e)
	}
	return envelope{Code: e.Code, Message: e.Message, Response: e.Response, TraceID: e.TraceID}
}

// plainCall sends an unsigned request (security off).
func plainCall(t *testing.T, ts *testServer, method, path, trace, body string, header http.Header) envelope {
	t.Helper()
	req, err := http.NewRequest(method, ts.portalURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("X-Trace-Id", trace)
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e envelope
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != resp.StatusCode || e.TraceID != trace {
		t.Fatalf("%s: HTTP %d, envelope %+v (%v)", trace, resp.StatusCode, e, err)
	}
	return e
}

// TestHooksThroughThePortal: client authentication, site authentication and
// permission on, with the security chain on — each allowing and refusing,
// the bodies they receive, the access log and the metrics.
func TestHooksThroughThePortal(t *testing.T) {
	hs := newHookService(t)
	hs.set("client_authentication", func(b map[string]any) (int, string) {
		if h, _ := b["headers"].(map[string]any); h["X-Client-Token"] == "good" {
			return 200, `{"code":0,"msg":"success"}`
		}
		return 200, `{"code":401,"msg":"unknown client token"}`
	})
	hs.set("site_authentication", func(b map[string]any) (int, string) {
		if b["site_signature"] == "sig-"+b["src_party_id"].(string) {
			return 200, `{"code":0}`
		}
		return 200, `{"code":100,"retmsg":"bad site signature"}`
	})
	hs.set("permission", func(b map[string]any) (int, string) {
		if b["src_party_id"] == "10002" {
			return 200, `{"code":403,"message":"party 10002 may not call h.echo:v1"}`
		}
		return 200, `{"code":0}`
	})
	reg := newHookRegistry(t, hs, "client_authentication", "site_authentication", "permission")
	dir := hooksRepo(t, true, `  server: hooks
  partyId: "9999"
  timeout: 5s
  clientAuthentication: true
  siteAuthentication: true
  permission: true
`)
	ts := startServer(t, Options{Dir: dir, NoWatch: true, Services: reg})

	site := func(party string) http.Header {
		return http.Header{"X-Client-Token": {"good"}, "X-Multi": {"a", "b"}, "Src-Party-Id": {party}, "Site-Signature": {"sig-" + party}}
	}
	body := `{"orderNo":"A-1","qty":3}`

	// Allowed: all three hooks ran, in order, and the flow answered.
	env := signedCall(t, ts, "hk-ok", body, site("10000"))
	if env.Code != 200 || !strings.Contains(string(env.Response), `"orderNo":"A-1"`) {
		t.Fatalf("allowed call: %+v %s", env, env.Response)
	}
	for _, h := range []string{"client_authentication", "site_authentication", "permission"} {
		if n := hs.count(h); n != 1 {
			t.Errorf("%s called %d times; want 1", h, n)
		}
	}
	rec := ts.hookRecordOf(t, "hk-ok")
	if got := rec.hookSteps(); !reflect.DeepEqual(got, []string{"client_authentication:200", "site_authentication:200", "permission:200"}) {
		t.Errorf("hook results in the access log: %v", got)
	}
	for _, s := range rec.StepResults {
		if s.Type == "hook" && (s.Request["url"] != hs.srv.URL+"/fate/hooks/"+s.ID || s.Response["outcome"] != "ok") {
			t.Errorf("hook result %+v", s)
		}
		if s.ID == "client_authentication" && s.Request["body"] != nil {
			t.Errorf("client_authentication's body (the caller's headers) must not be logged: %v", s.Request)
		}
	}

	// client_authentication received {full_path, headers, form, json}: the
	// headers as an object of strings, the body decrypted.
	ca := hs.received(t, "client_authentication")[0]
	if keys := sortedKeysOf(ca); !reflect.DeepEqual(keys, []string{"form", "full_path", "headers", "json"}) {
		t.Errorf("client_authentication keys %v", keys)
	}
	if ca["full_path"] != basePath+"/h.echo/v1?q=1" {
		t.Errorf("full_path %v", ca["full_path"])
	}
	headers := ca["headers"].(map[string]any)
	for k, v := range headers {
		if _, ok := v.(string); !ok {
			t.Errorf("header %s is %T, not a string", k, v)
		}
	}
	if headers["X-Multi"] != "a, b" || headers["Zt-App-Id"] != "app-a" || headers["Host"] == nil || headers["Src-Party-Id"] != "10000" {
		t.Errorf("headers %v", headers)
	}
	if want := map[string]any{"orderNo": "A-1", "qty": 3.0}; !reflect.DeepEqual(ca["json"], want) || !reflect.DeepEqual(ca["form"], map[string]any{}) {
		t.Errorf("json %v (want the decrypted body %v), form %v", ca["json"], want, ca["form"])
	}
	// site_authentication received {src_party_id, site_signature, body}.
	sa := hs.received(t, "site_authentication")[0]
	if want := map[string]any{"src_party_id": "10000", "site_signature": "sig-10000", "body": map[string]any{"orderNo": "A-1", "qty": 3.0}}; !reflect.DeepEqual(sa, want) {
		t.Errorf("site_authentication body %v; want %v", sa, want)
	}
	// permission: the caller's verified party is the guest, this site the
	// host, the API the component.
	pm := hs.received(t, "permission")[0]
	want := map[string]any{
		"src_role": "guest", "src_party_id": "10000", "role": "host", "party_id": "9999",
		"initiator":      map[string]any{"role": "guest", "party_id": "10000"},
		"roles":          map[string]any{"guest": []any{"10000"}, "host": []any{"9999"}},
		"component_list": []any{"h.echo:v1"}, "dataset_list": []any{},
		"run_time_conf": map[string]any{"app_id": "app-a", "tenant_id": "", "method": "POST", "trace_id": "hk-ok"},
		"dsl":           map[string]any{}, "component_parameters": map[string]any{},
	}
	if !reflect.DeepEqual(pm, want) {
		t.Errorf("permission body\n got %v\nwant %v", pm, want)
	}

	// A request with neither Src-Party-Id nor Site-Signature is a caller of
	// this site, not a site: site_authentication is not called (the access
	// log says so), client authentication and permission still are, and
	// permission sees the caller's appId as its party.
	before := hs.count("site_authentication")
	env = signedCall(t, ts, "hk-local", body, http.Header{"X-Client-Token": {"good"}})
	if env.Code != 200 || !strings.Contains(string(env.Response), `"orderNo":"A-1"`) {
		t.Fatalf("a caller of this site: %+v %s", env, env.Response)
	}
	if n := hs.count("site_authentication"); n != before {
		t.Errorf("site_authentication called for a request without the site headers")
	}
	rec = ts.hookRecordOf(t, "hk-local")
	if got := rec.hookSteps(); !reflect.DeepEqual(got, []string{"client_authentication:200", "site_authentication:0", "permission:200"}) {
		t.Errorf("a caller of this site: hook results %v", got)
	}
	for _, s := range rec.StepResults {
		if s.ID == "site_authentication" && (s.Response["outcome"] != "skipped" || !strings.Contains(fmt.Sprint(s.Response["message"]), "a caller of this site")) {
			t.Errorf("site_authentication entry of a caller of this site: %+v", s)
		}
	}
	if pm := hs.received(t, "permission"); len(pm) != 2 || pm[1]["src_party_id"] != "app-a" || pm[1]["party_id"] != "9999" {
		t.Errorf("permission for a caller of this site: %v", pm)
	}
	// The same request, refused by permission: the skip lets nothing
	// through that the other hooks refuse.
	hs.set("permission", func(b map[string]any) (int, string) {
		if b["src_party_id"] == "10002" {
			return 200, `{"code":403,"message":"party 10002 may not call h.echo:v1"}`
		}
		if b["src_party_id"] == "app-a" && b["run_time_conf"].(map[string]any)["trace_id"] == "hk-local-denied" {
			return 200, `{"code":403,"message":"not for you"}`
		}
		return 200, `{"code":0}`
	})
	if env := signedCall(t, ts, "hk-local-denied", body, http.Header{"X-Client-Token": {"good"}}); env.Code != 403 || env.Message != "not for you" {
		t.Errorf("a caller of this site that permission refuses: %+v", env)
	}

	refusals := []struct {
		trace  string
		header http.Header
		status int
		msg    string
		code   string
		steps  []string
	}{
		{"hk-client", http.Header{"X-Client-Token": {"bad"}, "Src-Party-Id": {"10000"}, "Site-Signature": {"sig-10000"}},
			401, "unknown client token", "client_authentication", []string{"client_authentication:200:error"}},
		{"hk-nosig", http.Header{"X-Client-Token": {"good"}, "Src-Party-Id": {"10000"}},
			401, "站点认证失败：缺少 Site-Signature 请求头", "site_authentication", []string{"client_authentication:200", "site_authentication:0:error"}},
		{"hk-onlysig", http.Header{"X-Client-Token": {"good"}, "Site-Signature": {"sig-10000"}},
			401, "站点认证失败：缺少 Src-Party-Id 请求头", "site_authentication", []string{"client_authentication:200", "site_authentication:0:error"}},
		{"hk-twoparties", http.Header{"X-Client-Token": {"good"}, "Src-Party-Id": {"10000", "10001"}, "Site-Signature": {"sig-10000"}},
			401, "站点认证失败：缺少 Src-Party-Id 请求头", "site_authentication", []string{"client_authentication:200", "site_authentication:0:error"}},
		{"hk-site", http.Header{"X-Client-Token": {"good"}, "Src-Party-Id": {"10000"}, "Site-Signature": {"forged"}},
			401, "bad site signature", "site_authentication", []string{"client_authentication:200", "site_authentication:200:error"}},
		{"hk-perm", site("10002"),
			403, "party 10002 may not call h.echo:v1", "permission", []string{"client_authentication:200", "site_authentication:200", "permission:200:error"}},
	}
	for _, r := range refusals {
		env := signedCall(t, ts, r.trace, body, r.header)
		if env.Code != r.status || env.Message != r.msg {
			t.Errorf("%s: %d %q; want %d %q", r.trace, env.Code, env.Message, r.status, r.msg)
		}
		rec := ts.hookRecordOf(t, r.trace)
		if rec.HTTPStatus != r.status || rec.ErrorCode != r.code || rec.ErrorMessage != r.msg || rec.AppID != "app-a" {
			t.Errorf("%s: record %+v", r.trace, rec)
		}
		if got := rec.hookSteps(); !reflect.DeepEqual(got, r.steps) {
			t.Errorf("%s: hook results %v; want %v", r.trace, got, r.steps)
		}
	}
	// A refusal stops the chain: the flow did not run.
	if rec := ts.hookRecordOf(t, "hk-perm"); len(rec.StepResults) != 3 {
		t.Errorf("the flow ran after a refusal: %+v", rec.StepResults)
	}

	mf := ts.metricFamilies(t)
	for _, c := range []struct {
		hook, outcome string
		n             float64
	}{
		{"client_authentication", "ok", 8}, {"client_authentication", "refused", 1},
		{"site_authentication", "ok", 2}, {"site_authentication", "refused", 1},
		{"permission", "ok", 2}, {"permission", "refused", 2},
	} {
		if got := metricValue(mf, "databus_hook_calls_total", map[string]string{"hook": c.hook, "outcome": c.outcome}); got != c.n {
			t.Errorf("databus_hook_calls_total{hook=%s,outcome=%s} = %v; want %v", c.hook, c.outcome, got, c.n)
		}
	}
	if got := metricValue(mf, "databus_hook_duration_seconds", map[string]string{"hook": "client_authentication"}); got != 9 {
		t.Errorf("databus_hook_duration_seconds{hook=client_authentication} count = %v; want 9", got)
	}
	for reason, n := range map[string]float64{"client_authentication": 1, "site_authentication": 4, "permission": 2} {
		if got := metricValue(mf, "databus_portal_refusals_total", map[string]string{"reason": reason}); got != n {
			t.Errorf("databus_portal_refusals_total{reason=%s} = %v; want %v", reason, got, n)
		}
	}
}

func sortedKeysOf(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestHooksFailClosed: a hook that cannot answer in the protocol refuses
// the request — 503 naming the service and why — and a refusal without a
// message answers the default one.
func TestHooksFailClosed(t *testing.T) {
	hs := newHookService(t)
	reg := newHookRegistry(t, hs, "client_authentication")
	dir := hooksRepo(t, false, "  server: hooks\n  clientAuthentication: true\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true, Services: reg})

	cases := []struct {
		trace    string
		rule     hookRule
		register bool
		status   int
		msg      string
		outcome  string
	}{
		{"fc-500", func(map[string]any) (int, string) { return 500, `{"code":0,"message":"database down"}` }, true,
			503, "客户端认证服务暂不可用（answered HTTP 500）", "error"},
		{"fc-html", func(map[string]any) (int, string) { return 200, `<html>OK</html>` }, true,
			503, "客户端认证服务暂不可用（the answer is not a JSON object）", "error"},
		{"fc-nocode", func(map[string]any) (int, string) { return 200, `{"msg":"fine"}` }, true,
			503, "客户端认证服务暂不可用（the answer has no numeric code）", "error"},
		{"fc-code", func(map[string]any) (int, string) { return 200, `{"code":1}` }, true,
			401, "客户端认证失败", "refused"},
		{"fc-missing", allow, false,
			503, "客户端认证服务暂不可用（service client_authentication is not registered on server HOOKS）", "not_registered"},
		{"fc-back", allow, true, 200, "OK", "ok"},
	}
	for _, c := range cases {
		hs.set("client_authentication", c.rule)
		if c.register {
			reg.register("client_authentication")
		} else {
			reg.remove("client_authentication")
		}
		env := plainCall(t, ts, "POST", basePath+"/h.echo/v1", c.trace, `{"a":1}`, http.Header{"Zt-App-Id": {"app-a"}})
		if env.Code != c.status || env.Message != c.msg {
			t.Errorf("%s: %d %q; want %d %q", c.trace, env.Code, env.Message, c.status, c.msg)
		}
		rec := ts.hookRecordOf(t, c.trace)
		if len(rec.StepResults) == 0 || rec.StepResults[0].ID != "client_authentication" || rec.StepResults[0].Response["outcome"] != c.outcome ||
			(c.status != 200) != (rec.StepResults[0].Error != "") {
			t.Errorf("%s: hook result %+v", c.trace, rec.StepResults)
		}
		if c.status == 503 && rec.ErrorCode != "hook_unavailable" {
			t.Errorf("%s: errorCode %q", c.trace, rec.ErrorCode)
		}
	}
	// The hook's own message of a failed answer is in the access log.
	if rec := ts.hookRecordOf(t, "fc-500"); !strings.Contains(rec.StepResults[0].Error, "database down") || rec.StepResults[0].Status != 500 {
		t.Errorf("fc-500: %+v", rec.StepResults[0])
	}
	mf := ts.metricFamilies(t)
	for outcome, n := range map[string]float64{"error": 3, "refused": 1, "not_registered": 1, "ok": 1} {
		if got := metricValue(mf, "databus_hook_calls_total", map[string]string{"hook": "client_authentication", "outcome": outcome}); got != n {
			t.Errorf("databus_hook_calls_total{outcome=%s} = %v; want %v", outcome, got, n)
		}
	}
	if got := metricValue(mf, "databus_portal_refusals_total", map[string]string{"reason": "hook_unavailable"}); got != 4 {
		t.Errorf("databus_portal_refusals_total{reason=hook_unavailable} = %v; want 4", got)
	}
}

// TestHookTimeout: a hook that never answers refuses the request once
// hooks.timeout passes. The hook blocks until the test ends; the test
// asserts the refusal, not how long it took.
func TestHookTimeout(t *testing.T) {
	hs := newHookService(t)
	hs.set("permission", blockForever)
	reg := newHookRegistry(t, hs, "permission")
	dir := hooksRepo(t, false, "  server: hooks\n  partyId: \"9999\"\n  timeout: 100ms\n  permission: true\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true, Services: reg})

	env := plainCall(t, ts, "GET", basePath+"/h.echo/v1", "to-1", "", nil)
	if env.Code != 503 || env.Message != "鉴权服务暂不可用（timed out after 100ms）" {
		t.Fatalf("%d %q", env.Code, env.Message)
	}
	rec := ts.hookRecordOf(t, "to-1")
	if got := rec.hookSteps(); !reflect.DeepEqual(got, []string{"permission:0:error"}) || rec.StepResults[0].Response["outcome"] != "timeout" {
		t.Errorf("hook results %+v", rec.StepResults)
	}
	// With security off the caller is anonymous: src_party_id is "".
	if pm := hs.received(t, "permission"); len(pm) != 1 || pm[0]["src_party_id"] != "" || pm[0]["src_role"] != "guest" {
		t.Errorf("permission body %v", pm)
	}
	mf := ts.metricFamilies(t)
	if got := metricValue(mf, "databus_hook_calls_total", map[string]string{"hook": "permission", "outcome": "timeout"}); got != 1 {
		t.Errorf("timeouts counted %v", got)
	}
}

// TestHooksWithoutRegistry: hooks enabled, but the gateway has no service
// registry: every request is refused, naming it.
// TestHooksNotRegistered: hooks are on but the gateway's registry holds no
// hook service: every call is refused (fail closed) and says why.
func TestHooksNotRegistered(t *testing.T) {
	dir := hooksRepo(t, false, "  server: hooks\n  clientAuthentication: true\n  permission: true\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	env := plainCall(t, ts, "GET", basePath+"/h.echo/v1", "nr-1", "", nil)
	if env.Code != 503 || env.Message != "客户端认证服务暂不可用（service client_authentication is not registered on server HOOKS）" {
		t.Fatalf("%d %q", env.Code, env.Message)
	}
	rec := ts.hookRecordOf(t, "nr-1")
	if !reflect.DeepEqual(rec.hookSteps(), []string{"client_authentication:0:error"}) || rec.StepResults[0].Response["outcome"] != "not_registered" {
		t.Errorf("hook results %+v", rec.StepResults)
	}
}

// TestHooksThroughTheRegistry registers the hook service with the FATE
// calls on the gateway's own registry: client authentication and
// permission then allow and refuse, and re-registering the hook server on
// another port moves the callouts with it.
func TestHooksThroughTheRegistry(t *testing.T) {
	hs := newHookService(t)
	hs.set("client_authentication", func(b map[string]any) (int, string) {
		if h, _ := b["headers"].(map[string]any); h["X-Client-Token"] == "good" {
			return 200, `{"code":0}`
		}
		return 200, `{"code":401,"msg":"unknown client token"}`
	})
	hs.set("permission", allow)
	dir := hooksRepo(t, false, "  server: hooks\n  partyId: \"9999\"\n  clientAuthentication: true\n  permission: true\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	u, _ := url.Parse(hs.srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	if _, out := ts.fate(t, "", "/v1/server/hooks/register", `{"host":"`+host+`","port":`+port+`}`); out["retcode"] != 0.0 {
		t.Fatalf("register the hook server: %v", out)
	}
	for _, name := range []string{"client_authentication", "permission"} {
		if _, out := ts.fate(t, "", "/v1/service/registry", `{"server_name":"hooks","service_name":"`+name+`","uri":"/fate/hooks/`+name+`"}`); out["retcode"] != 0.0 {
			t.Fatalf("register %s: %v", name, out)
		}
	}
	if env := plainCall(t, ts, "POST", basePath+"/h.echo/v1", "reg-1", `{"a":1}`, http.Header{"X-Client-Token": {"good"}}); env.Code != 200 {
		t.Fatalf("allowed call: %d %q", env.Code, env.Message)
	}
	if env := plainCall(t, ts, "POST", basePath+"/h.echo/v1", "reg-2", `{"a":1}`, http.Header{"X-Client-Token": {"bad"}}); env.Code != 401 || !strings.Contains(env.Message, "unknown client token") {
		t.Fatalf("refused call: %d %q", env.Code, env.Message)
	}
	if hs.count("client_authentication") != 2 || hs.count("permission") != 1 {
		t.Errorf("hook calls: client %d permission %d", hs.count("client_authentication"), hs.count("permission"))
	}
	// The hook server moves: a second hook service on another port.
	hs2 := newHookService(t)
	hs2.set("client_authentication", func(map[string]any) (int, string) { return 200, `{"code":401,"msg":"refused by the new server"}` })
	u2, _ := url.Parse(hs2.srv.URL)
	_, port2, _ := net.SplitHostPort(u2.Host)
	ts.fate(t, "", "/v1/server/HOOKS/register", `{"host":"127.0.0.1","port":`+port2+`}`)
	if env := plainCall(t, ts, "POST", basePath+"/h.echo/v1", "reg-3", `{"a":1}`, http.Header{"X-Client-Token": {"good"}}); env.Code != 401 || !strings.Contains(env.Message, "refused by the new server") {
		t.Fatalf("after the move: %d %q", env.Code, env.Message)
	}
}

// siteAPI calls upstream with site: 10000, passing the body through.
func siteAPI(upstream string) string {
	return `apiVersion: databus/v1
kind: Api
code: h.remote
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: remote
    type: http
    http:
      method: POST
      url: '` + upstream + `/remote'
      timeout: 10s
      site: "10000"
  - {id: end, type: end}
`
}

// TestSignatureOnSiteStep: an http step with site: is signed by the
// signature hook; the upstream receives Site-Signature and Src-Party-Id.
// Without a signature the request does not go out.
func TestSignatureOnSiteStep(t *testing.T) {
	key := []byte("shared-site-key")
	hmacOf := func(b []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil))
	}
	hs := newHookService(t)
	hs.set("signature", func(b map[string]any) (int, string) {
		body, _ := json.Marshal(b["body"])
		return 200, `{"code":0,"site_signature":"` + hmacOf(body) + `"}`
	})
	reg := newHookRegistry(t, hs, "signature")

	var mu sync.Mutex
	var got []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(upstream.Close)
	upstreamCalls := func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return append([]http.Header(nil), got...)
	}

	dir := hooksRepo(t, false, "  server: hooks\n  partyId: \"9999\"\n  timeout: 5s\n")
	writeRepo(t, dir, map[string]string{"apis/remote.yaml": siteAPI(upstream.URL)})
	ts := startServer(t, Options{Dir: dir, NoWatch: true, Services: reg})

	body := `{"orderNo":"A-1","qty":3}`
	env := plainCall(t, ts, "POST", basePath+"/h.remote/v1", "sg-1", body, http.Header{"Content-Type": {"application/json"}})
	if env.Code != 200 || string(env.Response) != `{"ok":true}` {
		t.Fatalf("%+v", env)
	}
	calls := upstreamCalls()
	if len(calls) != 1 {
		t.Fatalf("upstream called %d times", len(calls))
	}
	canonical, _ := json.Marshal(map[string]any{"orderNo": "A-1", "qty": 3})
	if calls[0].Get("Site-Signature") != hmacOf(canonical) || calls[0].Get("Src-Party-Id") != "9999" {
		t.Errorf("upstream headers: Site-Signature %q (want %q), Src-Party-Id %q", calls[0].Get("Site-Signature"), hmacOf(canonical), calls[0].Get("Src-Party-Id"))
	}
	if sg := hs.received(t, "signature"); len(sg) != 1 || !reflect.DeepEqual(sg[0], map[string]any{"party_id": "10000", "body": map[string]any{"orderNo": "A-1", "qty": 3.0}}) {
		t.Errorf("signature body %v", sg)
	}
	// The callout is in the step's result.
	rec := ts.hookRecordOf(t, "sg-1")
	var remote map[string]any
	for _, s := range rec.StepResults {
		if s.ID == "remote" {
			remote = s.Request
		}
	}
	sig, _ := remote["signature"].(map[string]any)
	if sig["hook"] != "signature" || sig["outcome"] != "ok" || sig["status"] != 200.0 {
		t.Errorf("step remote's request record %v", remote)
	}

	// FATE Flow's own signature hook answers data.
	hs.set("signature", func(map[string]any) (int, string) { return 200, `{"code":0,"data":"fate-style"}` })
	plainCall(t, ts, "POST", basePath+"/h.remote/v1", "sg-2", body, nil)
	if calls := upstreamCalls(); len(calls) != 2 || calls[1].Get("Site-Signature") != "fate-style" {
		t.Errorf("data as the signature: %v", calls)
	}

	// Refused, or failing: no signature, no request.
	hs.set("signature", func(map[string]any) (int, string) { return 200, `{"code":1,"msg":"unknown party 10000"}` })
	env = plainCall(t, ts, "POST", basePath+"/h.remote/v1", "sg-3", body, nil)
	if env.Code != 502 || env.Message != `step "remote": signature hook for site 10000: refused: unknown party 10000` {
		t.Errorf("refused signature: %d %q", env.Code, env.Message)
	}
	hs.set("signature", func(map[string]any) (int, string) { return 500, `oops` })
	env = plainCall(t, ts, "POST", basePath+"/h.remote/v1", "sg-4", body, nil)
	if env.Code != 502 || env.Message != `step "remote": signature hook for site 10000: unavailable: answered HTTP 500` {
		t.Errorf("failing signature hook: %d %q", env.Code, env.Message)
	}
	if n := len(upstreamCalls()); n != 2 {
		t.Errorf("upstream called %d times; an unsigned request went out", n)
	}
	rec = ts.hookRecordOf(t, "sg-3")
	for _, s := range rec.StepResults {
		if s.ID == "remote" {
			sig, _ := s.Request["signature"].(map[string]any)
			if sig["outcome"] != "refused" || sig["message"] != "unknown party 10000" || !strings.Contains(s.Error, "refused") {
				t.Errorf("refused step record %+v", s)
			}
		}
	}
	mf := ts.metricFamilies(t)
	for outcome, n := range map[string]float64{"ok": 2, "refused": 1, "error": 1} {
		if got := metricValue(mf, "databus_hook_calls_total", map[string]string{"hook": "signature", "outcome": outcome}); got != n {
			t.Errorf("databus_hook_calls_total{hook=signature,outcome=%s} = %v; want %v", outcome, got, n)
		}
	}
}
