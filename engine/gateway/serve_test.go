package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestServeScriptAPIs(t *testing.T) {
	dir := newRepo(t, map[string]string{
		"one.yaml":   scriptAPI("t.one", "online", "one"),
		"two.yaml":   scriptAPI("t.two", "online", "two"),
		"draft.yaml": scriptAPI("t.draft", "draft", "draft"),
	})
	ts := startServer(t, Options{Dir: dir})

	for _, tc := range []struct {
		method, code string
		status       int
		message      string
		value        string
	}{
		{"GET", "t.one", 200, "OK", "one"},
		{"POST", "t.two", 200, "OK", "two"},
		{"GET", "t.draft", 404, "API 定义未发布或已下线", ""},
		{"GET", "t.missing", 404, "API 定义未发布或已下线", ""},
		{"PUT", "t.one", 405, "请求方法不被允许", ""},
	} {
		env, err := ts.do(tc.method, tc.code, nil)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.code, err)
			continue
		}
		if env.Code != tc.status || env.Message != tc.message || env.value() != tc.value {
			t.Errorf("%s %s = %d %q %s; want %d %q v=%q", tc.method, tc.code, env.Code, env.Message, env.Response, tc.status, tc.message, tc.value)
		}
	}

	// The legacy base path serves too.
	resp, err := ts.client.Get(ts.portalURL + "/databus/api/portal/t.one/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("legacy base path: status %d", resp.StatusCode)
	}

	st, body := ts.admin("/healthz")
	if st != 200 || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v", st, body)
	}
	st, body = ts.admin("/readyz")
	if st != 200 || body["ready"] != true || body["revision"] != ts.Current().Revision {
		t.Errorf("/readyz = %d %v; want 200, ready, revision %s", st, body, ts.Current().Revision)
	}
	if lr, _ := body["lastReload"].(map[string]any); lr == nil || lr["ok"] != true || lr["reason"] != "start" {
		t.Errorf("/readyz lastReload = %v", body["lastReload"])
	}
	// The portal does not serve the admin routes, and the other way round.
	if resp, err := ts.client.Get(ts.portalURL + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("portal /healthz: status %d, want 404", resp.StatusCode)
		}
	}
	if st, _ := ts.admin(basePath + "/t.one/v1"); st != 404 {
		t.Errorf("admin serves the portal: status %d", st)
	}
}

func TestNewRefusesInvalidRepository(t *testing.T) {
	dir := newRepo(t, map[string]string{"bad.yaml": scriptAPI("t.bad", "online", "x") + "bogus: 1\n"})
	_, err := New(Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "apis/bad.yaml:13:") {
		t.Fatalf("New on an invalid repository: %v; want an error naming apis/bad.yaml:13", err)
	}
	if _, err := New(Options{Dir: t.TempDir() + "/missing"}); err == nil {
		t.Fatal("New on a missing folder: no error")
	}
}

// slowUpstream answers /slow only once released, and reports each arrival.
type slowUpstream struct {
	*httptest.Server
	arrived chan struct{}
	release chan struct{}
}

func newSlowUpstream(t *testing.T) *slowUpstream {
	u := &slowUpstream{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.arrived <- struct{}{}
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"slow":true}`)
	}))
	t.Cleanup(u.Close)
	return u
}

func httpAPI(code, url string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: up
    type: http
    http: {method: GET, url: '%s', timeout: 20s}
  - {id: end, type: end}
`, code, url)
}

func TestGracefulShutdown(t *testing.T) {
	up := newSlowUpstream(t)
	dir := newRepo(t, map[string]string{"slow.yaml": httpAPI("t.slow", up.URL+"/slow")})
	ts := startServer(t, Options{Dir: dir})

	type result struct {
		env envelope
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		env, err := ts.call("t.slow")
		inflight <- result{env, err}
	}()
	select {
	case <-up.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}

	ts.cancel()
	// While the portal drains, the admin listener still answers: not ready.
	waitFor(t, 5*time.Second, "/readyz 503 while draining", func() bool {
		st, body := ts.admin("/readyz")
		return st == http.StatusServiceUnavailable && body["ready"] == false
	})
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned (%v) before the in-flight request finished", err)
	case r := <-inflight:
		t.Fatalf("the in-flight request finished before the upstream answered: %+v", r)
	default:
	}
	// New connections to the portal are refused while it drains (the
	// listener closes just after readiness turns false).
	waitFor(t, 5*time.Second, "the portal refusing connections while draining", func() bool {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.portalURL, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case r := <-inflight:
		t.Fatalf("the in-flight request finished before the upstream answered: %+v", r)
	default:
	}

	close(up.release)
	r := <-inflight
	if r.err != nil {
		t.Fatalf("in-flight request: %v", r.err)
	}
	if r.env.Code != 200 || string(r.env.Response) != `{"slow":true}` {
		t.Fatalf("in-flight request = %d %s %s; want 200 {\"slow\":true}", r.env.Code, r.env.Message, r.env.Response)
	}
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.done <- nil // for the cleanup's stop
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the last request finished")
	}
}

