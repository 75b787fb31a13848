package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/registry"
)

// services is a Resolver over a map: service name → the registered entry.
// The servers behind it are real loopback servers.
type services map[string]registry.Endpoint

func (s services) Resolve(_ context.Context, server, name string) (registry.Endpoint, error) {
	ep, ok := s[name]
	if !ok || !strings.EqualFold(server, ep.Server.Name) {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	return ep, nil
}

// register adds name at srv's address, uri /hooks/<name>.
func (s services) register(t *testing.T, srv *httptest.Server, name string) {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	s[name] = registry.Endpoint{
		Server:  registry.Server{Name: "HOOKS", Host: host, Port: p, Protocol: "http"},
		Service: registry.Service{ServerName: "HOOKS", ServiceName: name, URI: "/hooks/" + name, Method: "POST"},
	}
}

// hookServer answers every hook with answer(name, body) and keeps what it
// received.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	received []received
}

type received struct {
	hook   string
	method string
	query  url.Values
	header http.Header
	body   []byte
}

func newHookServer(t *testing.T, answer func(hook string, body []byte) (int, string)) *hookServer {
	t.Helper()
	hs := &hookServer{}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hook := strings.TrimPrefix(r.URL.Path, "/hooks/")
		hs.mu.Lock()
		hs.received = append(hs.received, received{hook, r.Method, r.URL.Query(), r.Header.Clone(), body})
		hs.mu.Unlock()
		status, out := answer(hook, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) last(t *testing.T) received {
	t.Helper()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if len(hs.received) == 0 {
		t.Fatal("the hook server received nothing")
	}
	return hs.received[len(hs.received)-1]
}

// family gathers the metric family name from m's registry.
func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mfs {
		if f.GetName() == name {
			return f
		}
	}
	return &dto.MetricFamily{}
}

// count is databus_hook_calls_total{hook, outcome}.
func count(t *testing.T, m *metrics.Metrics, hook, outcome string) float64 {
	t.Helper()
next:
	for _, s := range family(t, m, "databus_hook_calls_total").GetMetric() {
		for _, l := range s.GetLabel() {
			if want := map[string]string{"hook": hook, "outcome": outcome}[l.GetName()]; want != l.GetValue() {
				continue next
			}
		}
		return s.GetCounter().GetValue()
	}
	return 0
}

func settings(timeout time.Duration) config.HookSettings {
	return config.HookSettings{Server: "hooks", PartyID: "9999", Timeout: config.Duration(timeout)}
}

