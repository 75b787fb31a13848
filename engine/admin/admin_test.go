package admin_test

// End-to-end tests of the admin REST API: a real gateway.Server on loopback
// listeners, a real bbolt file in a temp dir, real HTTP. engine/gateway
// imports engine/admin, so these tests live in the external test package.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gateway"
)

const (
	prefix   = "/databus/gateway"
	basePath = "/admin-api/databus/api/portal"

	// Secret values: none of them may ever appear in an admin answer.
	viewerToken   = "viewer-tok-6b1f0c2e9d7a"
	operatorToken = "operator-tok-43e8a1d5c0f9"
	registryToken = "registry-tok-9c5e2b7f1a30"
	shopKey       = "SHOPKEY-aes-gcm-0123456789abcdef" // 32 bytes
	shopSignKey   = "SHOPSIGN-hmac-8d3f6a1c4e2b"
)

// pollTimeout bounds waiting for something asynchronous (the access log's
// batching writer); a poll ends as soon as its condition holds.
const pollTimeout = 10 * time.Second

// scriptAPI is an API whose script answers {v: value, body: <the request body>}.
func scriptAPI(code, status, extra, value string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: %s
methods: [GET, POST]
%ssteps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {lang: javascript, timeout: 10s, source: 'function main(ctx) { return {v: %q, body: ctx.request.body} }'}
  - {id: end, type: end}
`, code, status, extra, value)
}

// failingAPI is an API whose script throws: 500.
const failingAPI = `apiVersion: databus/v1
kind: Api
code: t.fail
version: v1
status: online
methods: [GET, POST]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {lang: javascript, timeout: 10s, source: 'function main(ctx) { throw new Error("boom") }'}
  - {id: end, type: end}
`

const policyP = `apiVersion: databus/v1
kind: RateLimitPolicy
name: p
algorithm: fixed-window
limit: 100000
windowSeconds: 60
`

const policyQ = `apiVersion: databus/v1
kind: RateLimitPolicy
name: q
algorithm: token-bucket
limit: 5
windowSeconds: 10
`

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// settings is databus.yaml with the security chain off, plus more.
func settings(more string) string {
	return "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n" + more
}

const adminTokens = `admin:
  tokens:
    - {name: grafana, role: viewer, secret: {secretRef: 'env:ADMIN_TEST_VIEWER'}}
    - {name: ops, role: operator, secret: {secretRef: 'env:ADMIN_TEST_OPERATOR'}}
    - {name: fate, role: registry, secret: {secretRef: 'env:ADMIN_TEST_REGISTRY'}}
`

// fullRepo is a repository with five APIs (three online, a draft, an
// offline one), two credentials (one whose key does not resolve) and two
// policies. more is appended to databus.yaml.
func fullRepo(t *testing.T, more string) string {
	t.Helper()
	t.Setenv("ADMIN_TEST_SHOP_KEY", shopKey)
	signDir := t.TempDir() // the signature key lives outside the repository
	writeFiles(t, signDir, map[string]string{"shop.sign": shopSignKey + "\n"})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"databus.yaml":    settings(more),
		"apis/one.yaml":   scriptAPI("t.one", "online", "description: The first API\npolicies: {rateLimit: p}\n", "one"),
		"apis/two.yaml":   scriptAPI("t.two", "online", "description: Second of its kind\n", "two"),
		"apis/draft.yaml": scriptAPI("t.draft", "draft", "", "draft"),
		"apis/off.yaml":   scriptAPI("t.off", "offline", "", "off"),
		"apis/fail.yaml":  failingAPI,
		"credentials/shop.yaml": `apiVersion: databus/v1
kind: Credential
appId: shop
description: The shop front end
enabled: true
signatureType: HMAC-SHA256
encryptionType: AES-GCM
encryptionKey: {secretRef: 'env:ADMIN_TEST_SHOP_KEY'}
signatureKey: {secretRef: 'file:` + filepath.ToSlash(filepath.Join(signDir, "shop.sign")) + `'}
`,
		"credentials/broken.yaml": `apiVersion: databus/v1
kind: Credential
appId: broken
enabled: true
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'env:ADMIN_TEST_UNSET_KEY'}
signatureKey: {secretRef: 'env:ADMIN_TEST_UNSET_SIGN'}
`,
		"policies/p.yaml": policyP,
		"policies/q.yaml": policyQ,
	})
	return dir
}

// gw is a gateway serving on loopback listeners.
type gw struct {
	t      *testing.T
	srv    *gateway.Server
	portal string // http://127.0.0.1:port
	admin  string
	client *http.Client
	// bodies collects every admin answer, to check none carries a secret.
	bodies []string
}

func start(t *testing.T, opts gateway.Options) *gw {
	t.Helper()
	if opts.StoragePath == "" {
		opts.StoragePath = filepath.Join(t.TempDir(), "databus.db")
	}
	srv, err := gateway.New(opts)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pl, al) }()
	g := &gw{t: t, srv: srv, portal: "http://" + pl.Addr().String(), admin: "http://" + al.Addr().String(),
		client: &http.Client{Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		g.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	waitFor(t, "readyz 200", func() bool {
		resp, err := g.client.Get(g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return g
}

func waitFor(t *testing.T, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out waiting for " + what
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reply is an admin answer.
type reply struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`

	status int
	header http.Header
	raw    string
}

func (r reply) String() string { return fmt.Sprintf("HTTP %d %s", r.status, r.raw) }

// data decodes the answer's data into v.
func (r reply) data(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("data of %s: %v", r, err)
	}
}

// call sends method path (relative to the admin listener) with token ("" =
// none) and body ("" = none), and decodes the admin envelope.
func (g *gw) call(method, path, token, body string) reply {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.admin+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	g.bodies = append(g.bodies, string(raw))
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		g.t.Fatalf("%s %s: HTTP %d, not the admin envelope: %q", method, path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		g.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	// code is 0 on success, else the HTTP status.
	if (resp.StatusCode == 200 && r.Code != 0) || (resp.StatusCode != 200 && r.Code != resp.StatusCode) {
		g.t.Errorf("%s %s: HTTP %d with envelope code %d", method, path, resp.StatusCode, r.Code)
	}
	return r
}

// get is call("GET", ...) that must answer 200.
func (g *gw) get(path, token string) reply {
	g.t.Helper()
	r := g.call("GET", path, token, "")
	if r.status != 200 {
		g.t.Fatalf("GET %s: %s", path, r)
	}
	return r
}

// portalCall calls the portal and returns the HTTP status and the envelope.
func (g *gw) portalCall(method, code, trace, appID, body string) (int, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.portal+basePath+"/"+code+"/v1", rd)
	if err != nil {
		g.t.Fatal(err)
	}
	if trace != "" {
		req.Header.Set("X-Trace-Id", trace)
	}
	if appID != "" {
		req.Header.Set("ZT-App-Id", appID)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		g.t.Fatalf("portal %s %s: %v", method, code, err)
	}
	if trace != "" && env["traceId"] != trace {
		g.t.Errorf("portal %s %s: traceId %v, sent %s", method, code, env["traceId"], trace)
	}
	return resp.StatusCode, env
}

