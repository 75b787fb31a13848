package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/ui"
	"github.com/databus-gateway/databus/internal/testredis"
)

// fate posts a FATE registry call to the admin listener with token.
func (ts *testServer) fate(t *testing.T, token, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.adminURL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: HTTP %d, not JSON: %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func (ts *testServer) adminGet(t *testing.T, token, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.adminURL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		// The pages take the token from the sign-in cookie.
		req.AddCookie(&http.Cookie{Name: ui.SessionCookie, Value: token})
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const registryTokens = `admin:
  tokens:
    - {name: ops, role: viewer, secret: {secretRef: 'env:DATABUS_TEST_VIEWER'}}
    - {name: fate, role: registry, secret: {secretRef: 'env:DATABUS_TEST_REGISTRY'}}
`

// TestRegistryOnTheAdminListener registers through the FATE calls with each
// kind of token, reads the registry through the admin REST API and the
// page, and restarts the gateway on the same file: the registrations stay.
func TestRegistryOnTheAdminListener(t *testing.T) {
	t.Setenv("DATABUS_TEST_VIEWER", "viewer-token-0123456789")
	t.Setenv("DATABUS_TEST_REGISTRY", "registry-token-0123456789")
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+registryTokens)
	storage := filepath.Join(t.TempDir(), "databus.db")
	ts := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: storage})

	body := `{"host":"127.0.0.1","port":9090}`
	if st, _ := ts.fate(t, "", "/v1/server/feat/register", body); st != http.StatusUnauthorized {
		t.Errorf("without a token: HTTP %d", st)
	}
	if st, _ := ts.fate(t, "viewer-token-0123456789", "/v1/server/feat/register", body); st != http.StatusForbidden {
		t.Errorf("with a viewer token: HTTP %d", st)
	}
	st, out := ts.fate(t, "registry-token-0123456789", "/v1/server/feat/register", body)
	if st != 200 || out["retcode"] != 0.0 || out["retmsg"] != "success" {
		t.Fatalf("with the registry token: %d %v", st, out)
	}
	// A service name is letters, digits, '.', '_' and '-': one with markup
	// is refused (retcode 100, naming the field) and never stored, so no
	// page can show it. The URI below carries markup to the page instead.
	st, out = ts.fate(t, "registry-token-0123456789", "/v1/service/registry", `{"server_name":"FEAT","service_name":"<script>alert(1)</script>","uri":"/x"}`)
	if st != 200 || out["retcode"] != 100.0 || !strings.Contains(fmt.Sprint(out["retmsg"]), `service name "<script>alert(1)</script>"`) {
		t.Fatalf("a service name with markup: HTTP %d %v", st, out)
	}
	st, out = ts.fate(t, "registry-token-0123456789", "/v1/service/registry", `{"server_name":"FEAT","service_name":"query","uri":"/v1/query?a=<b>"}`)
	if st != 200 || out["retcode"] != 0.0 {
		t.Fatalf("service registry: %v", out)
	}

	st, list := ts.adminGet(t, "viewer-token-0123456789", "/databus/gateway/registry/services")
	if st != 200 || !strings.Contains(list, `"url":"http://127.0.0.1:9090/v1/query?a=<b>"`) || !strings.Contains(list, `"total":1`) || strings.Contains(list, "alert(1)") {
		t.Fatalf("admin REST services: %d %s", st, list)
	}
	if st, list := ts.adminGet(t, "viewer-token-0123456789", "/databus/gateway/registry/servers"); st != 200 || !strings.Contains(list, `"server_name":"FEAT"`) {
		t.Fatalf("admin REST servers: %d %s", st, list)
	}
	// The page lists them, escaped.
	st, page := ts.adminGet(t, "viewer-token-0123456789", "/ui/registry")
	if st != 200 || !strings.Contains(page, `id="servers"`) || !strings.Contains(page, "/v1/query?a=&lt;b&gt;") || strings.Contains(page, "<b>") || strings.Contains(page, "alert(1)") || strings.Contains(page, `id="registry-empty"`) {
		t.Fatalf("registry page: %d\n%s", st, page)
	}

	// Restart on the same file.
	ts.stop()
	ts.Close()
	ts2 := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: storage})
	ep, err := ts2.Registry().Resolve(context.Background(), "feat", "query")
	if err != nil || ep.URL() != "http://127.0.0.1:9090/v1/query?a=<b>" {
		t.Fatalf("after restart: %+v %v", ep, err)
	}
}

