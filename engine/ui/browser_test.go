package ui_test

// Real-browser tests of the admin pages at /ui/ on the admin listener. They
// drive a headless Chromium (chromedp) against a gateway serving a git
// repository built with go-git, and they check the pages' DOM contract:
// sign-in, the overview with a failed reload, the API list, an API's flow,
// versions and diff, and the access log with one record.
//
// Chromium comes from DATABUS_TEST_CHROMIUM, else `chromium` on PATH. Without
// it the tests skip, except under CI=true where they fail (.ci/run installs
// Chromium).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

const (
	// adminToken is the operator token of the test repository.
	adminToken = "browser-test-token-7f3a9c"
	// traceID marks the portal calls the access-log page is filtered by;
	// otherTraceID marks one call it must leave out.
	traceID      = "browser-trace-1"
	otherTraceID = "browser-trace-2"
	// bodyMarker is in the request body of every portal call, helloValue
	// in every answer.
	bodyMarker = "browser-body-marker"
	helloValue = "browser-hello"
	// portalBase is the default portal base path.
	portalBase = "/admin-api/databus/api/portal"

	// browserTimeout bounds the browser's whole life; testTimeout bounds
	// each subtest; stepTimeout bounds one wait for an element, so that a
	// selector the page lacks fails with its name instead of at the end of
	// the test.
	browserTimeout = 4 * time.Minute
	testTimeout    = 60 * time.Second
	stepTimeout    = 15 * time.Second

	oldURL = "http://127.0.0.1:9/orders-v1"
	newURL = "http://127.0.0.1:9/orders-v2"
)

const settingsFile = `apiVersion: databus/v1
kind: Settings
apiPortal:
  security: {enabled: false}
admin:
  tokens:
    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_TEST_ADMIN_TOKEN'}}
`

// orderFile is order.create:v1 calling url; the two commits differ in the
// url only, so the API has two versions and a one-line diff.
func orderFile(url string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http:
      method: POST
      url: '%s'
      timeout: 5s
  - {id: end, type: end}
`, url)
}

// brokenOrderFile names a rate-limit policy that does not exist: the reload
// fails with an error at a line of apis/order.yaml.
const brokenOrderFile = `apiVersion: databus/v1
kind: Api
code: order.create
version: v1
description: Create an order
status: online
methods: [POST]
policies:
  rateLimit: nosuch
steps:
  - {id: start, type: start}
  - {id: end, type: end}
`

// helloFile is a script API, so portal calls need no upstream. Its time
// bound is generous for -race on a small machine.
var helloFile = fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: browser.hello
version: v1
description: Say hello to the browser test
status: online
methods: [GET, POST]
steps:
  - {id: start, type: start}
  - id: greet
    type: script
    script: {lang: javascript, timeout: 10s, source: 'function main(ctx) { return {v: %q} }'}
  - {id: end, type: end}
`, helloValue)

// chromiumPath finds Chromium or skips the test (fails it under CI=true).
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("DATABUS_TEST_CHROMIUM")
	if path == "" {
		if p, err := exec.LookPath("chromium"); err == nil {
			path = p
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium for the browser tests: set DATABUS_TEST_CHROMIUM to a chromium binary or put chromium on PATH (.ci/run installs it)")
		}
		t.Skip("no Chromium: set DATABUS_TEST_CHROMIUM to a chromium binary (or put chromium on PATH) to run the browser tests")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("DATABUS_TEST_CHROMIUM: %v", err)
	}
	return path
}

// fixture is a gateway serving the test repository.
type fixture struct {
	srv       *gateway.Server
	portalURL string // http://127.0.0.1:port
	adminURL  string
	client    *http.Client
	// reloadError is "apis/order.yaml:line:col" of the failed reload's
	// first error in that file.
	reloadError string
}