// record is an access-log record as the admin API answers it.
type record struct {
	ID             string            `json:"id"`
	TraceID        string            `json:"traceId"`
	APICode        string            `json:"apiCode"`
	Version        string            `json:"version"`
	AppID          string            `json:"appId"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	RequestHeaders map[string]string `json:"requestHeaders"`
	RequestBody    string            `json:"requestBody"`
	ResponseBody   string            `json:"responseBody"`
	HTTPStatus     int               `json:"httpStatus"`
	Status         int               `json:"status"`
	ErrorCode      string            `json:"errorCode"`
	ErrorMessage   string            `json:"errorMessage"`
	StartedAt      time.Time         `json:"startedAt"`
	StepResults    []struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Error string `json:"error"`
	} `json:"stepResults"`
	Extra map[string]any `json:"extra"`
}

type recordPage struct {
	Total int      `json:"total"`
	List  []record `json:"list"`
}

// logPage queries access-log/page with the query q.
func (g *gw) logPage(q url.Values, token string) recordPage {
	g.t.Helper()
	var p recordPage
	g.get(prefix+"/access-log/page?"+q.Encode(), token).data(g.t, &p)
	return p
}

// waitLog polls access-log/page with q until it holds want records.
func (g *gw) waitLog(q url.Values, token string, want int) recordPage {
	g.t.Helper()
	var p recordPage
	waitFor(g.t, fmt.Sprintf("%d access-log records for %s", want, q.Encode()), func() bool {
		p = g.logPage(q, token)
		return p.Total >= want
	}, func() string { return fmt.Sprintf("last page: %+v", p) })
	if p.Total != want {
		g.t.Fatalf("access-log/page?%s: total %d, want %d: %+v", q.Encode(), p.Total, want, p)
	}
	return p
}

// noSecrets fails when an admin answer so far carries a secret value.
func (g *gw) noSecrets() {
	g.t.Helper()
	for _, b := range g.bodies {
		for _, s := range []string{viewerToken, operatorToken, registryToken, shopKey, shopSignKey} {
			if strings.Contains(b, s) {
				g.t.Errorf("an admin answer carries the secret %q: %.300s", s, b)
			}
		}
	}
}

func TestRolesOnEveryEndpoint(t *testing.T) {
	t.Setenv("ADMIN_TEST_VIEWER", viewerToken)
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken)
	t.Setenv("ADMIN_TEST_REGISTRY", registryToken)
	g := start(t, gateway.Options{Dir: fullRepo(t, adminTokens), NoWatch: true})

	// A portal call, so that the access log has a record to get.
	if st, env := g.portalCall("POST", "t.one", "roles-trace-1", "shop", `{"x":1}`); st != 200 {
		t.Fatalf("portal: %d %v", st, env)
	}
	page := g.waitLog(url.Values{"traceId": {"roles-trace-1"}}, viewerToken, 1)
	recID := page.List[0].ID

	reads := []string{
		"/definition/page",
		"/definition/t.one:v1",
		"/definitions",
		"/credential/page",
		"/credential/get?id=shop",
		"/credential/list-simple",
		"/policy/rate-limit/page",
		"/policy/rate-limit/p",
		"/policy/rate-limit/simple-list",
		"/access-log/page",
		"/access-log/get?id=" + recID,
		"/reload/last",
		"/overview",
	}
	for _, p := range reads {
		for _, tok := range []string{viewerToken, operatorToken} {
			if r := g.call("GET", prefix+p, tok, ""); r.status != 200 || r.Code != 0 {
				t.Errorf("GET %s as %s: %s", p, tok, r)
			}
		}
		if r := g.call("GET", prefix+p, registryToken, ""); r.status != 403 || r.Code != 403 || !strings.Contains(r.Message, "registry") {
			t.Errorf("GET %s as registry: %s; want 403 naming the role", p, r)
		}
		checkUnauthorized(t, g, "GET", prefix+p, "")
	}

	// The scheme is case-insensitive (RFC 7235).
	if r := g.call("GET", prefix+"/definitions", "", ""); r.status != 401 {
		t.Errorf("no token: %s", r)
	}
	req, _ := http.NewRequest("GET", g.admin+prefix+"/definitions", nil)
	req.Header.Set("Authorization", "bearer "+viewerToken)
	if resp, err := g.client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("lower-case bearer scheme: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	writes := []struct{ path, body string }{
		{"/invoke", `{"apiCode":"t.one","version":"v1","body":{"a":1}}`},
		{"/cache/refresh", ""},
	}
	for _, w := range writes {
		for _, tok := range []string{viewerToken, registryToken} {
			if r := g.call("POST", prefix+w.path, tok, w.body); r.status != 403 || r.Code != 403 {
				t.Errorf("POST %s as %s: %s; want 403", w.path, tok, r)
			}
		}
		checkUnauthorized(t, g, "POST", prefix+w.path, w.body)
		if r := g.call("POST", prefix+w.path, operatorToken, w.body); r.status != 200 || r.Code != 0 {
			t.Errorf("POST %s as operator: %s", w.path, r)
		}
	}

	// Health, readiness and metrics need no token.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := g.client.Get(g.admin + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		g.bodies = append(g.bodies, string(b))
		if resp.StatusCode != 200 {
			t.Errorf("GET %s without a token: %d", p, resp.StatusCode)
		}
	}

	// The operator's debug invoke is in the access log, with who ran it.
	var invoked struct {
		TraceID string `json:"traceId"`
	}
	g.call("POST", prefix+"/invoke", operatorToken, `{"apiCode":"t.one","body":{"who":"ops"}}`).data(t, &invoked)
	rec := g.waitLog(url.Values{"traceId": {invoked.TraceID}}, viewerToken, 1).List[0]
	if rec.Extra["debug"] != true || rec.Extra["by"] != "ops" {
		t.Errorf("invoke record extra = %v; want debug true, by ops", rec.Extra)
	}

	g.noSecrets()
}

// checkUnauthorized: no token, a wrong token, a token without "Bearer "
// and an empty bearer all answer 401 in the admin envelope with
// WWW-Authenticate.
func checkUnauthorized(t *testing.T, g *gw, method, path, body string) {
	t.Helper()
	for _, auth := range []string{"", "Bearer wrong-token", operatorToken, "Bearer ", "Basic " + operatorToken, "Bearer " + operatorToken + "x"} {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, g.admin+path, rd)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r reply
		json.Unmarshal(raw, &r)
		if resp.StatusCode != 401 || r.Code != 401 || r.Message == "" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s with Authorization %q: HTTP %d %s (WWW-Authenticate %q); want 401 in the envelope",
				method, path, auth, resp.StatusCode, raw, resp.Header.Get("WWW-Authenticate"))
		}
		if r.Data != nil && string(r.Data) != "null" {
			t.Errorf("%s %s: a 401 carries data %s", method, path, r.Data)
		}
	}
}

func TestReadEndpoints(t *testing.T) {
	g := start(t, gateway.Options{Dir: fullRepo(t, ""), NoWatch: true})
	defer g.noSecrets()

	t.Run("definitions", func(t *testing.T) {
		var page struct {
			Total int `json:"total"`
			List  []struct {
				ID     string `json:"id"`
				Code   string `json:"code"`
				Status string `json:"status"`
				File   string `json:"file"`
				Served bool   `json:"served"`
			} `json:"list"`
		}
		g.get(prefix+"/definition/page", "").data(t, &page)
		if page.Total != 5 || len(page.List) != 5 {
			t.Fatalf("definition/page: %+v; want the 5 APIs", page)
		}
		for _, d := range page.List {
			if d.Served != (d.Status == "online") || !strings.HasPrefix(d.File, "apis/") || d.ID != d.Code+":v1" {
				t.Errorf("definition/page item %+v", d)
			}
		}
		ids := func(q string) []string {
			var p struct {
				Total int `json:"total"`
				List  []struct {
					ID string `json:"id"`
				} `json:"list"`
			}
			g.get(prefix+"/definition/page?"+q, "").data(t, &p)
			var out []string
			for _, d := range p.List {
				out = append(out, d.ID)
			}
			sort.Strings(out)
			if p.Total != len(out) && !strings.Contains(q, "page") {
				t.Errorf("definition/page?%s: total %d, %d items", q, p.Total, len(out))
			}
			return out
		}
		for q, want := range map[string]string{
			"code=t.one":                "t.one:v1",
			"code=t.":                   "t.draft:v1 t.fail:v1 t.off:v1 t.one:v1 t.two:v1",
			"code=Second":               "t.two:v1", // the description matches too
			"status=draft":              "t.draft:v1",
			"status=offline":            "t.off:v1",
			"status=online":             "t.fail:v1 t.one:v1 t.two:v1",
			"status=online&code=t.two":  "t.two:v1",
			"status=deprecated":         "",
			"code=nothing":              "",
			"pageNo=3&pageSize=2":       "t.two:v1", // repository order (by file name): the last of five
			"pageNo=4&pageSize=2":       "",
			"pageNo=1&pageSize=100":     "t.draft:v1 t.fail:v1 t.off:v1 t.one:v1 t.two:v1",
			"status=online&pageSize=1":  "t.fail:v1",
			"status=online&pageNo=9999": "",
		} {
			if got := strings.Join(ids(q), " "); got != want {
				t.Errorf("definition/page?%s = %q; want %q", q, got, want)
			}
		}

		var one struct {
			ID       string `json:"id"`
			File     string `json:"file"`
			Served   bool   `json:"served"`
			Code     string `json:"code"`
			Version  string `json:"version"`
			Policies struct {
				RateLimit string `json:"rateLimit"`
			} `json:"policies"`
			Steps []struct {
				ID     string `json:"id"`
				Type   string `json:"type"`
				Script struct {
					Source string `json:"source"`
				} `json:"script"`
			} `json:"steps"`
		}
		g.get(prefix+"/definition/t.one:v1", "").data(t, &one)
		if one.ID != "t.one:v1" || one.File != "apis/one.yaml" || !one.Served || one.Policies.RateLimit != "p" ||
			len(one.Steps) != 3 || one.Steps[1].Type != "script" || !strings.Contains(one.Steps[1].Script.Source, "function main") {
			t.Errorf("definition/t.one:v1 = %+v", one)
		}
		// Without a version, v1; a draft is shown too.
		var draft struct {
			ID     string `json:"id"`
			Served bool   `json:"served"`
		}
		g.get(prefix+"/definition/t.draft", "").data(t, &draft)
		if draft.ID != "t.draft:v1" || draft.Served {
			t.Errorf("definition/t.draft = %+v", draft)
		}
		if r := g.call("GET", prefix+"/definition/t.none:v1", "", ""); r.status != 404 {
			t.Errorf("definition of a missing API: %s", r)
		}

		var online []struct {
			ID string `json:"id"`
		}
		g.get(prefix+"/definitions", "").data(t, &online)
		var got []string
		for _, d := range online {
			got = append(got, d.ID)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != "t.fail:v1 t.one:v1 t.two:v1" {
			t.Errorf("definitions = %v; want the online APIs", got)
		}
	})

	t.Run("credentials", func(t *testing.T) {
		type secret struct {
			SecretRef string `json:"secretRef"`
			Resolved  bool   `json:"resolved"`
		}
		type cred struct {
			AppID          string  `json:"appId"`
			Enabled        bool    `json:"enabled"`
			EncryptionType string  `json:"encryptionType"`
			EncryptionKey  *secret `json:"encryptionKey"`
			SignatureKey   *secret `json:"signatureKey"`
			File           string  `json:"file"`
			Usable         bool    `json:"usable"`
			Problem        string  `json:"problem"`
		}
		var page struct {
			Total int    `json:"total"`
			List  []cred `json:"list"`
		}
		r := g.get(prefix+"/credential/page", "")
		r.data(t, &page)
		if page.Total != 2 {
			t.Fatalf("credential/page: %s", r)
		}
		byID := map[string]cred{}
		for _, c := range page.List {
			byID[c.AppID] = c
		}
		shop, broken := byID["shop"], byID["broken"]
		if shop.EncryptionKey == nil || shop.EncryptionKey.SecretRef != "env:ADMIN_TEST_SHOP_KEY" || !shop.EncryptionKey.Resolved ||
			shop.SignatureKey == nil || !strings.HasPrefix(shop.SignatureKey.SecretRef, "file:") || !shop.SignatureKey.Resolved ||
			!shop.Usable || shop.Problem != "" || shop.File != "credentials/shop.yaml" || shop.EncryptionType != "AES-GCM" {
			t.Errorf("shop = %+v (%s)", shop, r)
		}
		if broken.EncryptionKey == nil || broken.EncryptionKey.Resolved || broken.Usable ||
			!strings.Contains(broken.Problem, "ADMIN_TEST_UNSET_KEY") {
			t.Errorf("broken = %+v; want an unresolved key naming its reference", broken)
		}
		// Its signature key does not resolve either, though the load
		// stopped at the encryption key.
		if broken.SignatureKey == nil || broken.SignatureKey.SecretRef != "env:ADMIN_TEST_UNSET_SIGN" || broken.SignatureKey.Resolved {
			t.Errorf("broken signatureKey = %+v; want unresolved", broken.SignatureKey)
		}
		// Only references: no key material under any name.
		for _, k := range []string{`"key"`, `"value"`, `"secret"`, `"cipher"`, `"signKey"`} {
			if strings.Contains(strings.ToLower(r.raw), strings.ToLower(k)) {
				t.Errorf("credential/page has a field %s: %s", k, r.raw)
			}
		}
		var one cred
		g.get(prefix+"/credential/get?id=shop", "").data(t, &one)
		if one.AppID != "shop" || one.EncryptionKey == nil || one.EncryptionKey.SecretRef != "env:ADMIN_TEST_SHOP_KEY" {
			t.Errorf("credential/get?id=shop = %+v", one)
		}
		if r := g.call("GET", prefix+"/credential/get?id=nobody", "", ""); r.status != 404 {
			t.Errorf("credential/get of a missing app: %s", r)
		}
		var filtered struct {
			Total int    `json:"total"`
			List  []cred `json:"list"`
		}
		g.get(prefix+"/credential/page?appId=bro", "").data(t, &filtered)
		if filtered.Total != 1 || filtered.List[0].AppID != "broken" {
			t.Errorf("credential/page?appId=bro = %+v", filtered)
		}
		if !strings.Contains(r.raw, `"usedBy":[]`) {
			t.Errorf("credential/page without usedBy: %s", r.raw)
		}
		// The view reads what the Snapshot serving loaded: a secret that
		// stops resolving now still shows as resolved until a reload, as
		// the credential keeps working with the key it loaded.
		t.Setenv("ADMIN_TEST_SHOP_KEY", "")
		var again cred
		g.get(prefix+"/credential/get?id=shop", "").data(t, &again)
		if again.EncryptionKey == nil || !again.EncryptionKey.Resolved || !again.Usable {
			t.Errorf("credential/get?id=shop after its secret went away = %+v; want what the Snapshot loaded", again)
		}
		var simple []map[string]any
		g.get(prefix+"/credential/list-simple", "").data(t, &simple)
		if len(simple) != 2 {
			t.Errorf("credential/list-simple = %v", simple)
		}
		for _, s := range simple {
			if len(s) > 3 || s["appId"] == nil {
				t.Errorf("credential/list-simple item %v: want appId, description, enabled only", s)
			}
		}
	})

	t.Run("policies", func(t *testing.T) {
		type pol struct {
			Name      string   `json:"name"`
			Algorithm string   `json:"algorithm"`
			Limit     int      `json:"limit"`
			File      string   `json:"file"`
			UsedBy    []string `json:"usedBy"`
		}
		var page struct {
			Total int   `json:"total"`
			List  []pol `json:"list"`
		}
		g.get(prefix+"/policy/rate-limit/page", "").data(t, &page)
		if page.Total != 2 {
			t.Fatalf("policy page: %+v", page)
		}
		var p pol
		g.get(prefix+"/policy/rate-limit/p", "").data(t, &p)
		if p.Name != "p" || p.File != "policies/p.yaml" || p.Limit != 100000 || strings.Join(p.UsedBy, ",") != "t.one:v1" {
			t.Errorf("policy/rate-limit/p = %+v", p)
		}
		var q pol
		g.get(prefix+"/policy/rate-limit/q", "").data(t, &q)
		if q.Algorithm != "token-bucket" || q.UsedBy == nil || len(q.UsedBy) != 0 {
			t.Errorf("policy/rate-limit/q = %+v; want no users (as [])", q)
		}
		g.get(prefix+"/policy/rate-limit/page?name=q", "").data(t, &page)
		if page.Total != 1 || page.List[0].Name != "q" {
			t.Errorf("policy page?name=q = %+v", page)
		}
		if r := g.call("GET", prefix+"/policy/rate-limit/none", "", ""); r.status != 404 {
			t.Errorf("missing policy: %s", r)
		}
		var simple []struct {
			Name string `json:"name"`
		}
		g.get(prefix+"/policy/rate-limit/simple-list", "").data(t, &simple)
		if len(simple) != 2 || simple[0].Name != "p" || simple[1].Name != "q" {
			t.Errorf("simple-list = %+v", simple)
		}
	})

	t.Run("reload/last", func(t *testing.T) {
		var last struct {
			OK       bool   `json:"ok"`
			Reason   string `json:"reason"`
			Revision string `json:"revision"`
		}
		g.get(prefix+"/reload/last", "").data(t, &last)
		if !last.OK || last.Reason != "start" || last.Revision != g.srv.Current().Revision {
			t.Errorf("reload/last = %+v", last)
		}
	})

	t.Run("paging is validated", func(t *testing.T) {
		for _, ep := range []string{"/definition/page", "/credential/page", "/policy/rate-limit/page", "/access-log/page"} {
			for _, q := range []string{"pageSize=0", "pageSize=101", "pageSize=-1", "pageSize=abc", "pageNo=0", "pageNo=-2", "pageNo=x", "pageSize=1.5"} {
				r := g.call("GET", prefix+ep+"?"+q, "", "")
				if r.status != 400 || r.Code != 400 || !strings.Contains(r.Message, strings.SplitN(q, "=", 2)[0]) {
					t.Errorf("GET %s?%s: %s; want 400 naming the parameter", ep, q, r)
				}
			}
			for _, q := range []string{"pageSize=1", "pageSize=100", "pageNo=1", "pageNo=50&pageSize=100"} {
				if r := g.call("GET", prefix+ep+"?"+q, "", ""); r.status != 200 {
					t.Errorf("GET %s?%s: %s", ep, q, r)
				}
			}
		}
		for _, q := range []string{"status=4", "status=-1", "status=ok", "from=yesterday", "to=2025-13-01T00:00:00Z",
			"before=", "before=xyz", "before=0123456789abcdef0123456z", "noTotal=maybe", "noTotal=true&pageNo=2", "before=0123456789abcdef01234567&pageNo=3"} {
			if r := g.call("GET", prefix+"/access-log/page?"+q, "", ""); r.status != 400 {
				t.Errorf("access-log/page?%s: %s; want 400", q, r)
			}
		}
		for _, q := range []string{"id=", "id=nothing", "id=0123456789abcdef01234567"} {
			if r := g.call("GET", prefix+"/access-log/get?"+q, "", ""); r.status != 404 {
				t.Errorf("access-log/get?%s: %s; want 404", q, r)
			}
		}
	})

	t.Run("mutations answer 405 naming the file", func(t *testing.T) {
		for _, tc := range []struct{ path, want string }{
			{"/definition/t.one:v1", "apis/one.yaml"},
			{"/definition/t.two", "apis/two.yaml"},
			{"/definition/delete?id=t.draft:v1", "apis/draft.yaml"},
			{"/definition/update", "apis/"},
			{"/definition", "apis/"},
			{"/credential/get?id=shop", "credentials/shop.yaml"},
			{"/credential/broken", "credentials/broken.yaml"},
			{"/credential/create", "credentials/"},
			{"/credential", "credentials/"},
			{"/policy/rate-limit/p", "policies/p.yaml"},
			{"/policy/rate-limit/delete?id=q", "policies/q.yaml"},
			{"/policy/rate-limit/create", "policies/"},
			{"/policy", "policies/"},
			{"/version/rollback", "databus rollback"},
		} {
			for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
				r := g.call(m, prefix+tc.path, "", `{"code":"t.one"}`)
				if r.status != 405 || r.Code != 405 || !strings.Contains(r.Message, tc.want) || !strings.Contains(r.Message, "git") {
					t.Errorf("%s %s: %s; want 405 naming %s", m, tc.path, r, tc.want)
				}
				if allow := r.header.Get("Allow"); allow != "GET" {
					t.Errorf("%s %s: Allow %q", m, tc.path, allow)
				}
			}
		}
		// Nothing changed.
		if _, env := g.portalCall("GET", "t.one", "", "", ""); env["code"] != float64(200) {
			t.Errorf("t.one after the refused mutations: %v", env)
		}
	})
}

// TestOverview: the overview is the Snapshot in numbers and its problems,
// naming references, never values.
func TestOverview(t *testing.T) {
	g := start(t, gateway.Options{Dir: fullRepo(t, ""), NoWatch: true})
	var o struct {
		Revision    string            `json:"revision"`
		APIs        int               `json:"apis"`
		Online      int               `json:"online"`
		Credentials int               `json:"credentials"`
		Policies    int               `json:"policies"`
		KeyProblems map[string]string `json:"keyProblems"`
	}
	g.get(prefix+"/overview", "").data(t, &o)
	if o.Revision == "" || o.APIs != 5 || o.Online != 3 || o.Credentials != 2 || o.Policies != 2 ||
		len(o.KeyProblems) != 1 || !strings.Contains(o.KeyProblems["broken"], "ADMIN_TEST_UNSET_KEY") {
		t.Errorf("overview = %+v", o)
	}
	g.noSecrets()
}

// TestNoTokensNoAuth: without admin.tokens every endpoint answers without a
// token, and a token sent anyway is ignored.
func TestNoTokensNoAuth(t *testing.T) {
	g := start(t, gateway.Options{Dir: fullRepo(t, ""), NoWatch: true})
	for _, p := range []string{"/definition/page", "/definitions", "/credential/list-simple", "/policy/rate-limit/simple-list", "/access-log/page", "/reload/last"} {
		for _, tok := range []string{"", "anything"} {
			if r := g.call("GET", prefix+p, tok, ""); r.status != 200 || r.header.Get("WWW-Authenticate") != "" {
				t.Errorf("GET %s (token %q): %s", p, tok, r)
			}
		}
	}
	if r := g.call("POST", prefix+"/invoke", "", `{"apiCode":"t.two"}`); r.status != 200 {
		t.Errorf("invoke without a token: %s", r)
	}
	if r := g.call("POST", prefix+"/cache/refresh", "", ""); r.status != 200 {
		t.Errorf("refresh without a token: %s", r)
	}
	g.noSecrets()
}

// TestTokensThatDoNotResolve: admin.tokens configured but none resolves:
// the listener still asks for a token (it never falls open).
func TestTokensThatDoNotResolve(t *testing.T) {
	for _, name := range []string{"ADMIN_TEST_VIEWER", "ADMIN_TEST_REGISTRY"} {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
	t.Setenv("ADMIN_TEST_OPERATOR", "") // empty: does not resolve either
	g := start(t, gateway.Options{Dir: fullRepo(t, adminTokens), NoWatch: true})
	for _, tok := range []string{"", "x"} {
		if r := g.call("GET", prefix+"/definitions", tok, ""); r.status != 401 {
			t.Errorf("GET definitions with unresolved admin tokens (token %q): %s; want 401", tok, r)
		}
	}
}

// refreshResult is the data of cache/refresh and reload/last.
type refreshResult struct {
	OK       bool   `json:"ok"`
	Changed  bool   `json:"changed"`
	Reason   string `json:"reason"`
	Revision string `json:"revision"`
	Errors   []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Message string `json:"message"`
	} `json:"errors"`
}

func TestCacheRefresh(t *testing.T) {
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken)
	dir := fullRepo(t, adminTokens)
	g := start(t, gateway.Options{Dir: dir, NoWatch: true})
	rev0 := g.srv.Current().Revision
	value := func() string {
		_, env := g.portalCall("GET", "t.one", "", "", "")
		resp, _ := env["response"].(map[string]any)
		return fmt.Sprint(resp["v"])
	}
	if v := value(); v != "one" {
		t.Fatalf("t.one answers %q", v)
	}

	// An edit is not seen without a refresh (no watcher).
	writeFiles(t, dir, map[string]string{"apis/one.yaml": scriptAPI("t.one", "online", "policies: {rateLimit: p}\n", "edited")})
	if v := value(); v != "one" {
		t.Fatalf("t.one changed without a refresh: %q", v)
	}
	var res refreshResult
	r := g.call("POST", prefix+"/cache/refresh", operatorToken, "")
	r.data(t, &res)
	if r.status != 200 || !res.OK || !res.Changed || res.Revision == "" || res.Revision == rev0 || res.Reason != "cache/refresh" {
		t.Fatalf("refresh after an edit: %s", r)
	}
	if cur := g.srv.Current().Revision; cur != res.Revision {
		t.Errorf("refresh answered revision %s; serving %s", res.Revision, cur)
	}
	if v := value(); v != "edited" {
		t.Errorf("t.one after refresh answers %q", v)
	}
	var def struct {
		Steps []struct {
			Script struct {
				Source string `json:"source"`
			} `json:"script"`
		} `json:"steps"`
	}
	g.get(prefix+"/definition/t.one:v1", operatorToken).data(t, &def)
	if len(def.Steps) != 3 || !strings.Contains(def.Steps[1].Script.Source, "edited") {
		t.Errorf("definition after refresh: %+v", def)
	}
	var last refreshResult
	g.get(prefix+"/reload/last", operatorToken).data(t, &last)
	if !last.OK || last.Revision != res.Revision || last.Reason != "cache/refresh" {
		t.Errorf("reload/last after refresh: %+v", last)
	}

	// Refresh with nothing changed: ok, not changed, same revision.
	g.call("POST", prefix+"/cache/refresh", operatorToken, "").data(t, &res)
	if !res.OK || res.Changed || res.Revision != last.Revision {
		t.Errorf("refresh without a change: %+v", res)
	}

	// An invalid edit: refresh answers the errors with file:line; the old
	// configuration keeps serving.
	good := g.srv.Current().Revision
	writeFiles(t, dir, map[string]string{"apis/one.yaml": scriptAPI("t.one", "online", "bogusKey: 1\n", "broken")})
	r = g.call("POST", prefix+"/cache/refresh", operatorToken, "")
	var bad refreshResult
	r.data(t, &bad)
	if r.status != 200 || bad.OK || bad.Changed || len(bad.Errors) == 0 {
		t.Fatalf("refresh of an invalid edit: %s", r)
	}
	if e := bad.Errors[0]; e.File != "apis/one.yaml" || e.Line != 7 || e.Column < 1 || !strings.Contains(e.Message, "bogusKey") {
		t.Errorf("refresh error = %+v; want apis/one.yaml:7 naming bogusKey", e)
	}
	if v := value(); v != "edited" {
		t.Errorf("after an invalid refresh t.one answers %q; want the previous configuration", v)
	}
	if g.srv.Current().Revision != good {
		t.Error("an invalid refresh replaced the configuration")
	}
	g.get(prefix+"/reload/last", operatorToken).data(t, &last)
	if last.OK || len(last.Errors) == 0 || last.Errors[0].File != "apis/one.yaml" || last.Errors[0].Line != 7 {
		t.Errorf("reload/last after an invalid refresh: %+v", last)
	}
	// Readiness shows it too, and the gateway is still ready.
	resp, err := g.client.Get(g.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Ready      bool          `json:"ready"`
		Revision   string        `json:"revision"`
		LastReload refreshResult `json:"lastReload"`
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != 200 || !ready.Ready || ready.Revision != good || ready.LastReload.OK {
		t.Errorf("readyz after an invalid refresh: %d %+v", resp.StatusCode, ready)
	}

	// Fixing the file and refreshing again brings it back.
	writeFiles(t, dir, map[string]string{"apis/one.yaml": scriptAPI("t.one", "online", "", "fixed")})
	g.call("POST", prefix+"/cache/refresh", operatorToken, "").data(t, &res)
	if !res.OK || !res.Changed || value() != "fixed" {
		t.Errorf("refresh after the fix: %+v, t.one answers %q", res, value())
	}
	g.noSecrets()
}

// invokeResult is the data of a debug invoke.
type invokeResult struct {
	Envelope struct {
		Code     int             `json:"code"`
		Message  string          `json:"message"`
		Response json.RawMessage `json:"response"`
		TraceID  string          `json:"traceId"`
	} `json:"envelope"`
	StepResults []struct {
		ID      string  `json:"id"`
		Type    string  `json:"type"`
		Elapsed float64 `json:"elapsedMs"`
		Error   string  `json:"error"`
	} `json:"stepResults"`
	TraceID string `json:"traceId"`
	Draft   bool   `json:"draft"`
	Errors  []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Column  int    `json:"column"`
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"errors"`
}