// TestRegistrySharedByReplicas: two gateways on one Redis see each other's
// registrations; with Redis down, reads come from each node's bbolt copy
// (counted in /metrics) and registrations are refused with retcode 103;
// once Redis is back both agree again.
func TestRegistrySharedByReplicas(t *testing.T) {
	rs := testredis.Start(t)
	settings := fmt.Sprintf("apiPortal:\n  security: {enabled: false}\nredis:\n  addr: %s\n  timeout: 200ms\n", rs.Addr)
	repo := func() string {
		dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
		writeFile(t, filepath.Join(dir, "databus.yaml"), settings)
		return dir
	}
	a := startServer(t, Options{Dir: repo(), NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "a.db")})
	b := startServer(t, Options{Dir: repo(), NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "b.db")})

	if _, out := a.fate(t, "", "/v1/server/shared/register", `{"host":"127.0.0.1","port":7001}`); out["retcode"] != 0.0 {
		t.Fatalf("register on a: %v", out)
	}
	a.fate(t, "", "/v1/service/registry", `{"server_name":"shared","service_name":"s","uri":"/s"}`)
	_, out := b.fate(t, "", "/v1/service/query", `{"service_name":"s"}`)
	if !strings.Contains(fmt.Sprint(out["data"]), "http://127.0.0.1:7001/s") {
		t.Fatalf("b does not see a's registration: %v", out)
	}
	// Moved through b, seen by a.
	b.fate(t, "", "/v1/server/SHARED/register", `{"host":"127.0.0.1","port":7002}`)
	if ep, err := a.Registry().Resolve(context.Background(), "shared", "s"); err != nil || ep.Server.Port != 7002 {
		t.Fatalf("a after b moved the server: %+v %v", ep, err)
	}

	rs.Kill()
	if ep, err := b.Registry().Resolve(context.Background(), "shared", "s"); err != nil || ep.Server.Port != 7002 {
		t.Fatalf("b with redis down: %+v %v", ep, err)
	}
	_, out = a.fate(t, "", "/v1/server/other/register", `{"host":"127.0.0.1","port":7003}`)
	if out["retcode"] != 103.0 || !strings.Contains(fmt.Sprint(out["retmsg"]), "redis") {
		t.Fatalf("register with redis down: %v", out)
	}
	if _, body := b.metricsText(t); !strings.Contains(body, `databus_store_errors_total{backend="redis",store="registry"}`) {
		t.Errorf("registry store errors not counted:\n%s", grep(body, "databus_store_errors_total"))
	}

	rs.Restart()
	waitFor(t, pollTimeout, "registrations accepted again", func() bool {
		_, out := a.fate(t, "", "/v1/server/other/register", `{"host":"127.0.0.1","port":7003}`)
		return out["retcode"] == 0.0
	})
	// Redis restarted empty: the first write seeded it from a's copy, so
	// what was registered before the outage is still there for b, beside
	// what a registered after.
	if ep, err := b.Registry().Resolve(context.Background(), "shared", "s"); err != nil || ep.Server.Port != 7002 {
		t.Fatalf("b after redis restarted empty: %+v %v", ep, err)
	}
	if s, ok, err := b.Registry().Server(context.Background(), "other"); err != nil || !ok || s.Port != 7003 {
		t.Fatalf("b after redis came back: %+v %v %v", s, ok, err)
	}
}