// startGateway builds the repository (two commits of order.create, then an
// uncommitted broken edit), serves it, makes the portal calls and fails a
// reload.
func startGateway(t *testing.T) *fixture {
	t.Helper()
	t.Setenv("DATABUS_TEST_ADMIN_TOKEN", adminToken)

	repo := gitopstest.New(t, "")
	repo.Write("databus.yaml", settingsFile)
	repo.Write("apis/order.yaml", orderFile(oldURL))
	repo.Write("apis/hello.yaml", helloFile)
	repo.Commit("Add order.create and browser.hello")
	repo.Write("apis/order.yaml", orderFile(newURL))
	repo.Commit("Move order.create's upstream")

	srv, err := gateway.New(gateway.Options{
		Dir:          repo.Dir,
		NoWatch:      true,
		StoragePath:  filepath.Join(t.TempDir(), "db"),
		DrainTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		portalLn.Close()
		srv.Close()
		t.Fatal(err)
	}
	f := &fixture{
		srv:       srv,
		portalURL: "http://" + portalLn.Addr().String(),
		adminURL:  "http://" + adminLn.Addr().String(),
		client:    &http.Client{Timeout: 10 * time.Second},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		f.client.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return within 20s of its context ending")
		}
		srv.Close()
	})
	poll(t, 10*time.Second, "GET /readyz answers 200", func() bool {
		resp, err := f.client.Get(f.adminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Portal calls: two with traceID (one before and one after the failed
	// reload, which must keep the old configuration serving) and one with
	// otherTraceID.
	f.callHello(t, traceID)
	f.callHello(t, otherTraceID)

	repo.Write("apis/order.yaml", brokenOrderFile)
	f.refresh(t)
	last := srv.LastReload()
	if last == nil || last.OK {
		t.Fatalf("reload of the broken edit: want a failure, got %+v", last)
	}
	for _, d := range last.Errors {
		if d.File == "apis/order.yaml" && d.Line > 0 {
			f.reloadError = fmt.Sprintf("%s:%d:%d", d.File, d.Line, d.Column)
			break
		}
	}
	if f.reloadError == "" {
		t.Fatalf("reload of the broken edit: no error at a line of apis/order.yaml: %+v", last.Errors)
	}

	f.callHello(t, traceID)

	// The access log is written asynchronously.
	poll(t, 10*time.Second, "the access log holds the portal calls", func() bool {
		return f.accessLogTotal(t, traceID) == 2 && f.accessLogTotal(t, otherTraceID) == 1
	})
	return f
}

// callHello POSTs to browser.hello with the trace id and expects 200.
func (f *fixture) callHello(t *testing.T, trace string) {
	t.Helper()
	body := fmt.Sprintf(`{"item": %q}`, bodyMarker)
	req, err := http.NewRequest(http.MethodPost, f.portalURL+portalBase+"/browser.hello/v1", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trace-Id", trace)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("portal call: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), helloValue) {
		t.Fatalf("portal call %s: status %d, body %s", trace, resp.StatusCode, data)
	}
}

// adminGet GETs an admin REST path with the token and decodes data.
func (f *fixture) adminGet(t *testing.T, path string, data any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.adminURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Code int             `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &env) != nil || env.Code != 0 {
		t.Fatalf("GET %s: status %d, body %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		t.Fatalf("GET %s: data %s: %v", path, env.Data, err)
	}
}

// accessLogRecord is the part of an access-log record the tests compare.
type accessLogRecord struct {
	ID           string `json:"id"`
	TraceID      string `json:"traceId"`
	HTTPStatus   int    `json:"httpStatus"`
	RequestBody  string `json:"requestBody"`
	ResponseBody string `json:"responseBody"`
	StepResults  []struct {
		ID string `json:"id"`
	} `json:"stepResults"`
}

func (f *fixture) accessLog(t *testing.T, trace string) (int, []accessLogRecord) {
	t.Helper()
	var page struct {
		Total int               `json:"total"`
		List  []accessLogRecord `json:"list"`
	}
	f.adminGet(t, "/databus/gateway/access-log/page?pageSize=100&traceId="+url.QueryEscape(trace), &page)
	return page.Total, page.List
}

func (f *fixture) accessLogTotal(t *testing.T, trace string) int {
	t.Helper()
	n, _ := f.accessLog(t, trace)
	return n
}

// refresh POSTs cache/refresh with the operator token.
func (f *fixture) refresh(t *testing.T) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.adminURL+"/databus/gateway/cache/refresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatalf("cache/refresh: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cache/refresh: status %d", resp.StatusCode)
	}
}

// poll calls cond until it holds or the deadline passes.
func poll(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBrowser launches headless Chromium with the test's flags; cleanup
// closes it.
func startBrowser(t *testing.T, execPath string) context.Context {
	t.Helper()
	root, cancelRoot := context.WithTimeout(context.Background(), browserTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root,
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelRoot()
	})
	// The first run starts the browser; it must run on the tab's own
	// context, which lives until cleanup.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", execPath, err)
	}
	return ctx
}

// page is one browser tab bound to one subtest.
type page struct {
	t        *testing.T
	ctx      context.Context
	adminURL string
	shots    string // screenshot folder
}

// do runs actions bounded by stepTimeout; a failure names what was done.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s (at %s): %v; the page reads: %q", what, p.location(), err, p.bodyText())
	}
}

// bodyText is the start of the page's text, for failure messages.
func (p *page) bodyText() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "?"
	}
	if s = strings.Join(strings.Fields(s), " "); len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// waitFor waits until sel (a CSS selector) is in the page.
func (p *page) waitFor(sel string) {
	p.t.Helper()
	p.do("wait for "+sel, chromedp.WaitReady(chromedp.CSS(sel)))
}

// waitVisible waits until sel is visible.
func (p *page) waitVisible(sel string) {
	p.t.Helper()
	p.do("wait until "+sel+" is visible", chromedp.WaitVisible(chromedp.CSS(sel)))
}

// navigate loads an admin path, waits for its load event and expects 200
// (after redirects).
func (p *page) navigate(path string) {
	p.t.Helper()
	p.open(p.adminURL + path)
}

// open loads a URL, waits for its load event and expects 200 (after
// redirects).
func (p *page) open(u string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		p.t.Fatalf("navigate to %s: %v", u, err)
	}
	if resp.Status != http.StatusOK {
		p.t.Fatalf("navigate to %s: now at %s, which answered %d; the page reads: %q", u, p.location(), resp.Status, p.bodyText())
	}
}

// follow runs actions that cause a navigation (a click, a submit) and waits
// until the new page has loaded; it returns the document's HTTP status.
func (p *page) follow(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		p.t.Fatalf("%s (from %s): %v", what, p.location(), err)
	}
	return resp.Status
}

// location is the tab's URL, "?" when it cannot be read.
func (p *page) location() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// path is the tab's URL path, unescaped, with the query.
func (p *page) path() (string, url.Values) {
	p.t.Helper()
	u, err := url.Parse(p.location())
	if err != nil {
		p.t.Fatalf("location: %v", err)
	}
	return u.Path, u.Query()
}

// expectPath checks the tab is at path.
func (p *page) expectPath(want string) {
	p.t.Helper()
	if got, _ := p.path(); got != want {
		p.t.Fatalf("location: got %s, want path %s", p.location(), want)
	}
}

// eval evaluates JavaScript in the page.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("evaluate %s (at %s): %v", js, p.location(), err)
	}
	return v
}

// texts is the trimmed textContent of every element matching sel, in
// document order ([] when none does: it does not wait).
func (p *page) texts(sel string) []string {
	p.t.Helper()
	return eval[[]string](p, fmt.Sprintf(
		`Array.from(document.querySelectorAll(%s), e => e.textContent.replace(/\s+/g, " ").trim())`, jsString(sel)))
}

// count is the number of elements matching sel.
func (p *page) count(sel string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(sel)))
}

// text is the trimmed textContent of the first element matching sel, which
// must exist.
func (p *page) text(sel string) string {
	p.t.Helper()
	p.waitFor(sel)
	all := p.texts(sel)
	if len(all) == 0 {
		p.t.Fatalf("%s: gone from %s", sel, p.location())
	}
	return all[0]
}

// link is one anchor: its raw href and the URL it resolves to.
type link struct {
	Href     string `json:"href"`
	Resolved string `json:"resolved"`
	Text     string `json:"text"`
}

// links lists the anchors matching sel.
func (p *page) links(sel string) []link {
	p.t.Helper()
	return eval[[]link](p, fmt.Sprintf(
		`Array.from(document.querySelectorAll(%s), a => ({href: a.getAttribute("href") || "", resolved: a.href, text: a.textContent.trim()}))`,
		jsString(sel)))
}

// linkPath is the unescaped path a link goes to.
func linkPath(t *testing.T, l link) string {
	t.Helper()
	u, err := url.Parse(l.Resolved)
	if err != nil {
		t.Fatalf("link %q: %v", l.Href, err)
	}
	return u.Path
}

// clickLink clicks the anchor matching sel whose href is href, and waits for
// the page it opens.
func (p *page) clickLink(sel string, l link) {
	p.t.Helper()
	target := fmt.Sprintf(`%s[href=%s]`, sel, jsString(l.Href))
	if st := p.follow("click "+target, chromedp.Click(chromedp.CSS(target))); st != http.StatusOK {
		p.t.Fatalf("click %s: the page answered %d (now at %s)", target, st, p.location())
	}
}

// jsString quotes s for JavaScript and for CSS attribute values: JSON
// without the \u escapes of <, > and &, which CSS does not read.
func jsString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// checkChrome checks what every page has: the nav links and an h1.
func (p *page) checkChrome(name string) {
	p.t.Helper()
	navs := map[string]string{
		"a#nav-overview":    "/ui/",
		"a#nav-apis":        "/ui/apis",
		"a#nav-credentials": "",
		"a#nav-policies":    "",
		"a#nav-access-log":  "/ui/access-log",
		"a#nav-registry":    "",
	}
	for sel, want := range navs {
		ls := p.links(sel)
		if len(ls) != 1 {
			p.t.Errorf("%s page: want one %s, found %d", name, sel, len(ls))
			continue
		}
		if want != "" && linkPath(p.t, ls[0]) != want {
			p.t.Errorf("%s page: %s goes to %s, want %s", name, sel, ls[0].Resolved, want)
		}
	}
	if h1 := p.texts("h1"); len(h1) == 0 || h1[0] == "" {
		p.t.Errorf("%s page: no h1 title (h1 texts %q)", name, h1)
	}
}

// screenshot saves a full-page PNG of the tab as name.png.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) == 0 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		p.t.Fatalf("screenshot %s: not a PNG (%d bytes)", name, len(png))
	}
	path := filepath.Join(p.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		p.t.Fatalf("screenshot %s: %v (empty file?)", path, err)
	}
	p.t.Logf("screenshot of %s: %s (%d bytes)", p.location(), path, len(png))
	// DATABUS_TEST_SCREENSHOTS keeps a copy beyond the test's temp dir.
	if keep := os.Getenv("DATABUS_TEST_SCREENSHOTS"); keep != "" {
		if err := os.MkdirAll(keep, 0o755); err == nil {
			os.WriteFile(filepath.Join(keep, name+".png"), png, 0o644)
		}
	}
}

var lineCol = regexp.MustCompile(`:\d+:\d+`)

func TestBrowser(t *testing.T) {
	execPath := chromiumPath(t)
	f := startGateway(t)
	browser := startBrowser(t, execPath)
	shots := t.TempDir()

	// open binds the shared tab to a subtest, bounded by testTimeout.
	open := func(t *testing.T) *page {
		ctx, cancel := context.WithTimeout(browser, testTimeout)
		t.Cleanup(cancel)
		return &page{t: t, ctx: ctx, adminURL: f.adminURL, shots: shots}
	}

	// Every later subtest needs the session cookie.
	if !t.Run("SignIn", func(t *testing.T) {
		p := open(t)
		p.navigate("/ui/")
		p.waitVisible("input#token")
		p.expectPath("/ui/login")
		p.checkChrome("login")

		p.do("type a wrong token", chromedp.SendKeys(chromedp.CSS("input#token"), "not-the-token"))
		p.follow("sign in with a wrong token", chromedp.Click(chromedp.CSS("button#signin")))
		p.waitVisible("#login-error")
		if msg := p.text("#login-error"); msg == "" {
			t.Errorf("login page: #login-error is empty after a wrong token")
		}
		p.screenshot("login-error")

		p.navigate("/ui/login")
		p.waitVisible("input#token")
		p.do("type the token", chromedp.SendKeys(chromedp.CSS("input#token"), adminToken))
		if st := p.follow("sign in", chromedp.Click(chromedp.CSS("button#signin"))); st != http.StatusOK {
			t.Fatalf("sign in: the page after the redirect answered %d", st)
		}
		p.expectPath("/ui/")
		p.waitVisible("#reload-status")
		if n := p.count("#login-error"); n != 0 {
			t.Errorf("overview after sign-in: %d #login-error", n)
		}
	}) {
		t.FailNow()
	}

	t.Run("Overview", func(t *testing.T) {
		p := open(t)
		p.navigate("/ui/")
		p.expectPath("/ui/")
		p.waitVisible("#reload-status")
		p.checkChrome("overview")

		if got := p.text("#reload-status"); got != "failed" {
			t.Errorf(`overview: #reload-status is %q, want "failed"`, got)
		}
		errs := p.texts("#reload-errors li")
		if !slices.ContainsFunc(errs, func(s string) bool { return strings.Contains(s, f.reloadError) }) {
			t.Errorf("overview: no #reload-errors li contains %q (file:line:col of the failed reload); items: %q", f.reloadError, errs)
		}
		for _, e := range errs {
			if !lineCol.MatchString(e) {
				t.Errorf("overview: #reload-errors li %q has no :line:col", e)
			}
		}
		// The served configuration is the clean second commit (the broken
		// edit did not load), so there is no #dirty.
		served := f.srv.Current().Git
		if served == nil {
			t.Fatalf("the served snapshot has no git revision")
		}
		if rev := p.text("#revision"); !strings.Contains(rev, served.Short) {
			t.Errorf("overview: #revision is %q, want the served commit %s", rev, served.Short)
		}
		if want, n := map[bool]int{true: 1, false: 0}[served.Dirty], p.count("#dirty"); n != want {
			t.Errorf("overview: %d #dirty, want %d (the served snapshot's dirty flag is %v)", n, want, served.Dirty)
		}
		for _, sel := range []string{"#count-apis", "#count-credentials", "#count-policies"} {
			n, err := strconv.Atoi(p.text(sel))
			if err != nil {
				t.Errorf("overview: %s is %q, not a number", sel, p.text(sel))
				continue
			}
			if sel == "#count-apis" && n != 2 {
				t.Errorf("overview: #count-apis is %d, want 2 (order.create, browser.hello)", n)
			}
		}
		p.waitFor("svg#traffic-chart")
		p.waitFor("#request-rate")
		p.waitFor("#error-rate")
		p.screenshot("overview")
	})

	// orderPage is where the API list's link to order.create goes.
	var orderPage string
	t.Run("APIs", func(t *testing.T) {
		p := open(t)
		p.navigate("/ui/")
		p.waitVisible("a#nav-apis")
		p.follow("click a#nav-apis", chromedp.Click(chromedp.CSS("a#nav-apis")))
		p.expectPath("/ui/apis")
		p.waitVisible("table#apis")
		p.checkChrome("APIs")
		if rows := p.texts("table#apis tr.api-row"); len(rows) != 2 {
			t.Errorf("API list: want 2 tr.api-row (order.create, browser.hello), got %q", rows)
		}
		p.screenshot("apis")

		p.do("type a search", chromedp.SendKeys(chromedp.CSS("input[name=q]"), "order"))
		p.follow("submit the search form", chromedp.Submit(chromedp.CSS("input[name=q]")))
		if _, q := p.path(); q.Get("q") != "order" {
			t.Errorf("API list: after the search the location is %s, want q=order", p.location())
		}
		p.waitVisible("table#apis")
		rows := p.texts("table#apis tr.api-row")
		if len(rows) != 1 || !strings.Contains(rows[0], "order.create") {
			t.Errorf("API list searched for q=order: want one tr.api-row with order.create, got %q", rows)
		}
		if n := p.count("table#apis tr.api-row span.badge"); n == 0 {
			t.Errorf("API list: no span.badge in the tr.api-row")
		}
		p.screenshot("apis-search")

		var order *link
		for _, l := range p.links("table#apis tr.api-row a.api-link") {
			if linkPath(t, l) == "/ui/apis/order.create:v1" {
				order = &l
			}
		}
		if order == nil {
			t.Fatalf("API list: no a.api-link to /ui/apis/order.create:v1; links: %+v", p.links("a.api-link"))
		}
		p.clickLink("a.api-link", *order)
		p.expectPath("/ui/apis/order.create:v1")
		orderPage = p.location()
	})

	t.Run("API", func(t *testing.T) {
		if orderPage == "" {
			t.Fatal("the API list gave no link to order.create (see the subtest before)")
		}
		p := open(t)
		p.open(orderPage)
		p.waitVisible("svg#flow")
		p.checkChrome("API")

		steps := p.texts("svg#flow g.flow-step")
		if len(steps) != 3 {
			t.Errorf("API page: want 3 g.flow-step in svg#flow (start, create, end), got %q", steps)
		}
		for _, id := range []string{"start", "create", "end"} {
			if !slices.ContainsFunc(steps, func(s string) bool { return strings.Contains(s, id) }) {
				t.Errorf("API page: no g.flow-step for step %q; steps: %q", id, steps)
			}
		}
		if n := p.count("section#versions li.version"); n != 2 {
			t.Errorf("API page: want 2 li.version in section#versions (two commits), got %d", n)
		}
		if curl := p.text("#curl"); !strings.Contains(curl, "order.create") {
			t.Errorf("API page: #curl does not call order.create: %q", curl)
		}
		p.waitFor("#edit-file")
		p.screenshot("api")

		versions := p.links("section#versions a.version-link")
		if len(versions) == 0 {
			t.Fatalf("API page: no a.version-link in section#versions")
		}
		p.clickLink("section#versions a.version-link", versions[0])
		p.waitVisible("pre#file-content")
		p.checkChrome("version")
		if content := p.text("pre#file-content"); !strings.Contains(content, "code: order.create") {
			t.Errorf("version page: pre#file-content is not order.create's file: %q", content)
		}
		p.screenshot("version")

		p.open(orderPage)
		p.waitVisible("section#versions")
		diffs := p.links("section#versions a.diff-link")
		if len(diffs) == 0 {
			t.Fatalf("API page: no a.diff-link in section#versions")
		}
		p.clickLink("section#versions a.diff-link", diffs[0])
		p.waitVisible("#diff")
		p.checkChrome("diff")
		added, deleted := p.texts("#diff .diff-add"), p.texts("#diff .diff-del")
		if len(added)+len(deleted) == 0 {
			t.Fatalf("diff page: no .diff-add or .diff-del line in #diff (%d .diff-ctx)", p.count("#diff .diff-ctx"))
		}
		changed := append(added, deleted...)
		for _, u := range []string{oldURL, newURL} {
			if !slices.ContainsFunc(changed, func(s string) bool { return strings.Contains(s, u) }) {
				t.Errorf("diff page: the url %s is on no .diff-add/.diff-del line; added %q, deleted %q", u, added, deleted)
			}
		}
		p.waitFor("ul#changes")
		p.screenshot("diff")
	})

	t.Run("AccessLog", func(t *testing.T) {
		_, want := f.accessLog(t, traceID)
		if len(want) != 2 {
			t.Fatalf("access log REST: %d records for %s, want 2", len(want), traceID)
		}
		p := open(t)
		p.navigate("/ui/")
		p.waitVisible("a#nav-access-log")
		p.follow("click a#nav-access-log", chromedp.Click(chromedp.CSS("a#nav-access-log")))
		p.expectPath("/ui/access-log")
		p.waitVisible("form#access-log-filter")
		p.checkChrome("access log")
		all := p.texts("table#records tr.record td.trace")
		for _, tr := range []string{traceID, otherTraceID} {
			if !slices.Contains(all, tr) {
				t.Errorf("access log unfiltered: no td.trace %q; traces: %q", tr, all)
			}
		}
		p.screenshot("access-log")

		p.do("type the trace id", chromedp.SendKeys(chromedp.CSS("form#access-log-filter input[name=traceId]"), traceID))
		p.follow("click button#filter", chromedp.Click(chromedp.CSS("form#access-log-filter button#filter")))
		if _, q := p.path(); q.Get("traceId") != traceID {
			t.Errorf("access log: after the filter the location is %s, want traceId=%s", p.location(), traceID)
		}
		p.waitVisible("table#records")
		traces := p.texts("table#records tr.record td.trace")
		if !slices.Equal(traces, []string{traceID, traceID}) {
			t.Errorf("access log filtered by %s: td.trace texts %q, want exactly two %q", traceID, traces, traceID)
		}
		if n := p.count("table#records tr.record"); n != 2 {
			t.Errorf("access log filtered by %s: %d tr.record, want 2", traceID, n)
		}
		p.screenshot("access-log-filtered")

		records := p.links("table#records tr.record a.record-link")
		if len(records) == 0 {
			t.Fatalf("access log: no a.record-link in the filtered table")
		}
		p.clickLink("table#records tr.record a.record-link", records[0])
		p.waitVisible("#trace-id")
		p.checkChrome("record")
		if got := p.text("#trace-id"); got != traceID {
			t.Errorf("record page: #trace-id is %q, want %q", got, traceID)
		}
		if got := p.text("#http-status"); got != "200" {
			t.Errorf(`record page: #http-status is %q, want "200"`, got)
		}
		p.waitFor("svg#timeline")
		if n := p.count("svg#timeline g.timeline-step"); n == 0 {
			t.Errorf("record page: no g.timeline-step in svg#timeline (the record has %d step results)", len(want[0].StepResults))
		}
		// The record shown is one of the two; both have the same bodies.
		rec := want[0]
		if got := p.text("pre#request-body"); rec.RequestBody != "" && !strings.Contains(got, bodyMarker) {
			t.Errorf("record page: pre#request-body %q lacks %q (record: %q)", got, bodyMarker, rec.RequestBody)
		}
		if got := p.text("pre#response-body"); rec.ResponseBody != "" && !strings.Contains(got, helloValue) {
			t.Errorf("record page: pre#response-body %q lacks %q (record: %q)", got, helloValue, rec.ResponseBody)
		}
		p.screenshot("record")
	})

	t.Run("SignedOut", func(t *testing.T) {
		// A fresh browser context has no cookie: /ui/ goes to sign-in.
		ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancel()
		tctx, tcancel := context.WithTimeout(ctx, testTimeout)
		defer tcancel()
		if err := chromedp.Do(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("new browser context: %v", err)
		}
		p := &page{t: t, ctx: tctx, adminURL: f.adminURL, shots: shots}
		p.navigate("/ui/apis")
		p.waitVisible("input#token")
		p.expectPath("/ui/login")
	})
}
