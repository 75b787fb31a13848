package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(1)>`
	opsToken  = "ops-token-0123456789"
	regToken  = "registry-token-0123456789"
	shopKey   = "K3y-Sup3r-S3cret" // 16 bytes: an AES-128 key
	repoURL   = "https://git.example.com/org/config/blob/main"
)

const settingsWithTokens = `
apiVersion: databus/v1
kind: Settings
apiPortal:
  basePath: /api
  security:
    enabled: false
admin:
  tokens:
    - {name: ops, role: operator, secret: {secretRef: 'env:UI_TEST_OPS'}}
    - {name: reg, role: registry, secret: {secretRef: 'env:UI_TEST_REG'}}
ui:
  repoUrl: ` + repoURL + `
telemetry:
  traceUrl: https://jaeger.example/trace/{traceId}
`

// evilAPI carries hostile text in what the pages show from config.
const evilAPI = `
apiVersion: databus/v1
kind: Api
code: evil.api
version: v1
description: '` + xssScript + `'
status: draft
methods: [GET]
steps:
  - {id: start, type: start}
  - id: fetch
    type: http
    description: '` + xssAttr + `'
    http: {method: GET, url: 'http://127.0.0.1:9/x?a=<b>'}
  - {id: end, type: end}
`

type fixture struct {
	t      *testing.T
	h      http.Handler
	sample *gitopstest.SampleRepo
	git    *gitops.Repo
	snap   *snapshot.Snapshot // the one serving
	reload *Reload
	evilID string // the hostile record's id
	okID   string
}

type opts struct {
	tokens bool
	dirty  bool
	noGit  bool          // serve the files as if they were not a git checkout
	uptime time.Duration // how long the traffic has been counted; 0: two hours
}

func newFixture(t *testing.T, o opts) *fixture {
	t.Helper()
	t.Setenv("SHOP_KEY", shopKey)
	t.Setenv("UI_TEST_OPS", opsToken)
	t.Setenv("UI_TEST_REG", regToken)
	s := gitopstest.Sample(t, "")
	s.Write("apis/evil.yaml", evilAPI)
	if o.tokens {
		s.Write("databus.yaml", settingsWithTokens)
	}
	s.Commit("Add evil.api")
	if o.dirty {
		s.Write("policies/standard.yaml", gitopstest.StandardV1)
	}
	g, err := gitops.Open(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if o.noGit {
		g = nil
	}
	snap := loadSnapshot(t, s.Dir, g)
	db, err := store.Open(filepath.Join(t.TempDir(), "log.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := db.AccessLog(store.LogOptions{Sync: true, PruneEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close(); db.Close() })
	now := time.Now()
	good := &store.Record{TraceID: "trace-ok-1", APICode: "order.create", Version: "v1", AppID: "shop", Method: "POST",
		Path: "/api/order.create/v1", HTTPStatus: 200, StartedAt: now.Add(-2 * time.Minute), DurationMs: 12.5,
		RequestBody: `{"orderNo":"A-1"}`, ResponseBody: `{"code":200}`,
		StepResults: []store.StepRecord{{ID: "score", Type: "script", ElapsedMs: 2}, {ID: "create", Type: "http", Status: 201, ElapsedMs: 9}}}
	evil := &store.Record{TraceID: xssScript, APICode: xssAttr, Version: "v1", AppID: xssScript, ClientIP: xssAttr,
		Method: "POST", Path: "/api/" + xssAttr, HTTPStatus: 500, StartedAt: now.Add(-time.Minute), DurationMs: 3,
		RequestHeaders: map[string]string{xssScript: xssAttr, "User-Agent": xssScript},
		RequestBody:    xssScript + xssAttr, ResponseBody: xssAttr + xssScript, ErrorCode: xssAttr, ErrorMessage: xssScript,
		StepResults: []store.StepRecord{{ID: xssScript, Type: xssAttr, Error: xssScript, ElapsedMs: 1,
			Request: map[string]any{"x": xssScript}, Response: xssAttr}},
		Extra: map[string]any{xssScript: xssAttr}}
	redirect := &store.Record{TraceID: "trace-redirect-1", APICode: "order.create", Version: "v1", AppID: "shop", Method: "GET",
		Path: "/api/order.create/v1", HTTPStatus: 302, StartedAt: now.Add(-90 * time.Second), DurationMs: 1}
	acc.Append(good)
	acc.Append(evil)
	acc.Append(redirect)
	var series metrics.Series
	if o.uptime == 0 {
		o.uptime = 2 * time.Hour
	}
	series.Start(now.Add(-o.uptime))
	series.Add(now.Add(-3*time.Minute), false)
	series.Add(now.Add(-3*time.Minute), false)
	series.Add(now.Add(-time.Minute), true)
	f := &fixture{t: t, sample: s, git: g, snap: snap, evilID: evil.ID, okID: good.ID,
		reload: &Reload{At: now, Reason: "start", OK: true, Revision: snap.Revision}}
	u := New(Source{
		Current:    func() *snapshot.Snapshot { return f.snap },
		LastReload: func() *Reload { return f.reload },
		Git:        func() *gitops.Repo { return g },
		AccessLog:  acc,
		Traffic:    series.Window,
	})
	mux := http.NewServeMux()
	u.Register(mux)
	f.h = mux
	return f
}

// loadSnapshot loads the repository dir, checked out in g, as a reload
// would.
func loadSnapshot(t *testing.T, dir string, g *gitops.Repo) *snapshot.Snapshot {
	t.Helper()
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	var rev *revision.Revision
	if g != nil {
		r, err := g.Revision()
		if err != nil {
			t.Fatal(err)
		}
		rev = &r
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: &flow.Env{Client: http.DefaultClient, DefaultTimeout: time.Second}, Git: rev})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

type result struct {
	*http.Response
	Body string
}

func (f *fixture) do(method, target string, form url.Values, hdr map[string]string, cookies ...*http.Cookie) result {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	res := w.Result()
	b, _ := io.ReadAll(res.Body)
	return result{res, string(b)}
}

func (f *fixture) get(target string, cookies ...*http.Cookie) result {
	f.t.Helper()
	return f.do(http.MethodGet, target, nil, nil, cookies...)
}

func has(t *testing.T, page, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: missing %q", page, w)
		}
	}
}

func noRaw(t *testing.T, page, body string) {
	t.Helper()
	for _, bad := range []string{"<script>alert", "<img src=x", "onerror=alert(1)>", `"><img`} {
		if strings.Contains(body, bad) {
			i := strings.Index(body, bad)
			t.Errorf("%s: unescaped %q at ...%s...", page, bad, body[max(0, i-80):min(len(body), i+80)])
		}
	}
}