func TestInvoke(t *testing.T) {
	g := start(t, gateway.Options{Dir: fullRepo(t, "storage:\n  accessLog: {redactHeaders: [Authorization, X-Api-Key]}\n"), NoWatch: true})
	invoke := func(t *testing.T, body string) (reply, invokeResult) {
		t.Helper()
		var res invokeResult
		r := g.call("POST", prefix+"/invoke", "", body)
		if len(r.Data) > 0 && string(r.Data) != "null" {
			r.data(t, &res)
		}
		return r, res
	}
	checkRecord := func(t *testing.T, res invokeResult, apiCode string, draft bool, status int) record {
		t.Helper()
		rec := g.waitLog(url.Values{"traceId": {res.TraceID}}, "", 1).List[0]
		if rec.Extra["debug"] != true || rec.Extra["draft"] != draft || rec.APICode != apiCode || rec.HTTPStatus != status ||
			rec.Path != prefix+"/invoke" || len(rec.StepResults) != len(res.StepResults) {
			t.Errorf("access-log record of the invoke: %+v", rec)
		}
		// The record is found by apiCode too, as a portal call would be.
		found := false
		for _, r := range g.logPage(url.Values{"apiCode": {apiCode}, "pageSize": {"100"}}, "").List {
			found = found || r.TraceID == res.TraceID
		}
		if !found {
			t.Errorf("invoke of %s not found by apiCode", apiCode)
		}
		return rec
	}

	t.Run("repository API", func(t *testing.T) {
		r, res := invoke(t, `{"apiCode":"t.one","version":"v1","method":"POST","body":{"name":"Ada"},
			"headers":{"X-Api-Key":"k-123","X-Plain":"p"},"query":{"page":"2"},"appId":"shop","tenantId":"7"}`)
		if r.status != 200 || res.Envelope.Code != 200 || res.Envelope.Message != "OK" || res.Draft ||
			res.TraceID == "" || res.Envelope.TraceID != res.TraceID {
			t.Fatalf("invoke t.one: %s", r)
		}
		if !jsonEq(res.Envelope.Response, `{"v":"one","body":{"name":"Ada"}}`) {
			t.Errorf("invoke t.one response %s", res.Envelope.Response)
		}
		if len(res.StepResults) != 3 || res.StepResults[1].ID != "s" || res.StepResults[1].Type != "script" {
			t.Errorf("invoke t.one steps %+v", res.StepResults)
		}
		rec := checkRecord(t, res, "t.one", false, 200)
		if rec.AppID != "shop" || rec.Method != "POST" || rec.RequestBody != `{"name":"Ada"}` ||
			rec.RequestHeaders["X-Api-Key"] != "***" || rec.RequestHeaders["X-Plain"] != "p" {
			t.Errorf("invoke record %+v", rec)
		}
		// A debug invoke is not a portal request: it is not counted as one.
		if strings.Contains(metrics(t, g), `databus_requests_total{api="t.one"`) {
			t.Error("the debug invoke counted as a portal request")
		}
	})
	t.Run("draft API of the repository", func(t *testing.T) {
		r, res := invoke(t, `{"apiCode":"t.draft"}`)
		if r.status != 200 || res.Envelope.Code != 200 || !strings.Contains(string(res.Envelope.Response), `"v":"draft"`) {
			t.Fatalf("invoke t.draft: %s", r)
		}
		checkRecord(t, res, "t.draft", false, 200)
		// The portal does not serve it.
		if st, _ := g.portalCall("GET", "t.draft", "", "", ""); st != 404 {
			t.Errorf("portal t.draft: %d", st)
		}
	})
	t.Run("offline API of the repository", func(t *testing.T) {
		r, res := invoke(t, `{"apiCode":"t.off","version":"v1","method":"GET"}`)
		if r.status != 200 || res.Envelope.Code != 200 || !strings.Contains(string(res.Envelope.Response), `"v":"off"`) {
			t.Fatalf("invoke t.off: %s", r)
		}
	})
	t.Run("failing API", func(t *testing.T) {
		r, res := invoke(t, `{"apiCode":"t.fail"}`)
		if r.status != 200 || res.Envelope.Code != 500 || !strings.Contains(res.Envelope.Message, "boom") {
			t.Fatalf("invoke t.fail: %s", r)
		}
		rec := checkRecord(t, res, "t.fail", false, 500)
		if rec.Status != 2 || rec.ErrorCode != "flow" || !strings.Contains(rec.ErrorMessage, "boom") {
			t.Errorf("record of a failed invoke: %+v", rec)
		}
	})
	draftDef := map[string]any{
		"apiVersion": "databus/v1", "kind": "Api", "code": "try.me", "version": "v1", "status": "draft", "methods": []string{"POST"},
		"steps": []any{
			map[string]any{"id": "start", "type": "start"},
			map[string]any{"id": "s", "type": "script", "script": map[string]any{"source": "function main(c) { return {echo: c.request.body, kind: 'json'} }"}},
			map[string]any{"id": "end", "type": "end"},
		},
	}
	t.Run("inline draft as a JSON object", func(t *testing.T) {
		def, _ := json.Marshal(draftDef)
		r, res := invoke(t, `{"definition":`+string(def)+`,"body":{"hello":"draft"}}`)
		if r.status != 200 || res.Envelope.Code != 200 || !res.Draft ||
			!jsonEq(res.Envelope.Response, `{"echo":{"hello":"draft"},"kind":"json"}`) {
			t.Fatalf("invoke of a JSON draft: %s", r)
		}
		checkRecord(t, res, "try.me", true, 200)
		// A draft is not added to the repository.
		if r := g.call("GET", prefix+"/definition/try.me:v1", "", ""); r.status != 404 {
			t.Errorf("the draft became a definition: %s", r)
		}
	})
	t.Run("inline draft as YAML text", func(t *testing.T) {
		yml := "apiVersion: databus/v1\nkind: Api\ncode: try.yaml\nversion: v2\nstatus: draft\nmethods: [PUT]\n" +
			"input: {type: object, required: [n]}\n" +
			"steps:\n  - {id: start, type: start}\n  - id: s\n    type: script\n" +
			"    script: {source: 'function main(c) { return {n: c.request.body.n * 2, m: c.request.method} }'}\n  - {id: end, type: end}\n"
		def, _ := json.Marshal(yml)
		r, res := invoke(t, `{"definition":`+string(def)+`,"body":{"n":21}}`)
		if r.status != 200 || res.Envelope.Code != 200 || !jsonEq(res.Envelope.Response, `{"n":42,"m":"PUT"}`) {
			t.Fatalf("invoke of a YAML draft: %s", r)
		}
		rec := checkRecord(t, res, "try.yaml", true, 200)
		if rec.Version != "v2" || rec.Method != "PUT" {
			t.Errorf("YAML draft record: %+v", rec)
		}
		// Its input schema applies: 400 in the envelope.
		_, res = invoke(t, `{"definition":`+string(def)+`,"body":{"x":1}}`)
		if res.Envelope.Code != 400 {
			t.Errorf("YAML draft with an invalid body: %+v", res.Envelope)
		}
	})
	t.Run("invalid drafts", func(t *testing.T) {
		for name, tc := range map[string]struct {
			def       string
			line, col int
			what      string
		}{
			"unknown key (YAML)": {jsonString("apiVersion: databus/v1\nkind: Api\ncode: bad.one\nversion: v1\nstatus: draft\nmethods: [GET]\nbogus: 1\n" +
				"steps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"), 7, 1, "bogus"},
			"bad jq (YAML)": {jsonString("apiVersion: databus/v1\nkind: Api\ncode: bad.two\nversion: v1\nstatus: draft\nmethods: [GET]\n" +
				"transforms: {response: '.a |||'}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"), 7, 0, "transforms"},
			"no end step (JSON object)": {`{"apiVersion":"databus/v1","kind":"Api","code":"bad.three","version":"v1","status":"draft","methods":["GET"],` +
				`"steps":[{"id":"start","type":"start"}]}`, 1, 0, "steps"},
			"missing policy (YAML)": {jsonString("apiVersion: databus/v1\nkind: Api\ncode: bad.four\nversion: v1\nstatus: draft\nmethods: [GET]\n" +
				"policies: {rateLimit: nowhere}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"), 7, 0, "nowhere"},
			// Only a build finds it: the draft passes the same gate as a file.
			"script top level throws (YAML)": {jsonString("apiVersion: databus/v1\nkind: Api\ncode: bad.five\nversion: v1\nstatus: draft\nmethods: [GET]\n" +
				"steps:\n  - {id: start, type: start}\n  - id: s\n    type: script\n    script:\n      source: |\n        var x = 1;\n        throw new Error(\"not ready\");\n" +
				"        function main(c) { return x }\n  - {id: end, type: end}\n"), 14, 15, "script top level throws: Error: not ready"},
		} {
			r, res := invoke(t, `{"definition":`+tc.def+`}`)
			if r.status != 400 || r.Code != 400 || !res.Draft || len(res.Errors) == 0 {
				t.Errorf("%s: %s; want 400 with data.errors", name, r)
				continue
			}
			e := res.Errors[0]
			if e.Line != tc.line || e.Column < 1 || (tc.col > 0 && e.Column != tc.col) || !strings.Contains(e.Message+e.Path, tc.what) {
				t.Errorf("%s: first error %+v; want line %d naming %q", name, e, tc.line, tc.what)
			}
		}
	})
	t.Run("drafts that are no API", func(t *testing.T) {
		for _, def := range []string{
			jsonString("apiVersion: databus/v1\nkind: Credential\nappId: x\nenabled: true\nsignatureType: MD5\nencryptionType: NONE\n"),
			jsonString(""), `""`, `42`, `[]`, `{}`, jsonString("steps: [\n"), `"---\n---\n"`,
		} {
			r, res := invoke(t, `{"definition":`+def+`}`)
			if r.status != 400 || r.Code != 400 || !res.Draft || len(res.Errors) == 0 || res.Errors[0].Message == "" {
				t.Errorf("draft %s: %s; want 400 with data.errors saying why", def, r)
			}
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, tc := range []struct {
			body   string
			status int
		}{
			{`{"apiCode":"t.none","version":"v1"}`, 404},
			{`{"apiCode":"t.one","version":"v9"}`, 404},
			{`{}`, 404},
			{`not json`, 400},
			{`{"apiCode":"t.one","unknown":1}`, 400},
		} {
			if r, _ := invoke(t, tc.body); r.status != tc.status {
				t.Errorf("invoke %s: %s; want %d", tc.body, r, tc.status)
			}
		}
		// Wrong methods and unknown paths answer in the admin envelope too.
		for _, tc := range []struct {
			method, path string
			status       int
			allow        string
		}{
			{"GET", "/invoke", 405, "POST"},
			{"GET", "/cache/refresh", 405, "POST"},
			{"POST", "/access-log/page", 405, "GET"},
			{"DELETE", "/reload/last", 405, "GET"},
			{"GET", "/nothing/here", 404, ""},
			{"POST", "/nothing", 404, ""},
		} {
			r := g.call(tc.method, prefix+tc.path, "", "")
			if r.status != tc.status || r.header.Get("Allow") != tc.allow {
				t.Errorf("%s %s: %s (Allow %q); want %d", tc.method, tc.path, r, r.header.Get("Allow"), tc.status)
			}
		}
	})
	g.noSecrets()
}

// jsonEq reports whether got holds the same JSON value as want.
func jsonEq(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func metrics(t *testing.T, g *gw) string {
	t.Helper()
	resp, err := g.client.Get(g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestAccessLogFilters makes portal calls of several kinds and finds them
// again through every filter of access-log/page.
func TestAccessLogFilters(t *testing.T) {
	g := start(t, gateway.Options{Dir: fullRepo(t, ""), NoWatch: true})

	type call struct{ method, code, trace, app string }
	batchA := []call{
		{"GET", "t.one", "a-1", "shop"},
		{"POST", "t.one", "a-2", "shop"},
		{"GET", "t.two", "a-3", "mall"},
		{"PUT", "t.one", "a-4", "shop"}, // 405
		{"GET", "t.fail", "a-5", "mall"},
	}
	batchB := []call{
		{"GET", "t.two", "b-1", "mall"},
		{"GET", "t.none", "b-2", "shop"}, // 404: no API
		{"GET", "t.one", "b-3", "mall"},
	}
	run := func(calls []call) {
		for _, c := range calls {
			g.portalCall(c.method, c.code, c.trace, c.app, "")
		}
	}
	run(batchA)
	time.Sleep(3 * time.Millisecond) // the boundary falls in a millisecond of its own
	mid := time.Now()
	time.Sleep(3 * time.Millisecond)
	run(batchB)
	all := g.waitLog(url.Values{"pageSize": {"100"}}, "", 8)

	traces := func(p recordPage) string {
		var out []string
		for _, r := range p.List {
			out = append(out, r.TraceID)
		}
		return strings.Join(out, " ")
	}
	// Newest first.
	if got := traces(all); got != "b-3 b-2 b-1 a-5 a-4 a-3 a-2 a-1" {
		t.Errorf("access-log/page = %s; want newest first", got)
	}
	midMs := strconv.FormatInt(mid.UnixMilli(), 10)
	for q, want := range map[string]string{
		"traceId=a-3":              "a-3",
		"traceId=a":                "", // exact, not a prefix
		"apiCode=t.one":            "b-3 a-4 a-2 a-1",
		"apiCode=t.two":            "b-1 a-3",
		"apiCode=t.none":           "", // an API that does not exist is not named in its record
		"appId=mall":               "b-3 b-1 a-5 a-3",
		"appId=shop&apiCode=t.one": "a-4 a-2 a-1",
		"status=0":                 "b-3 b-1 a-3 a-2 a-1",
		"status=1":                 "b-2 a-4",
		"status=2":                 "a-5",
		"status=3":                 "",
		"status=1&apiCode=t.one":   "a-4",
		"from=" + midMs:            "b-3 b-2 b-1",
		"to=" + midMs:              "a-5 a-4 a-3 a-2 a-1",
		"from=" + mid.UTC().Format(time.RFC3339Nano):               "b-3 b-2 b-1",
		"to=" + mid.UTC().Format(time.RFC3339Nano) + "&appId=shop": "a-4 a-2 a-1",
		"from=" + midMs + "&apiCode=t.one":                         "b-3",
		"from=" + midMs + "&traceId=a-1":                           "",
		"to=" + midMs + "&traceId=a-1":                             "a-1",
		"pageSize=3":                                               "b-3 b-2 b-1",
		"pageSize=3&pageNo=2":                                      "a-5 a-4 a-3",
		"pageSize=3&pageNo=3":                                      "a-2 a-1",
		"pageSize=3&pageNo=4":                                      "",
		"apiCode=t.one&pageSize=2&pageNo=2":                        "a-2 a-1",
	} {
		v, err := url.ParseQuery(q)
		if err != nil {
			t.Fatal(err)
		}
		p := g.logPage(v, "")
		if got := traces(p); got != want {
			t.Errorf("access-log/page?%s = %q; want %q", q, got, want)
		}
		if !v.Has("pageSize") && p.Total != len(p.List) {
			t.Errorf("access-log/page?%s: total %d, %d records", q, p.Total, len(p.List))
		}
	}
	if p := g.logPage(url.Values{"pageSize": {"3"}, "pageNo": {"2"}}, ""); p.Total != 8 {
		t.Errorf("total on page 2 = %d; want 8", p.Total)
	}

	// By cursor: noTotal=true for the first page, then before=<next>; no
	// total, and next is "" after the last page.
	for q, want := range map[string]string{
		"":                       "b-3 b-2 b-1 | a-5 a-4 a-3 | a-2 a-1",
		"apiCode=t.one":          "b-3 a-4 a-2 | a-1",
		"appId=mall":             "b-3 b-1 a-5 | a-3",
		"to=" + midMs:            "a-5 a-4 a-3 | a-2 a-1",
		"from=" + midMs:          "b-3 b-2 b-1",
		"status=1&apiCode=t.one": "a-4",
	} {
		v, _ := url.ParseQuery(q)
		v.Set("noTotal", "true")
		v.Set("pageSize", "3")
		var pages []string
		for range 10 {
			var raw map[string]json.RawMessage
			g.get(prefix+"/access-log/page?"+v.Encode(), "").data(t, &raw)
			var p struct {
				List []record `json:"list"`
				Next string   `json:"next"`
			}
			b, _ := json.Marshal(raw)
			json.Unmarshal(b, &p)
			if _, has := raw["total"]; has {
				t.Errorf("access-log/page?%s answered a total", v.Encode())
			}
			pages = append(pages, traces(recordPage{List: p.List}))
			if p.Next == "" {
				break
			}
			if p.Next != p.List[len(p.List)-1].ID {
				t.Errorf("next %q is not the last record listed", p.Next)
			}
			v.Del("noTotal")
			v.Set("before", p.Next)
		}
		if got := strings.Join(pages, " | "); got != want {
			t.Errorf("access-log/page?%s&noTotal=true by cursor = %q; want %q", q, got, want)
		}
	}

	// get by id returns the same record as the page, with its steps.
	for _, r := range all.List {
		var one record
		g.get(prefix+"/access-log/get?id="+url.QueryEscape(r.ID), "").data(t, &one)
		if one.ID != r.ID || one.TraceID != r.TraceID || one.HTTPStatus != r.HTTPStatus || len(one.StepResults) != len(r.StepResults) {
			t.Errorf("access-log/get?id=%s = %+v; page had %+v", r.ID, one, r)
		}
	}
	byTrace := map[string]record{}
	for _, r := range all.List {
		byTrace[r.TraceID] = r
	}
	for trace, want := range map[string]struct {
		http, status int
		code         string
	}{
		"a-1": {200, 0, ""}, "a-4": {405, 1, "method"}, "a-5": {500, 2, "flow"}, "b-2": {404, 1, "route"},
	} {
		r := byTrace[trace]
		if r.HTTPStatus != want.http || r.Status != want.status || r.ErrorCode != want.code {
			t.Errorf("record %s: http %d status %d errorCode %q; want %d %d %q", trace, r.HTTPStatus, r.Status, r.ErrorCode, want.http, want.status, want.code)
		}
	}
	if r := byTrace["a-1"]; r.APICode != "t.one" || r.Version != "v1" || r.AppID != "shop" || r.Method != "GET" ||
		r.Path != basePath+"/t.one/v1" || r.StartedAt.IsZero() || len(r.StepResults) != 3 {
		t.Errorf("record a-1: %+v", r)
	}
}