// TestServiceStepThroughTheRegistry: an http step calls a service
// registered with the FATE calls; the server re-registered on another port
// takes the next call; a service deleted answers 502 naming it.
func TestServiceStepThroughTheRegistry(t *testing.T) {
	answer := func(from string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, `{"from":%q,"path":%q}`, from, r.URL.Path)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	first, second := answer("first"), answer("second")
	dir := newRepo(t, map[string]string{"svc.yaml": `apiVersion: databus/v1
kind: Api
code: t.svc
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: q
    type: http
    http: {service: {server: features, name: query}}
  - {id: end, type: end}
`})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	register := func(srv *httptest.Server) {
		u, _ := url.Parse(srv.URL)
		host, port, _ := net.SplitHostPort(u.Host)
		if _, out := ts.fate(t, "", "/v1/server/features/register", `{"host":"`+host+`","port":`+port+`}`); out["retcode"] != 0.0 {
			t.Fatalf("register: %v", out)
		}
	}
	env, err := ts.call("t.svc")
	if err != nil || env.Code != 502 || !strings.Contains(env.Message, `service "query" of server "FEATURES"`) {
		t.Fatalf("before registering: %+v %v", env, err)
	}
	register(first)
	ts.fate(t, "", "/v1/service/registry", `{"server_name":"features","service_name":"query","uri":"/v1/query","method":"GET"}`)
	if env, err := ts.call("t.svc"); err != nil || env.Code != 200 || !strings.Contains(string(env.Response), `"first"`) || !strings.Contains(string(env.Response), `/v1/query`) {
		t.Fatalf("through the registry: %+v %v", env, err)
	}
	register(second)
	if env, err := ts.call("t.svc"); err != nil || env.Code != 200 || !strings.Contains(string(env.Response), `"second"`) {
		t.Fatalf("after the move: %+v %v", env, err)
	}
	ts.fate(t, "", "/v1/service/delete", `{"server_name":"features","service_name":"query"}`)
	if env, _ := ts.call("t.svc"); env.Code != 502 || !strings.Contains(env.Message, "not registered") {
		t.Fatalf("after delete: %+v", env)
	}
}

// fateAnswer is an answer of the FATE endpoints read strictly: a JSON
// object of retcode, retmsg and (optionally) data, nothing else.
type fateAnswer struct {
	status  int
	header  http.Header
	RetCode *int            `json:"retcode"`
	RetMsg  string          `json:"retmsg"`
	Data    json.RawMessage `json:"data"`
}