// TestCallOutcomes: only HTTP 200 with a JSON code 0 succeeds; everything
// else fails closed with an outcome and a reason.
func TestCallOutcomes(t *testing.T) {
	answers := map[string]struct {
		status int
		body   string
	}{
		"ok":          {200, `{"code":0,"msg":"fine"}`},
		"refused":     {200, `{"code":403,"message":"party 7 may not"}`},
		"retmsg":      {200, `{"code":1,"retmsg":"no such app"}`},
		"msg":         {200, `{"code":100,"msg":"bad token"}`},
		"bare":        {200, `{"code":2}`},
		"http500":     {500, `{"code":0,"message":"db down"}`},
		"http201":     {201, `{"code":0}`},
		"notjson":     {200, `<html>ok</html>`},
		"nocode":      {200, `{"message":"hello"}`},
		"stringcode":  {200, `{"code":"0"}`},
		"array":       {200, `[{"code":0}]`},
		"trailing":    {200, `{"code":0} {"code":0}`},
		"floatzero":   {200, `{"code":0.0}`},
		"exponent":    {200, `{"code":0e1}`},
		"one":         {200, `{"code":1e0}`},
		"nullcode":    {200, `{"code":null}`},
		"emptyanswer": {200, ``},
	}
	srv := newHookServer(t, func(hook string, _ []byte) (int, string) {
		a := answers[hook]
		return a.status, a.body
	})
	svc := services{}
	for name := range answers {
		svc.register(t, srv.Server, name)
	}
	m := metrics.New()
	c := New(Options{Services: svc, Settings: settings(5 * time.Second), Metrics: m})
	cases := []struct {
		hook, outcome, reason, message string
		status                         int
	}{
		{"ok", OutcomeOK, "", "fine", 200},
		{"refused", OutcomeRefused, "party 7 may not", "party 7 may not", 200},
		{"retmsg", OutcomeRefused, "no such app", "no such app", 200},
		{"msg", OutcomeRefused, "bad token", "bad token", 200},
		{"bare", OutcomeRefused, "code 2", "", 200},
		{"http500", OutcomeError, "answered HTTP 500", "db down", 500},
		{"http201", OutcomeError, "answered HTTP 201", "", 201},
		{"notjson", OutcomeError, "the answer is not a JSON object", "", 200},
		{"nocode", OutcomeError, "the answer has no numeric code", "hello", 200},
		{"stringcode", OutcomeError, "the answer has no numeric code", "", 200},
		{"array", OutcomeError, "the answer is not a JSON object", "", 200},
		{"trailing", OutcomeError, "the answer is not a JSON object", "", 200},
		{"floatzero", OutcomeOK, "", "", 200},
		{"exponent", OutcomeOK, "", "", 200},
		{"one", OutcomeRefused, "code 1e0", "", 200},
		{"nullcode", OutcomeError, "the answer has no numeric code", "", 200},
		{"emptyanswer", OutcomeError, "the answer is not a JSON object", "", 200},
		{"missing", OutcomeNotRegistered, `service missing is not registered on server HOOKS`, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.hook, func(t *testing.T) {
			res := c.Call(context.Background(), tc.hook, "trace-1", map[string]string{"a": "b"})
			if res.Outcome != tc.outcome || res.Reason != tc.reason || res.Message != tc.message || res.Status != tc.status {
				t.Fatalf("outcome %q reason %q message %q status %d; want %q %q %q %d (err %v)",
					res.Outcome, res.Reason, res.Message, res.Status, tc.outcome, tc.reason, tc.message, tc.status, res.Err)
			}
			if res.OK() != (tc.outcome == OutcomeOK) || res.Refused() != (tc.outcome == OutcomeRefused) {
				t.Errorf("OK %v Refused %v for %s", res.OK(), res.Refused(), tc.outcome)
			}
			switch tc.outcome {
			case OutcomeOK:
				if res.Short() != nil {
					t.Errorf("Short() = %v on success", res.Short())
				}
			case OutcomeRefused:
				if !errors.Is(res.Err, ErrRefused) || !errors.Is(res.Short(), ErrRefused) || res.Short().Error() != "refused: "+tc.reason {
					t.Errorf("Err %v, Short %v", res.Err, res.Short())
				}
			default:
				if !errors.Is(res.Err, ErrUnavailable) || !errors.Is(res.Short(), ErrUnavailable) || errors.Is(res.Short(), context.DeadlineExceeded) {
					t.Errorf("Err %v, Short %v", res.Err, res.Short())
				}
			}
			if got := count(t, m, tc.hook, tc.outcome); got != 1 {
				t.Errorf("databus_hook_calls_total{hook=%q,outcome=%q} = %v; want 1", tc.hook, tc.outcome, got)
			}
		})
	}
	if n := len(family(t, m, "databus_hook_duration_seconds").GetMetric()); n != len(cases) {
		t.Errorf("databus_hook_duration_seconds has %d series; want %d", n, len(cases))
	}
	// What went out: a POST of JSON with the trace id.
	r := srv.last(t)
	if r.method != "POST" || r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Trace-Id") != "trace-1" || string(r.body) != `{"a":"b"}` {
		t.Errorf("request %s %v %s", r.method, r.header, r.body)
	}
}

// TestServiceEntry: the registered method, headers, params and data go out.
func TestServiceEntry(t *testing.T) {
	srv := newHookServer(t, func(string, []byte) (int, string) { return 200, `{"code":0}` })
	svc := services{}
	svc.register(t, srv.Server, Permission)
	ep := svc[Permission]
	ep.Service.Method = "put"
	ep.Service.Headers = map[string]string{"X-Hook-Key": "k1"}
	ep.Service.Params = map[string]string{"tenant": "t 1"}
	ep.Service.Data = map[string]any{"api_key": "k2", "party_id": "not this"}
	svc[Permission] = ep
	c := New(Options{Services: svc, Settings: settings(5 * time.Second)})
	if res := c.Call(context.Background(), Permission, "", SignatureRequest{PartyID: "1", Body: []byte("x")}); !res.OK() || res.Method != "PUT" {
		t.Fatalf("%+v", res)
	}
	r := srv.last(t)
	if r.method != "PUT" || r.header.Get("X-Hook-Key") != "k1" || r.query.Get("tenant") != "t 1" || r.header.Get("X-Trace-Id") != "" {
		t.Errorf("request %s %v %v", r.method, r.header, r.query)
	}
	// The registered data is added beside the hook's fields, which win.
	if string(r.body) != `{"api_key":"k2","body":"x","party_id":"1"}` {
		t.Errorf("body %s", r.body)
	}
}