var nav = []string{`id="nav-overview" href="/ui/"`, `id="nav-apis" href="/ui/apis"`, `id="nav-credentials"`, `id="nav-policies"`, `id="nav-access-log"`, `id="nav-registry"`}

func TestPages(t *testing.T) {
	f := newFixture(t, opts{})
	orderVersions, err := gitops.Open(f.sample.Dir)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := orderVersions.VersionsOfAPI("order.create", "v1")
	if err != nil || len(vs) < 3 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	pages := map[string][]string{
		"/ui/": {`id="revision" title="` + f.snap.Git.Hash + `">` + f.snap.Git.Short + `<`, `id="reload-status"`, `>ok<`, `id="count-apis">2<`, `id="count-credentials">1<`,
			`id="count-policies">1<`, `<svg id="traffic-chart"`, `id="request-rate">0.05<`, `id="rate-span">over the last hour<`, `id="error-rate">33.3%<`},
		"/ui/apis":                 {`<table id="apis">`, `class="api-row"`, `class="api-link" href="/ui/apis/order.create:v1"`, `badge-online">online<`, `POST`, `standard`},
		"/ui/apis?q=evil":          {`href="/ui/apis/evil.api:v1"`, `name="q" value="evil"`},
		"/ui/apis/order.create:v1": {`<svg id="flow"`, `class="flow-step type-start"`, `class="flow-step type-script"`, `>score `, `http://orders.internal:9001/orders`, `class="flow-step type-end"`, `id="versions"`, `class="version"`, `class="version-link" href="/ui/apis/order.create:v1/versions/` + vs[0].Hash + `"`, `class="diff-link" href="/ui/apis/order.create:v1/diff?from=` + vs[1].Hash + `&to=` + vs[0].Hash + `"`, `id="curl"`, `databus sign order.create:v1 --app &#39;shop&#39; --body &#39;{}&#39;`, `curl -sS -X POST &#39;http://127.0.0.1:8080/api/order.create/v1&#39;`, `-H &#39;Content-Type: text/plain; charset=utf-8&#39;`, `--data-binary &#39;&lt;the body, encrypted: see databus sign&gt;&#39;`, `id="edit-file"`, `apis/orders/create.yaml`, `{orderNo: .steps.create.id}`},
		"/ui/apis/order.create:v1/versions/" + vs[2].Hash[:8]:                    {`<pre id="file-content"`, `status: draft`},
		"/ui/apis/order.create:v1/diff?from=" + vs[2].Hash + "&to=" + vs[1].Hash: {`id="diff"`, `class="diff-add"`, `class="diff-del"`, `class="diff-ctx`, `<ul id="changes"`, `<code>status</code> changed`},
		"/ui/credentials":                     {`<table id="credentials">`, `class="credential-row"`, `env:SHOP_KEY`, `<span class="resolved">`},
		"/ui/policies":                        {`<table id="policies">`, `standard`, `order.create:v1`},
		"/ui/access-log":                      {`<form id="access-log-filter"`, `name="traceId"`, `name="apiCode"`, `name="appId"`, `name="status"`, `name="from"`, `name="to"`, `id="filter"`, `<table id="records">`, `class="record-link" href="/ui/access-log/` + f.okID + `"`, `<td class="trace"><code>trace-ok-1</code></td>`},
		"/ui/access-log?apiCode=order.create": {`trace-ok-1`},
		"/ui/access-log/" + f.okID:            {`id="trace-id">trace-ok-1<`, `id="http-status"`, `>200<`, `<svg id="timeline"`, `class="timeline-step ok"`, `<pre id="request-body">{&#34;orderNo&#34;:&#34;A-1&#34;}</pre>`, `<pre id="response-body">`},
		"/ui/registry":                        {`id="registry-empty"`},
	}
	for path, want := range pages {
		res := f.get(path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %s", path, res.StatusCode, res.Body)
			continue
		}
		has(t, path, res.Body, want...)
		has(t, path, res.Body, nav...)
		if !regexp.MustCompile(`<h1>[^<]+</h1>`).MatchString(res.Body) {
			t.Errorf("%s: no h1", path)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if res.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: X-Frame-Options %q", path, res.Header.Get("X-Frame-Options"))
		}
		if strings.Contains(res.Body, "<script>") || regexp.MustCompile(`<[^>]*\son[a-z]+=`).MatchString(res.Body) {
			t.Errorf("%s: inline script or handler", path)
		}
		noRaw(t, path, res.Body)
	}
	// The access-log filter: only the matching record.
	res := f.get("/ui/access-log?traceId=trace-ok-1")
	if n := strings.Count(res.Body, `<tr class="record`); n != 1 {
		t.Errorf("filtered by traceId: %d records", n)
	}
	if res := f.get("/ui/access-log?status=9"); res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Body, "expected an HTTP status (404) or a class") {
		t.Errorf("bad status filter: %d", res.StatusCode)
	}
	// Not dirty: no #dirty.
	if strings.Contains(f.get("/ui/").Body, `id="dirty"`) {
		t.Error("clean checkout shows dirty")
	}
	// The flow has one g per step; versions one li each, the first without a diff.
	api := f.get("/ui/apis/order.create:v1").Body
	if n := strings.Count(api, `<g class="flow-step`); n != 4 {
		t.Errorf("flow steps: %d", n)
	}
	if n := strings.Count(api, `<li class="version">`); n != len(vs) {
		t.Errorf("versions: %d, want %d", n, len(vs))
	}
	if n := strings.Count(api, `class="diff-link"`); n != len(vs)-1 {
		t.Errorf("diff links: %d, want %d", n, len(vs)-1)
	}
}