func TestShutdownDrainTimeout(t *testing.T) {
	// An upstream that never answers: Serve still returns once DrainTimeout
	// passes, and the stuck request is cut off.
	up := newSlowUpstream(t)
	dir := newRepo(t, map[string]string{"slow.yaml": httpAPI("t.slow", up.URL+"/slow")})
	ts := startServer(t, Options{Dir: dir, DrainTimeout: 100 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		_, err := ts.call("t.slow")
		errc <- err
	}()
	select {
	case <-up.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}
	// An admin connection in the middle of a request (headers half sent)
	// is not idle either; it too must be cut when the drain time is up.
	adminConn, err := net.Dial("tcp", strings.TrimPrefix(ts.adminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	if _, err := adminConn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	ts.cancel()
	select {
	case err := <-ts.done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
		ts.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after DrainTimeout")
	}
	if err := <-errc; err == nil {
		t.Error("the stuck request got an answer after the drain timeout")
	}
	close(up.release)
	// Serve returned: the half-sent admin request's connection is closed.
	adminConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := adminConn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("admin connection after Serve returned: read %d, %v; want EOF", n, err)
	}
}

func TestAdminBindNeedsLoopback(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	_, err := New(Options{Dir: dir, Listen: "127.0.0.1:0", AdminListen: "0.0.0.0:0", StoragePath: filepath.Join(t.TempDir(), "d.db")})
	if err == nil || !strings.Contains(err.Error(), "databus.yaml") || !strings.Contains(err.Error(), "not on loopback") {
		t.Fatalf("New with admin on 0.0.0.0 and no admin.tokens: %v; want the gate's finding at databus.yaml", err)
	}

	// On loopback it serves until the context ends.
	s, err := New(Options{Dir: dir, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", StoragePath: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx2) }()
	waitFor(t, 5*time.Second, "Run ready", s.ready.Load)
	cancel2()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestAdminBindWithTokens(t *testing.T) {
	t.Setenv("DATABUS_TEST_ADMIN_TOKEN", "s3cret-s3cret-s3cret")
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, dir+"/databus.yaml", testSettings+`admin:
  tokens:
    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_TEST_ADMIN_TOKEN'}}
`)
	s, err := New(Options{Dir: dir, AdminListen: "0.0.0.0:8081", StoragePath: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatalf("New with admin.tokens on 0.0.0.0: %v", err)
	}
	s.Close()
}

func TestNoGoroutineLeak(t *testing.T) {
	up := newSlowUpstream(t)
	close(up.release)
	// Counted with the upstream running: its goroutines for the gateway's
	// keep-alive connections must go too once the gateway stops.
	before := runtime.NumGoroutine()
	dir := newRepo(t, map[string]string{
		"one.yaml":  scriptAPI("t.one", "online", "one"),
		"slow.yaml": httpAPI("t.slow", up.URL+"/slow"),
	})
	ts := startServer(t, Options{Dir: dir})
	l := startLoad(ts, 4, map[string][]string{"t.one": {"one", "two"}})
	l.progress(t, 20)
	if env, err := ts.call("t.slow"); err != nil || env.Code != 200 {
		t.Fatalf("t.slow: %v %+v", err, env)
	}
	writeFile(t, dir+"/apis/one.yaml", scriptAPI("t.one", "online", "two"))
	ts.expectValue(t, "t.one", "two")
	writeFile(t, dir+"/apis/sub/three.yaml", scriptAPI("t.three", "online", "three"))
	ts.expectValue(t, "t.three", "three")
	l.stop(t)
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, before)
}

func TestChangeBeforeServe(t *testing.T) {
	// A deploy that lands between New and Serve is not lost.
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/apis/one.yaml", scriptAPI("t.one", "online", "two"))
	ts := serveServer(t, s)
	ts.expectValue(t, "t.one", "two")
}