// TestNoRegistry: hooks used without a registry (or a nil Caller) fail
// closed with the registry's absence as the reason.
func TestNoRegistry(t *testing.T) {
	m := metrics.New()
	for _, c := range []*Caller{New(Options{Settings: settings(time.Second), Metrics: m}), nil} {
		res := c.Call(context.Background(), ClientAuthentication, "", struct{}{})
		if res.OK() || res.Outcome != OutcomeNotRegistered || res.Reason != "the service registry is not available" || !errors.Is(res.Err, ErrNoRegistry) {
			t.Errorf("%+v", res)
		}
	}
	if got := count(t, m, ClientAuthentication, OutcomeNotRegistered); got != 1 {
		t.Errorf("counted %v", got)
	}
}

// TestTimeout: a hook that does not answer within hooks.timeout fails with
// outcome timeout. The server blocks until the test ends.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: unblocks the handler before Close waits for it
	svc := services{}
	svc.register(t, srv, ClientAuthentication)
	m := metrics.New()
	c := New(Options{Services: svc, Settings: settings(50 * time.Millisecond), Metrics: m})
	res := c.Call(context.Background(), ClientAuthentication, "", struct{}{})
	if res.Outcome != OutcomeTimeout || res.Reason != "timed out after 50ms" || !errors.Is(res.Err, ErrUnavailable) ||
		!errors.Is(res.Err, context.DeadlineExceeded) || !errors.Is(res.Short(), context.DeadlineExceeded) {
		t.Fatalf("%+v", res)
	}
	if got := count(t, m, ClientAuthentication, OutcomeTimeout); got != 1 {
		t.Errorf("counted %v", got)
	}
}

// TestTransportError: a refused connection fails with a reason that names
// no address (it goes into an envelope).
func TestTransportError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	svc := services{Signature: {
		Server:  registry.Server{Name: "HOOKS", Host: "127.0.0.1", Port: addr.Port},
		Service: registry.Service{ServiceName: Signature, URI: "/sign"},
	}}
	c := New(Options{Services: svc, Settings: settings(5 * time.Second)})
	res := c.Call(context.Background(), Signature, "", struct{}{})
	if res.Outcome != OutcomeError || res.Reason != "the hook service refused the connection" || strings.Contains(res.Reason, "127.0.0.1") {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(res.Err.Error(), strconv.Itoa(addr.Port)) {
		t.Errorf("Err (for logs) should name the address: %v", res.Err)
	}
}

// TestBody: a body is its JSON value when it is JSON, else its text; it
// always serialises (FATE Flow sent bodies that could not).
func TestBody(t *testing.T) {
	cases := []struct {
		in   []byte
		want string
	}{
		{[]byte(`{"b":1,"a":[1,2]}`), `{"b":1,"a":[1,2]}`},
		{[]byte(" {\n \"a\": 12345678901234567890 }\n"), `{"a":12345678901234567890}`},
		{[]byte(`"text"`), `"text"`},
		{[]byte(`42`), `42`},
		{[]byte(`id,name`), `"id,name"`},
		{[]byte(`{"a":`), `"{\"a\":"`},
		{nil, `""`},
		{[]byte("  "), `"  "`},
		{[]byte{0xff, 0xfe, 'x'}, `"\ufffd\ufffdx"`},
	}
	for _, tc := range cases {
		out, err := json.Marshal(SignatureRequest{PartyID: "1", Body: tc.in})
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		want := `{"party_id":"1","body":` + tc.want + `}`
		if string(out) != want {
			t.Errorf("%q: %s; want %s", tc.in, out, want)
		}
	}
}

// TestClientAuthenticationRequest: headers as an object of strings
// (repeated values joined with ", ", Host included), form fields, the body
// as json when it is JSON.
func TestClientAuthenticationRequest(t *testing.T) {
	r := httptest.NewRequest("POST", "http://gw.example:8080/api/portal/order.create/v1?x=1&y=2", nil)
	r.Header = http.Header{"Accept": {"a/b", "c/d"}, "X-Token": {"t"}}
	got := NewClientAuthenticationRequest(r, []byte(`{"orderNo":"A-1"}`), "application/json")
	out, _ := json.Marshal(got)
	want := `{"full_path":"/api/portal/order.create/v1?x=1\u0026y=2","headers":{"Accept":"a/b, c/d","Host":"gw.example:8080","X-Token":"t"},"form":{},"json":{"orderNo":"A-1"}}`
	if string(out) != want {
		t.Errorf("\n got %s\nwant %s", out, want)
	}

	// An urlencoded form.
	form := NewClientAuthenticationRequest(r, []byte("a=1&a=2&b=x+y"), "application/x-www-form-urlencoded; charset=utf-8")
	if fmt.Sprint(form.Form) != "map[a:1,2 b:x y]" || form.JSON != nil {
		t.Errorf("form %v json %s", form.Form, form.JSON)
	}
	out, _ = json.Marshal(form)
	if !bytes.Contains(out, []byte(`"json":null`)) {
		t.Errorf("a form body has json null: %s", out)
	}

	// A multipart form: fields, not files.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("requestBody", `{"stat_month":"202201"}`)
	fw, _ := mw.CreateFormFile("file", "ids.csv")
	fw.Write([]byte("id\n1\n"))
	mw.Close()
	mp := NewClientAuthenticationRequest(r, buf.Bytes(), mw.FormDataContentType())
	if len(mp.Form) != 1 || mp.Form["requestBody"] != `{"stat_month":"202201"}` || mp.JSON != nil {
		t.Errorf("multipart form %v json %s", mp.Form, mp.JSON)
	}

	// Text: no form, json null; nothing breaks the encoding.
	txt := NewClientAuthenticationRequest(r, []byte{0xff, 'a'}, "text/plain")
	if _, err := json.Marshal(txt); err != nil || len(txt.Form) != 0 || txt.JSON != nil {
		t.Errorf("text body: %v %v %s", err, txt.Form, txt.JSON)
	}
}