func TestStaticAndNotFound(t *testing.T) {
	f := newFixture(t, opts{})
	for _, p := range []string{"/ui/static/ui.css", "/ui/static/ui.js"} {
		if res := f.get(p); res.StatusCode != 200 || len(res.Body) < 100 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	for _, p := range []string{"/ui/apis/nope:v1", "/ui/apis/nope:v1/versions/abcdef", "/ui/apis/order.create:v1/versions/abcdef12",
		"/ui/apis/order.create:v1/diff?from=abcd&to=ef01", "/ui/access-log/0000000000000000", "/ui/access-log/" + url.PathEscape(xssScript), "/ui/nothing"} {
		res := f.get(p)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
		has(t, p, res.Body, nav...)
		noRaw(t, p, res.Body)
	}
}

func TestHostileTextEscaped(t *testing.T) {
	f := newFixture(t, opts{})
	for _, p := range []string{
		"/ui/access-log",
		"/ui/access-log/" + f.evilID,
		"/ui/access-log?traceId=" + url.QueryEscape(xssScript) + "&apiCode=" + url.QueryEscape(xssAttr) + "&appId=" + url.QueryEscape(xssAttr) + "&from=" + url.QueryEscape(xssAttr),
		"/ui/access-log?traceId=" + url.QueryEscape(xssScript),
		"/ui/apis?q=" + url.QueryEscape(xssAttr),
		"/ui/apis",
		"/ui/apis/evil.api:v1",
		"/ui/apis/" + url.PathEscape(xssScript),
		"/ui/login?next=" + url.QueryEscape("/ui/"+xssAttr),
	} {
		res := f.get(p)
		noRaw(t, p, res.Body)
	}
	rec := f.get("/ui/access-log/" + f.evilID)
	if rec.StatusCode != 200 {
		t.Fatalf("record: %d", rec.StatusCode)
	}
	has(t, "record", rec.Body, `id="trace-id">&lt;script&gt;alert(1)&lt;/script&gt;<`, `class="timeline-step failed"`, `id="http-status"`, `>500<`,
		`&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</pre>`)
	list := f.get("/ui/access-log?traceId=" + url.QueryEscape(xssScript))
	has(t, "filtered list", list.Body, `<td class="trace"><code>&lt;script&gt;alert(1)&lt;/script&gt;</code>`, `name="traceId" value="&lt;script&gt;alert(1)&lt;/script&gt;"`)
	api := f.get("/ui/apis/evil.api:v1")
	has(t, "evil api", api.Body, `&lt;script&gt;alert(1)&lt;/script&gt;`, `http://127.0.0.1:9/x?a=&lt;b&gt;`)
}

func TestCredentialsShowNoSecret(t *testing.T) {
	f := newFixture(t, opts{tokens: true})
	c := f.login(t)
	for _, p := range []string{"/ui/credentials", "/ui/", "/ui/apis/order.create:v1", "/ui/policies"} {
		res := f.get(p, c)
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		for _, secret := range []string{shopKey, opsToken, regToken} {
			if strings.Contains(res.Body, secret) {
				t.Errorf("%s shows the secret %q", p, secret)
			}
		}
	}
	res := f.get("/ui/credentials", c)
	has(t, "credentials", res.Body, `env:SHOP_KEY`, `<span class="resolved">`, `href="`+repoURL+`/credentials/shop.yaml"`)
	// The page shows what the Snapshot serving loaded, not what a secret
	// reference resolves to at the moment of the view: the credential keeps
	// its key until a reload, and the page says so.
	t.Setenv("SHOP_KEY", "")
	res = f.get("/ui/credentials", c)
	has(t, "credentials, before a reload", res.Body, `<span class="resolved">`)
	if strings.Contains(res.Body, `<span class="unresolved">`) {
		t.Error("credentials: a secret of the serving Snapshot shows as unresolved before any reload")
	}
	f.snap = loadSnapshot(t, f.sample.Dir, f.git)
	res = f.get("/ui/credentials", c)
	has(t, "credentials, after a reload", res.Body, `<span class="unresolved">`, `SHOP_KEY`)
	has(t, "overview, after a reload", f.get("/ui/", c).Body, `credential <a href="/ui/credentials#credential-shop"><code>shop</code></a>`)
	// ui.repoUrl links the file to edit.
	has(t, "api", f.get("/ui/apis/order.create:v1", c).Body, `<dd id="edit-file"><a href="`+repoURL+`/apis/orders/create.yaml">`)
}

func TestOverviewDirtyAndFailedReload(t *testing.T) {
	f := newFixture(t, opts{dirty: true})
	f.reload = &Reload{At: time.Now(), Reason: "watch", OK: false, Errors: []config.Diagnostic{
		{File: "apis/orders/create.yaml", Line: 12, Column: 7, Path: "steps[1].http.url", Severity: config.SevError, Message: "bad " + xssScript},
		{File: "policies/standard.yaml", Line: 3, Column: 1, Severity: config.SevError, Message: "unknown field"},
	}}
	res := f.get("/ui/")
	has(t, "overview", res.Body, `<span class="badge badge-warn" id="dirty">dirty</span>`, `>failed<`, `<ul id="reload-errors"`,
		`apis/orders/create.yaml:12:7`, `policies/standard.yaml:3:1`)
	list := res.Body[strings.Index(res.Body, `id="reload-errors"`):]
	list = list[:strings.Index(list, "</ul>")]
	if n := strings.Count(list, "<li>"); n != 2 {
		t.Errorf("reload errors: %d", n)
	}
	noRaw(t, "overview", res.Body)
}

// The access log's Status filter takes what its column shows: an HTTP
// status or a class, never the stored 0-3 classification.
func TestAccessLogStatusFilter(t *testing.T) {
	f := newFixture(t, opts{})
	traces := func(status string) []string {
		res := f.get("/ui/access-log?status=" + url.QueryEscape(status))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status=%s: %d %s", status, res.StatusCode, res.Body)
		}
		has(t, "status="+status, res.Body, `name="status" value="`+status+`"`)
		var out []string
		for _, m := range regexp.MustCompile(`<td class="trace"><code>([^<]*)</code>`).FindAllStringSubmatch(res.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	evil := "&lt;script&gt;alert(1)&lt;/script&gt;"
	for status, want := range map[string][]string{
		"200": {"trace-ok-1"}, "2xx": {"trace-ok-1"}, "302": {"trace-redirect-1"}, "3XX": {"trace-redirect-1"},
		"500": {evil}, "5xx": {evil}, "4xx": nil, "404": nil, "201": nil,
	} {
		if got := traces(status); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("status=%s: %q, want %q", status, got, want)
		}
	}
	for _, bad := range []string{"0", "2", "3", "6xx", "600", "99", "2x", "abc"} {
		res := f.get("/ui/access-log?status=" + bad)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.Body, `id="filter-error"`) {
			t.Errorf("status=%s: %d, want 400 with the reason", bad, res.StatusCode)
		}
	}
	// The overview links the server errors with a filter the page takes.
	has(t, "overview", f.get("/ui/").Body, `href="/ui/access-log?status=5xx"`)
	// The pager keeps the filter as typed.
	has(t, "access log", f.get("/ui/access-log?status=5xx").Body, `placeholder="404, 4xx"`)
}

