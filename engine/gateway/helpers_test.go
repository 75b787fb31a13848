package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pollTimeout bounds the wait for a change to become visible. It is long
// only for a slow machine under -race; a poll ends as soon as it holds.
const pollTimeout = 30 * time.Second

// clientTimeout is the test clients' safety net against a gateway that
// never answers; what a test judges is the answer, never how fast it came
// (a busy machine running the race detector can take seconds).
const clientTimeout = 2 * time.Minute

// basePath is the default portal base path.
const basePath = "/admin-api/databus/api/portal"

// testSettings turns the security chain off: it is not part of this build.
const testSettings = `apiVersion: databus/v1
kind: Settings
apiPortal:
  security: {enabled: false}
`

// scriptAPI is an API whose script answers {v: value}. The script's time
// bound is generous: under -race and the load of these tests on a small
// machine a run can take far longer than the 100ms default, and these tests
// are about reloads, not speed.
func scriptAPI(code, status, value string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: %s
methods: [GET, POST]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {lang: javascript, timeout: 10s, source: 'function main(ctx) { return {v: %q} }'}
  - {id: end, type: end}
`, code, status, value)
}

// writeRepo writes files (repository-relative, slash-separated) under dir.
func writeRepo(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), content)
	}
}

// writeFile writes in place (truncate, then write), as `echo > file` does.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes a temporary file beside path and renames it over path,
// as editors and deploy tools do.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newRepo builds a repository in a temp dir: the test settings plus apis,
// keyed by file name under apis/ and holding the file's content.
func newRepo(t *testing.T, apis map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{"databus.yaml": testSettings}
	for name, content := range apis {
		files["apis/"+name] = content
	}
	writeRepo(t, dir, files)
	return dir
}

// testServer is a gateway serving on loopback listeners.
type testServer struct {
	*Server
	portalURL string // http://127.0.0.1:port
	adminURL  string
	client    *http.Client
	cancel    context.CancelFunc
	done      chan error // receives Serve's result
	stopOnce  sync.Once
	stopErr   error

	watchMu sync.Mutex
	watched map[string]bool // path -> how the watcher classified its last event
}

// classified reports whether the watcher has seen an event for path and
// classified it as relevant or not.
func (ts *testServer) classified(path string) (relevant, seen bool) {
	ts.watchMu.Lock()
	defer ts.watchMu.Unlock()
	relevant, seen = ts.watched[path]
	return relevant, seen
}

// waitIgnored waits until the watcher has seen an event for each path and
// ignored it: the proof that a change did not schedule a reload.
func (ts *testServer) waitIgnored(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		waitFor(t, 5*time.Second, "the watcher saw "+p, func() bool {
			_, seen := ts.classified(p)
			return seen
		})
		if relevant, _ := ts.classified(p); relevant {
			t.Errorf("%s counted as a config change", p)
		}
	}
}

// startServer loads dir, serves it, and waits until /readyz answers 200
// (by then the file watcher is in place). Cleanup stops it.
func startServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return serveServer(t, s)
}

// serveServer serves s on loopback listeners and waits until /readyz
// answers 200. Cleanup stops it.
func serveServer(t *testing.T, s *Server) *testServer {
	t.Helper()
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		portalLn.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		Server:    s,
		portalURL: "http://" + portalLn.Addr().String(),
		adminURL:  "http://" + adminLn.Addr().String(),
		client:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: clientTimeout},
		cancel:    cancel,
		done:      make(chan error, 1),
		watched:   map[string]bool{},
	}
	s.watchObserver = func(path string, relevant bool) {
		ts.watchMu.Lock()
		ts.watched[path] = relevant
		ts.watchMu.Unlock()
	}
	go func() { ts.done <- s.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		s.Close()
	})
	waitFor(t, 5*time.Second, "readyz 200", func() bool {
		st, _ := ts.admin("/readyz")
		return st == http.StatusOK
	})
	return ts
}

// stop cancels Serve and waits for it to return.
func (ts *testServer) stop() error {
	ts.stopOnce.Do(func() {
		// A connection the client dialed but never used counts as busy
		// for http.Server.Shutdown during its first 5s: close ours first.
		ts.client.CloseIdleConnections()
		ts.cancel()
		select {
		case ts.stopErr = <-ts.done:
		case <-time.After(15 * time.Second):
			ts.stopErr = fmt.Errorf("Serve did not return within 15s of its context ending")
		}
		ts.client.CloseIdleConnections()
	})
	return ts.stopErr
}

// envelope is the portal's answer.
type envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
	TraceID  string          `json:"traceId"`
}

// value is response.v of a script API's answer.
func (e envelope) value() string {
	var r struct {
		V string `json:"v"`
	}
	json.Unmarshal(e.Response, &r)
	return r.V
}

// call sends a GET to the API code/v1 and decodes the envelope. It checks
// the envelope is well formed: code equals the status, a trace id is set.
func (ts *testServer) call(code string) (envelope, error) {
	return ts.do(http.MethodGet, code, nil)
}

func (ts *testServer) do(method, code string, body io.Reader) (envelope, error) {
	var env envelope
	req, err := http.NewRequest(method, ts.portalURL+basePath+"/"+code+"/v1", body)
	if err != nil {
		return env, err
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		return env, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("%s: status %d, body is not an envelope: %v: %q", code, resp.StatusCode, err, data)
	}
	if env.Code != resp.StatusCode || env.TraceID == "" || env.Message == "" {
		return env, fmt.Errorf("%s: status %d, malformed envelope %q", code, resp.StatusCode, data)
	}
	return env, nil
}

// admin GETs path on the admin listener.
func (ts *testServer) admin(path string) (int, map[string]any) {
	resp, err := ts.client.Get(ts.adminURL + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// expectValue polls until code answers 200 with response.v == want.
func (ts *testServer) expectValue(t *testing.T, code, want string) {
	t.Helper()
	var last string
	waitFor(t, pollTimeout, fmt.Sprintf("%s answers %q", code, want), func() bool {
		env, err := ts.call(code)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %s %s", env.Code, env.Message, env.Response)
		return env.Code == http.StatusOK && env.value() == want
	}, func() string { return "last answer: " + last })
}

// expectNotFound polls until code answers 404 with the not-found message.
func (ts *testServer) expectNotFound(t *testing.T, code string) {
	t.Helper()
	var last string
	waitFor(t, pollTimeout, code+" answers 404", func() bool {
		env, err := ts.call(code)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %s %s", env.Code, env.Message, env.Response)
		return env.Code == http.StatusNotFound && env.Message == "API 定义未发布或已下线"
	}, func() string { return "last answer: " + last })
}

// waitFor polls cond until it holds or the deadline passes. An optional
// detail func adds context to the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			msg := "timed out after " + timeout.String() + " waiting for " + what
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// load calls a set of APIs in a loop from several goroutines and records
// every answer that is not a 200 envelope with an allowed value.
type load struct {
	ts      *testServer
	allowed map[string][]string // API code → acceptable response.v values
	stopc   chan struct{}
	wg      sync.WaitGroup
	ok      atomic.Int64
	mu      sync.Mutex
	fails   []string
	nfails  int
}

// startLoad runs workers goroutines calling every API of allowed in turn.
func startLoad(ts *testServer, workers int, allowed map[string][]string) *load {
	l := &load{ts: ts, allowed: allowed, stopc: make(chan struct{})}
	codes := make([]string, 0, len(allowed))
	for c := range allowed {
		codes = append(codes, c)
	}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				code := codes[i%len(codes)]
				env, err := ts.call(code)
				switch {
				case err != nil:
					l.fail(err.Error())
				case env.Code != http.StatusOK:
					l.fail(fmt.Sprintf("%s: %d %s", code, env.Code, env.Message))
				case !contains(l.allowed[code], env.value()):
					l.fail(fmt.Sprintf("%s: unexpected value %q (want one of %q)", code, env.value(), l.allowed[code]))
				default:
					l.ok.Add(1)
				}
			}
		}(w)
	}
	return l
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nfails++
	if len(l.fails) < 10 {
		l.fails = append(l.fails, msg)
	}
}

// progress waits until the load made n more successful calls, so that a
// phase of a test really ran under load.
func (l *load) progress(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	waitFor(t, 10*time.Second, fmt.Sprintf("%d more successful calls under load", n), func() bool {
		return l.ok.Load() >= target || l.failed() > 0
	})
}

func (l *load) failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nfails
}

// stop ends the load and fails the test on any failed call.
func (l *load) stop(t *testing.T) {
	t.Helper()
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nfails > 0 {
		t.Errorf("%d of %d calls under load failed; first ones:\n  %s", l.nfails, l.ok.Load()+int64(l.nfails), strings.Join(l.fails, "\n  "))
	}
	if l.ok.Load() == 0 {
		t.Error("the load made no successful call")
	}
	t.Logf("load: %d successful calls", l.ok.Load())
}

// waitGoroutines waits until no more goroutines run than before (give or
// take 2 of the runtime's), and fails with every stack when they do not.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	const slack = 2
	var now int
	waitFor(t, 10*time.Second, "goroutines back to the start", func() bool {
		now = runtime.NumGoroutine()
		return now <= before+slack
	}, func() string {
		buf := make([]byte, 1<<20)
		return fmt.Sprintf("%d goroutines at start, %d now:\n%s", before, now, buf[:runtime.Stack(buf, true)])
	})
}