// TestPermissionRequest: the caller is the guest, this site the host, the
// API the one component.
func TestPermissionRequest(t *testing.T) {
	c := New(Options{Settings: settings(time.Second)})
	body := c.NewPermissionRequest(Subject{Party: "app-a", AppID: "app-a", TenantID: "1", TraceID: "tr", APICode: "order.create", Version: "v2", Method: "POST"})
	out, _ := json.Marshal(body)
	want := `{"src_role":"guest","src_party_id":"app-a","role":"host","party_id":"9999",` +
		`"initiator":{"party_id":"app-a","role":"guest"},"roles":{"guest":["app-a"],"host":["9999"]},` +
		`"component_list":["order.create:v2"],"dataset_list":[],` +
		`"run_time_conf":{"app_id":"app-a","method":"POST","tenant_id":"1","trace_id":"tr"},"dsl":{},"component_parameters":{}}`
	if string(out) != want {
		t.Errorf("\n got %s\nwant %s", out, want)
	}
}

// TestSignSite: the signature is site_signature, else data; an answer with
// neither, a refusal, or no partyId gives no signature.
func TestSignSite(t *testing.T) {
	answer := `{"code":0,"site_signature":"sig-1"}`
	var mu sync.Mutex
	srv := newHookServer(t, func(string, []byte) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		return 200, answer
	})
	set := func(a string) { mu.Lock(); answer = a; mu.Unlock() }
	svc := services{}
	svc.register(t, srv.Server, Signature)
	m := metrics.New()
	c := New(Options{Services: svc, Settings: settings(5 * time.Second), Metrics: m})

	sig, err := c.SignSite(context.Background(), "tr", "10000", []byte(`{"id":7}`))
	if err != nil || sig.Signature != "sig-1" || sig.SrcPartyID != "9999" {
		t.Fatalf("%+v %v", sig, err)
	}
	if r := srv.last(t); string(r.body) != `{"party_id":"10000","body":{"id":7}}` {
		t.Errorf("signature body %s", r.body)
	}
	if rec, ok := sig.Record.(map[string]any); !ok || rec["hook"] != Signature || rec["outcome"] != OutcomeOK || rec["status"] != 200 {
		t.Errorf("record %v", sig.Record)
	}

	set(`{"code":0,"data":"sig-2"}`) // FATE Flow's own hook answers data
	if sig, err = c.SignSite(context.Background(), "tr", "10000", nil); err != nil || sig.Signature != "sig-2" {
		t.Fatalf("%+v %v", sig, err)
	}
	if r := srv.last(t); string(r.body) != `{"party_id":"10000","body":""}` {
		t.Errorf("signature body of an empty request %s", r.body)
	}

	set(`{"code":0,"data":{"sig":"x"}}`)
	if sig, err = c.SignSite(context.Background(), "tr", "10000", nil); !errors.Is(err, ErrUnavailable) ||
		err.Error() != "unavailable: the answer has neither site_signature nor data" || sig.Signature != "" {
		t.Errorf("%+v %v", sig, err)
	}
	if got := count(t, m, Signature, OutcomeError); got != 1 {
		t.Errorf("an answer without a signature counts as error: %v", got)
	}

	set(`{"code":1,"msg":"unknown party"}`)
	if _, err = c.SignSite(context.Background(), "tr", "10000", nil); !errors.Is(err, ErrRefused) || err.Error() != "refused: unknown party" {
		t.Errorf("%v", err)
	}

	noParty := New(Options{Services: svc, Settings: config.HookSettings{Server: "hooks"}})
	if sig, err = noParty.SignSite(context.Background(), "tr", "10000", nil); err == nil || !strings.Contains(err.Error(), "hooks.partyId") {
		t.Errorf("%+v %v", sig, err)
	}
}