// The revision is named as the logs and /readyz name it: "-dirty" with
// uncommitted config changes, content:<12 hex digits> outside git.
func TestRevisionLabel(t *testing.T) {
	clean := newFixture(t, opts{})
	dirty := newFixture(t, opts{dirty: true})
	plain := newFixture(t, opts{noGit: true})
	short := clean.snap.Git.Short
	content := "content:" + plain.snap.Revision[:12]
	for _, c := range []struct {
		name       string
		f          *fixture
		want, deny []string
	}{
		{"clean", clean, []string{`id="revision" title="` + clean.snap.Git.Hash + `">` + short + `<`, `Serving <code id="serving">` + short + `</code>.`},
			[]string{"-dirty", "uncommitted", `id="dirty"`}},
		{"dirty", dirty, []string{`id="revision" title="` + dirty.snap.Git.Hash + `">` + dirty.snap.Git.Short + `-dirty<`, `id="dirty">dirty<`,
			`Serving <code id="serving">` + dirty.snap.Git.Short + `-dirty</code> (with uncommitted changes).`,
			`id="dirty-files">With uncommitted changes to: <code>policies/standard.yaml</code>`}, nil},
		{"outside git", plain, []string{`>` + content + `</code>`, `Serving <code id="serving">` + content + `</code>.`, "Not a git checkout"},
			[]string{">" + plain.snap.Revision + "<"}},
	} {
		for _, path := range []string{"/ui/", "/ui/apis"} {
			body := c.f.get(path).Body
			for _, w := range c.want {
				if path == "/ui/" || strings.HasPrefix(w, "Serving") {
					has(t, c.name+" "+path, body, w)
				}
			}
			for _, d := range c.deny {
				if strings.Contains(body, d) {
					t.Errorf("%s %s: has %q", c.name, path, d)
				}
			}
		}
	}
}

