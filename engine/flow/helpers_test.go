package flow

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
)

// testEnv returns an Env with its own transport, closed when the test ends.
func testEnv(tb testing.TB) *Env {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}
	tb.Cleanup(tr.CloseIdleConnections)
	return &Env{
		Client:           &http.Client{Transport: tr},
		DefaultTimeout:   5 * time.Second,
		MaxResponseBytes: 1 << 20,
	}
}

// apiHeader is prepended to every API body written by compileFlow.
const apiHeader = `apiVersion: databus/v1
kind: Api
code: test.api
version: v1
status: online
methods: [GET, POST, PUT]
`

// settingsFile is the databus.yaml of the test repositories.
const settingsFile = "apiVersion: databus/v1\nkind: Settings\n"

// compileFlow writes an API definition (apiHeader + body, with every
// {{up}} replaced by upstream) into a temporary repository, loads it with
// config.Load, fails the test on any load error, and compiles it.
func compileFlow(tb testing.TB, env *Env, body string, upstream string) *Flow {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apis"), 0o755); err != nil {
		tb.Fatal(err)
	}
	src := apiHeader + strings.ReplaceAll(body, "{{up}}", upstream)
	if err := os.WriteFile(filepath.Join(dir, "apis", "test.yaml"), []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "databus.yaml"), []byte(settingsFile), 0o644); err != nil {
		tb.Fatal(err)
	}
	repo, diags, err := config.Load(dir)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	if diags.HasErrors() {
		tb.Fatalf("load errors:\n%v\nsource:\n%s", diags.Errors(), src)
	}
	if len(repo.APIs) != 1 {
		tb.Fatalf("loaded %d APIs, want 1", len(repo.APIs))
	}
	f, err := Compile(repo.APIs[0], env)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return f
}

// seen is one request an upstream received.
type seen struct {
	Method string
	Path   string
	Query  string // raw query
	Header http.Header
	Body   []byte
	At     time.Time
}

// upstream is a real HTTP server on loopback that records what it received.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newUpstream starts an upstream serving h (after recording the request).
func newUpstream(tb testing.TB, h http.HandlerFunc) *upstream {
	tb.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, At: time.Now()})
		u.mu.Unlock()
		h(w, r)
	}))
	tb.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

// jsonReply answers status with a JSON body.
func jsonReply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// closedURL returns an http URL on loopback where nothing listens.
func closedURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// jsonReq is a POST from a caller with a JSON body.
func jsonReq(body string) *Request {
	return &Request{
		Method:      http.MethodPost,
		Path:        "/portal/test.api/v1",
		Header:      http.Header{"Content-Type": {"application/json"}},
		Body:        []byte(body),
		ContentType: "application/json",
		APICode:     "test.api",
		Version:     "v1",
		AppID:       "app-1",
		TenantID:    "t-1",
		ClientID:    "client-1",
		IP:          "127.0.0.1",
		TraceID:     "trace-1",
	}
}

// run runs f and registers the result's Close.
func run(tb testing.TB, f *Flow, req *Request) *Result {
	tb.Helper()
	res := f.Run(context.Background(), req)
	tb.Cleanup(res.Close)
	return res
}

// mustOK fails the test when the run failed and returns Output.JSON().
func mustOK(tb testing.TB, res *Result) []byte {
	tb.Helper()
	if res.Err != nil {
		tb.Fatalf("run failed: %d %s (step %q, phase %q)", res.Err.Status, res.Err.Message, res.Err.Step, res.Err.Phase)
	}
	b, err := res.Output.JSON()
	if err != nil {
		tb.Fatalf("Output.JSON: %v", err)
	}
	return b
}

// mustFail fails the test unless the run failed with status and a message
// containing every one of parts.
func mustFail(tb testing.TB, res *Result, status int, parts ...string) *Error {
	tb.Helper()
	if res.Err == nil {
		out, _ := res.Output.JSON()
		tb.Fatalf("run succeeded with %s, want error %d", out, status)
	}
	if res.Err.Status != status {
		tb.Errorf("status = %d (%s), want %d", res.Err.Status, res.Err.Message, status)
	}
	for _, p := range parts {
		if !strings.Contains(res.Err.Message, p) {
			tb.Errorf("message %q does not contain %q", res.Err.Message, p)
		}
	}
	return res.Err
}

// jsonEqual compares JSON semantically.
func jsonEqual(tb testing.TB, got []byte, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("want invalid JSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("JSON mismatch\n got: %s\nwant: %s", got, want)
	}
}

// result returns the StepResult of step id.
func result(tb testing.TB, res *Result, id string) StepResult {
	tb.Helper()
	for _, r := range res.Inv.Results {
		if r.ID == id {
			return r
		}
	}
	tb.Fatalf("no result for step %q in %+v", id, res.Inv.Results)
	return StepResult{}
}