func (ts *testServer) fateSend(t *testing.T, method, path, body string, hdr map[string]string) fateAnswer {
	t.Helper()
	req, err := http.NewRequest(method, ts.adminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := *ts.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := fateAnswer{status: resp.StatusCode, header: resp.Header}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || a.RetCode == nil || a.RetMsg == "" {
		t.Fatalf("%s %s: HTTP %d %s, not a FATE answer {retcode, retmsg} (%v): %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), err, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return a
}

// TestRegistryAnswersFateEverywhere: with admin tokens set, every answer
// under /v1/ is a FATE reply with its HTTP status — authentication and
// role refusals, a wrong method, unknown and unclean paths, a body that is
// not JSON or is too large — and so are the cross-site refusal and the
// endpoints' own answers without tokens.
func TestRegistryAnswersFateEverywhere(t *testing.T) {
	t.Setenv("DATABUS_TEST_VIEWER", "viewer-token-0123456789")
	t.Setenv("DATABUS_TEST_REGISTRY", "registry-token-0123456789")
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+registryTokens)
	ts := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db")})

	reg := map[string]string{"Authorization": "Bearer registry-token-0123456789", "Content-Type": "application/json"}
	viewer := map[string]string{"Authorization": "Bearer viewer-token-0123456789"}
	server := `{"host":"127.0.0.1","port":9090}`
	tooLarge := `{"host":"` + strings.Repeat("h", registry.MaxBody) + `"}`
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status, code             int
		msg                      string
	}{
		{"no token", "POST", "/v1/server/feat/register", server, nil, 401, 109, "admin token required"},
		{"unknown token", "POST", "/v1/server/feat/register", server, map[string]string{"Authorization": "Bearer nope"}, 401, 109, "admin token required"},
		{"viewer token", "POST", "/v1/service/query", `{"service_name":"s"}`, viewer, 403, 108, "has role viewer; this needs registry"},
		{"GET without a token", "GET", "/v1/server/get", "", nil, 401, 109, "admin token required"},
		{"GET", "GET", "/v1/server/feat/register", "", reg, 405, 100, "method GET is not allowed"},
		{"PUT", "PUT", "/v1/service/registry", "{}", reg, 405, 100, "use POST"},
		{"unknown path", "POST", "/v1/job/submit", "{}", reg, 404, 100, "no FATE Flow registry endpoint /v1/job/submit"},
		{"unknown path, no token", "POST", "/v1/job/submit", "{}", nil, 401, 109, "admin token required"},
		{"the prefix alone", "POST", "/v1", "", reg, 404, 100, "no FATE Flow registry endpoint"},
		{"the prefix with its slash", "GET", "/v1/", "", reg, 404, 100, "no FATE Flow registry endpoint"},
		{"unclean path", "POST", "/v1//server/get", "", reg, 404, 100, "no FATE Flow registry endpoint"},
		{"trailing slash", "POST", "/v1/server/get/", "", reg, 404, 100, "no FATE Flow registry endpoint"},
		{"bad JSON", "POST", "/v1/server/feat/register", `{"host":`, reg, 400, 100, "not the expected JSON object"},
		{"wrong JSON type", "POST", "/v1/service/query", `["service_name"]`, reg, 400, 100, "not the expected JSON object"},
		{"body too large", "POST", "/v1/server/feat/register", tooLarge, reg, 413, 100, fmt.Sprintf("over %d bytes", registry.MaxBody)},
		{"missing argument", "POST", "/v1/service/query", `{}`, reg, 200, 101, "service_name"},
		{"registered", "POST", "/v1/server/feat/register", server, reg, 200, 0, "success"},
	}
	for _, c := range cases {
		a := ts.fateSend(t, c.method, c.path, c.body, c.hdr)
		if a.status != c.status || *a.RetCode != c.code || !strings.Contains(a.RetMsg, c.msg) {
			t.Errorf("%s (%s %s): HTTP %d retcode %d %q; want HTTP %d retcode %d containing %q", c.name, c.method, c.path, a.status, *a.RetCode, a.RetMsg, c.status, c.code, c.msg)
		}
		switch c.status {
		case 401:
			if a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", c.name)
			}
		case 405:
			if a.header.Get("Allow") != "POST" {
				t.Errorf("%s: 405 with Allow %q", c.name, a.header.Get("Allow"))
			}
		}
	}
	// Nothing refused was stored; the admin API beside it keeps its own
	// envelope.
	if servers, _ := ts.Registry().Servers(t.Context()); len(servers) != 1 {
		t.Errorf("servers %+v; want FEAT alone", servers)
	}
	if st, body := ts.adminGet(t, "", "/databus/gateway/registry/servers"); st != 401 || !strings.Contains(body, `"code":401`) {
		t.Errorf("admin REST API without a token: %d %s", st, body)
	}

	// Without admin tokens the listener asks for none, but a request a
	// browser marks cross-site is refused, in the FATE envelope too.
	open := startServer(t, Options{Dir: newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")}), NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "open.db")})
	a := open.fateSend(t, "POST", "/v1/server/feat/register", server, map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"})
	if a.status != 403 || *a.RetCode != 108 || !strings.Contains(a.RetMsg, "cross-site request refused") {
		t.Errorf("cross-site: HTTP %d %d %q", a.status, *a.RetCode, a.RetMsg)
	}
	if a := open.fateSend(t, "POST", "/v1/server/feat/register", server, nil); a.status != 200 || *a.RetCode != 0 {
		t.Errorf("without tokens: HTTP %d %d %q", a.status, *a.RetCode, a.RetMsg)
	}
}