// The request rate divides by the time counted: a gateway up for 5
// minutes that answered 3 requests served 0.6 a minute, not 0.05.
func TestRequestRateOverUptime(t *testing.T) {
	for _, c := range []struct {
		uptime     time.Duration
		rate, span string
	}{
		{5 * time.Minute, "0.60", "the 5 min since the gateway started"},
		{30 * time.Minute, "0.10", "the 30 min since the gateway started"},
		{3 * time.Hour, "0.05", "the last hour"},
	} {
		f := newFixture(t, opts{uptime: c.uptime})
		has(t, c.uptime.String(), f.get("/ui/").Body, `id="request-rate">`+c.rate+`<`, `id="rate-span">over `+c.span+`<`, `3 requests, 1 errors`)
	}
	// Under a minute the span is in seconds.
	rate, span := rateOf(2, metrics.Window{Covered: 30 * time.Second, Partial: true})
	if rate != "4.00" || span != "the 30 s since the gateway started" {
		t.Errorf("30 s: %s over %s", rate, span)
	}
}

// login signs in with the ops token and returns the session cookie.
func (f *fixture) login(t *testing.T) *http.Cookie {
	t.Helper()
	form := f.get("/ui/login?next=/ui/credentials")
	csrf := cookie(form.Response, CSRFCookie)
	if csrf == nil {
		t.Fatal("no csrf cookie")
	}
	res := f.do(http.MethodPost, "/ui/login", url.Values{"token": {opsToken}, "csrf": {csrf.Value}, "next": {"/ui/credentials"}}, nil, csrf)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/credentials" {
		t.Fatalf("login: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	s := cookie(res.Response, SessionCookie)
	if s == nil {
		t.Fatal("no session cookie")
	}
	return s
}

func cookie(res *http.Response, name string) *http.Cookie {
	for _, c := range res.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestSignIn(t *testing.T) {
	f := newFixture(t, opts{tokens: true})

	// Pages redirect to the sign-in form, keeping the page asked for.
	res := f.get("/ui/apis?q=order")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/apis?q=order") {
		t.Fatalf("unauthenticated: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// Static files and the form need no session.
	if res := f.get("/ui/static/ui.css"); res.StatusCode != 200 {
		t.Errorf("static: %d", res.StatusCode)
	}
	form := f.get("/ui/login?next=/ui/apis")
	if form.StatusCode != 200 {
		t.Fatalf("form: %d", form.StatusCode)
	}
	csrf := cookie(form.Response, CSRFCookie)
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode {
		t.Fatalf("csrf cookie: %+v", csrf)
	}
	has(t, "login", form.Body, `id="token"`, `id="signin"`, `name="csrf" value="`+csrf.Value+`"`, `name="next" value="/ui/apis"`)
	if form.Header.Get("Content-Security-Policy") == "" {
		t.Error("login: no CSP")
	}

	post := func(v url.Values, hdr map[string]string, cookies ...*http.Cookie) result {
		return f.do(http.MethodPost, "/ui/login", v, hdr, cookies...)
	}
	good := url.Values{"token": {opsToken}, "csrf": {csrf.Value}, "next": {"/ui/apis"}}

	// Missing or mismatched CSRF, or another origin: 403, no session.
	for name, r := range map[string]result{
		"no csrf cookie":   post(good, nil),
		"no csrf field":    post(url.Values{"token": {opsToken}}, nil, csrf),
		"mismatched csrf":  post(url.Values{"token": {opsToken}, "csrf": {strings.Repeat("0", 32)}}, nil, csrf),
		"foreign origin":   post(good, map[string]string{"Origin": "https://evil.example"}, csrf),
		"null origin":      post(good, map[string]string{"Origin": "null"}, csrf),
		"cross-site fetch": post(good, map[string]string{"Sec-Fetch-Site": "cross-site"}, csrf),
	} {
		if r.StatusCode != http.StatusForbidden || cookie(r.Response, SessionCookie) != nil {
			t.Errorf("%s: %d", name, r.StatusCode)
		}
	}

	// A wrong token, or a registry token: the form again with an error.
	for _, tok := range []string{"wrong", regToken, ""} {
		r := post(url.Values{"token": {tok}, "csrf": {csrf.Value}}, nil, csrf)
		if r.StatusCode != http.StatusUnauthorized || cookie(r.Response, SessionCookie) != nil {
			t.Errorf("token %q: %d", tok, r.StatusCode)
		}
		has(t, "wrong token", r.Body, `id="login-error"`, `id="token"`)
	}

	// The right token, with a same-origin Origin header.
	r := post(good, map[string]string{"Origin": "http://example.com"}, csrf) // httptest's Host is example.com
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/ui/apis" {
		t.Fatalf("sign in: %d %q %s", r.StatusCode, r.Header.Get("Location"), r.Body)
	}
	s := cookie(r.Response, SessionCookie)
	if s == nil || !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.Path != "/" || s.Secure {
		t.Fatalf("session cookie: %+v", s)
	}
	if page := f.get("/ui/apis", s); page.StatusCode != 200 || !strings.Contains(page.Body, `id="signout"`) {
		t.Errorf("signed in: %d", page.StatusCode)
	}
	// A registry token as a cookie does not open the pages.
	if page := f.get("/ui/", &http.Cookie{Name: SessionCookie, Value: regToken}); page.StatusCode != http.StatusSeeOther {
		t.Errorf("registry token: %d", page.StatusCode)
	}
	// The pages check tokens as the REST API does (admin.Authorize): a
	// bearer token opens them too, with the same roles.
	for tok, want := range map[string]int{opsToken: http.StatusOK, regToken: http.StatusSeeOther, "wrong": http.StatusSeeOther} {
		if page := f.do(http.MethodGet, "/ui/apis", nil, map[string]string{"Authorization": "Bearer " + tok}); page.StatusCode != want {
			t.Errorf("GET /ui/apis with bearer %q: %d, want %d", tok, page.StatusCode, want)
		}
	}

	// next must be a local page.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/\\evil.example", "/ui/../../x", "javascript:alert(1)", "/other", "/ui/\\\\evil"} {
		v := url.Values{"token": {opsToken}, "csrf": {csrf.Value}, "next": {next}}
		r := post(v, nil, csrf)
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusSeeOther || loc != "/ui/" {
			t.Errorf("next %q: %d %q", next, r.StatusCode, loc)
		}
	}

	// Sign out needs the CSRF token too.
	if r := f.do(http.MethodPost, "/ui/logout", url.Values{}, nil, csrf, s); r.StatusCode != http.StatusForbidden {
		t.Errorf("logout without csrf: %d", r.StatusCode)
	}
	out := f.do(http.MethodPost, "/ui/logout", url.Values{"csrf": {csrf.Value}}, nil, csrf, s)
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", out.StatusCode)
	}
	if c := cookie(out.Response, SessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("logout cookie: %+v", c)
	}
	// No other POST: the pages change nothing.
	if r := f.do(http.MethodPost, "/ui/apis", url.Values{}, nil, s); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/apis: %d", r.StatusCode)
	}
}

func TestNoTokensNoSignIn(t *testing.T) {
	f := newFixture(t, opts{})
	if res := f.get("/ui/"); res.StatusCode != 200 || strings.Contains(res.Body, `id="signout"`) {
		t.Errorf("overview without tokens: %d", res.StatusCode)
	}
	if res := f.get("/ui/login"); !strings.Contains(res.Body, "need no sign-in") {
		t.Errorf("login without tokens: %s", res.Body)
	}
}

func TestTLSCookieSecure(t *testing.T) {
	f := newFixture(t, opts{tokens: true})
	r := httptest.NewRequest(http.MethodGet, "https://example.com/ui/login", nil)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	c := cookie(w.Result(), CSRFCookie)
	if c == nil || !c.Secure {
		t.Fatalf("csrf cookie over TLS: %+v", c)
	}
	r = httptest.NewRequest(http.MethodPost, "https://example.com/ui/login", strings.NewReader(url.Values{"token": {opsToken}, "csrf": {c.Value}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(c)
	w = httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if s := cookie(w.Result(), SessionCookie); s == nil || !s.Secure {
		t.Fatalf("session cookie over TLS: %+v", s)
	}
}

// telemetry.traceUrl links each access-log record to its trace in the
// operator's trace viewer (the page and the record); without it, no link.
func TestTraceLinks(t *testing.T) {
	f := newFixture(t, opts{tokens: true})
	c := f.login(t)
	has(t, "access log", f.get("/ui/access-log", c).Body, `<td class="trace"><code>trace-ok-1</code> <a class="trace-link" href="https://jaeger.example/trace/trace-ok-1"`)
	has(t, "record", f.get("/ui/access-log/"+f.okID, c).Body, `<a id="trace-link" href="https://jaeger.example/trace/trace-ok-1"`)
	// An id that is no path segment is escaped in the link.
	if got := traceURL("https://j.example/trace/{traceId}", "a/b c"); got != "https://j.example/trace/a%2Fb%20c" {
		t.Errorf("traceURL escaped %q", got)
	}
	plain := newFixture(t, opts{})
	if body := plain.get("/ui/access-log").Body; strings.Contains(body, "trace-link") {
		t.Error("a trace link without telemetry.traceUrl")
	}
}
