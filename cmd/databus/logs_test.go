package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/engine/store"
)

// served is a gateway serving on loopback listeners.
type served struct {
	srv    *gateway.Server
	portal string // the portal's base path URL
	admin  string // the admin listener's URL
}

// serveRepo serves dir on loopback with the access log in storagePath.
// stop ends Serve and closes the server (idempotent; also run at cleanup).
func serveRepo(t *testing.T, dir, storagePath string) (s *served, stop func()) {
	t.Helper()
	srv, err := gateway.New(gateway.Options{Dir: dir, NoWatch: true, StoragePath: storagePath})
	if err != nil {
		t.Fatal(err)
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
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	}
	t.Cleanup(stop)
	s = &served{srv: srv, portal: "http://" + pl.Addr().String() + srv.Current().Settings.APIPortal.BasePath, admin: "http://" + al.Addr().String()}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway never became ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s, stop
}

// portalGet calls code/v1 with an X-Trace-Id and returns the HTTP status.
func portalGet(t *testing.T, s *served, code, trace string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.portal+"/"+code+"/v1", nil)
	req.Header.Set("X-Trace-Id", trace)
	req.Header.Set("ZT-App-Id", "cli-app")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Trace-Id"); got != trace {
		t.Fatalf("X-Trace-Id %q, sent %q", got, trace)
	}
	return resp.StatusCode
}

// eventually runs the CLI until ok holds for its output (the access log is
// written off the request path), and returns the last run.
func eventually(t *testing.T, ok func(stdout, stderr string, code int) bool, args ...string) (string, string, int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code := runCLI(args...)
		if ok(out, errOut, code) {
			return out, errOut, code
		}
		if time.Now().After(deadline) {
			t.Fatalf("databus %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const logsAPI = `apiVersion: databus/v1
kind: Api
code: t.hello
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: greet
    type: script
    script: {timeout: 10s, source: 'function main(ctx) { return {hello: ctx.request.appId} }'}
  - {id: end, type: end}
`

func logsRepo(t *testing.T, settings string) string {
	return writeRepo(t, map[string]string{
		"databus.yaml":   "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n" + settings,
		"apis/t.yaml":    logsAPI,
		"apis/fail.yaml": strings.NewReplacer("t.hello", "t.fail", "return {hello: ctx.request.appId}", "throw new Error(\"kaput\")").Replace(logsAPI),
	})
}

func TestLogs(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "databus.db")
	dir := logsRepo(t, "")
	s, stop := serveRepo(t, dir, storage)
	calls := []struct {
		code, trace string
		status      int
	}{
		{"t.hello", "cli-trace-1", 200},
		{"t.hello", "cli-trace-2", 200},
		{"t.none", "cli-trace-3", 404},
		{"t.fail", "cli-trace-4", 500},
		{"t.hello", "cli-trace-5", 200},
	}
	for _, c := range calls {
		if st := portalGet(t, s, c.code, c.trace); st != c.status {
			t.Fatalf("%s: %d, want %d", c.code, st, c.status)
		}
	}

	// --trace: the one record, in full, with its steps.
	out, errOut, _ := eventually(t, func(out, _ string, code int) bool {
		return code == exitOK && strings.Contains(out, "trace=cli-trace-1")
	}, "logs", "--trace", "cli-trace-1", "--admin", s.admin)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[0], " 200 GET ") || !strings.Contains(lines[0], "t.hello:v1") || !strings.Contains(lines[0], "app=cli-app") ||
		!strings.Contains(out, "response: {\"hello\":\"cli-app\"}") || !strings.Contains(out, "step greet") || !strings.Contains(out, "script") ||
		errOut != "1 of 1 records\n" {
		t.Errorf("logs --trace:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
	// Wait until every call is in.
	eventually(t, func(_, errOut string, code int) bool {
		return code == exitOK && strings.Contains(errOut, "of 5 records")
	}, "logs", "--admin", s.admin+"/")

	// --json: one record per line; a failed call with its error.
	out, _, code := runCLI("logs", "--trace", "cli-trace-4", "--admin", s.admin, "--json")
	var rec store.Record
	if err := json.Unmarshal([]byte(out), &rec); code != exitOK || err != nil || rec.TraceID != "cli-trace-4" || rec.HTTPStatus != 500 ||
		rec.Status != store.StatusServerError || rec.ErrorCode != "flow" || !strings.Contains(rec.ErrorMessage, "kaput") {
		t.Errorf("logs --trace --json: exit %d %v\n%s", code, err, out)
	}

	// Filters: API, status, app, limit, since.
	for _, tc := range []struct {
		args   []string
		traces []string
	}{
		{[]string{"--api", "t.hello"}, []string{"cli-trace-5", "cli-trace-2", "cli-trace-1"}},
		{[]string{"--api", "t.hello", "--limit", "2"}, []string{"cli-trace-5", "cli-trace-2"}},
		{[]string{"--status", "1"}, []string{"cli-trace-3"}},
		{[]string{"--status", "2"}, []string{"cli-trace-4"}},
		{[]string{"--app", "cli-app", "--since", "1h"}, []string{"cli-trace-5", "cli-trace-4", "cli-trace-3", "cli-trace-2", "cli-trace-1"}},
		{[]string{"--app", "nobody"}, nil},
		{[]string{"--trace", "no-such-trace"}, nil},
	} {
		args := append([]string{"logs", "--admin", s.admin, "--json"}, tc.args...)
		out, errOut, code := runCLI(args...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var r store.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%v: not a JSON record: %q", tc.args, l)
			}
			got = append(got, r.TraceID)
		}
		if code != exitOK || strings.Join(got, " ") != strings.Join(tc.traces, " ") || errOut != "" {
			t.Errorf("logs %v: exit %d, traces %v; want %v (stderr %q)", tc.args, code, got, tc.traces, errOut)
		}
	}

	// --id: one record in full.
	id := rec.ID
	out, _, code = runCLI("logs", "--admin", s.admin, "--id", id)
	if code != exitOK || !strings.Contains(out, "id="+id) || !strings.Contains(out, "error=flow") || !strings.Contains(out, "kaput") {
		t.Errorf("logs --id: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI("logs", "--admin", s.admin, "--id", "0123456789abcdef01234567"); code != exitInvalid || !strings.Contains(errOut, "no access-log record") {
		t.Errorf("logs --id of a missing record: exit %d %s", code, errOut)
	}

	// --captured: nothing here was captured (capture is off by default).
	if out, _, code := runCLI("logs", "--admin", s.admin, "--json", "--captured"); code != exitOK || out != "" {
		t.Errorf("logs --captured with capture off: exit %d\n%s", code, out)
	}

	// Usage and connection errors.
	if _, _, code := runCLI("logs", "--admin", s.admin, "extra"); code != exitUsage {
		t.Errorf("logs with an argument: exit %d", code)
	}
	if _, _, code := runCLI("logs", "--bogus"); code != exitUsage {
		t.Errorf("logs --bogus: exit %d", code)
	}
	if _, errOut, code := runCLI("logs", "--admin", s.admin, "--status", "7"); code != exitInvalid || !strings.Contains(errOut, "status must be") {
		t.Errorf("logs --status 7: exit %d %s", code, errOut)
	}
	if _, errOut, code := runCLI("logs", "--admin", strings.TrimSuffix(s.portal, "/admin-api/databus/api/portal")); code != exitInvalid || !strings.Contains(errOut, "HTTP 404") {
		t.Errorf("logs against the portal: exit %d %s", code, errOut)
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer plain.Close()
	if _, errOut, code := runCLI("logs", "--admin", plain.URL); code != exitInvalid || !strings.Contains(errOut, "not the admin envelope") {
		t.Errorf("logs against a plain server: exit %d %s", code, errOut)
	}

	// After a restart on the same file the records are still found.
	stop()
	if _, errOut, code := runCLI("logs", "--admin", s.admin, "--trace", "cli-trace-1"); code != exitInvalid || errOut == "" {
		t.Errorf("logs against a stopped gateway: exit %d %s", code, errOut)
	}
	s2, _ := serveRepo(t, dir, storage)
	out, _, code = runCLI("logs", "--trace", "cli-trace-1", "--admin", s2.admin)
	if code != exitOK || !strings.Contains(out, "trace=cli-trace-1") {
		t.Errorf("logs after a restart: exit %d\n%s", code, out)
	}
}

func TestLogsWithAdminTokens(t *testing.T) {
	t.Setenv("LOGS_TEST_VIEWER", "viewer-secret-for-logs")
	t.Setenv("LOGS_TEST_REGISTRY", "registry-secret-for-logs")
	t.Setenv("DATABUS_ADMIN_TOKEN", "")
	dir := logsRepo(t, `admin:
  tokens:
    - {name: v, role: viewer, secret: {secretRef: 'env:LOGS_TEST_VIEWER'}}
    - {name: r, role: registry, secret: {secretRef: 'env:LOGS_TEST_REGISTRY'}}
`)
	s, _ := serveRepo(t, dir, filepath.Join(t.TempDir(), "databus.db"))
	portalGet(t, s, "t.hello", "tok-trace-1")

	// No token: 401, exit 1 with the admin's message.
	if _, errOut, code := runCLI("logs", "--admin", s.admin, "--trace", "tok-trace-1"); code != exitInvalid || !strings.Contains(errOut, "admin token required") {
		t.Errorf("logs without a token: exit %d %s", code, errOut)
	}
	// The wrong role: 403.
	if _, errOut, code := runCLI("logs", "--admin", s.admin, "--token", "registry-secret-for-logs"); code != exitInvalid || !strings.Contains(errOut, "registry") {
		t.Errorf("logs with a registry token: exit %d %s", code, errOut)
	}
	found := func(out, _ string, code int) bool {
		return code == exitOK && strings.Contains(out, "trace=tok-trace-1")
	}
	// --token, --token-file (trailing newline trimmed), $DATABUS_ADMIN_TOKEN.
	eventually(t, found, "logs", "--admin", s.admin, "--trace", "tok-trace-1", "--token", "viewer-secret-for-logs")
	tokFile := filepath.Join(t.TempDir(), "viewer.token")
	if err := os.WriteFile(tokFile, []byte("viewer-secret-for-logs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, found, "logs", "--admin", s.admin, "--trace", "tok-trace-1", "--token-file", tokFile)
	if _, _, code := runCLI("logs", "--admin", s.admin, "--token-file", tokFile+".missing"); code != exitUsage {
		t.Errorf("logs with a missing token file: exit %d", code)
	}
	t.Setenv("DATABUS_ADMIN_TOKEN", "viewer-secret-for-logs")
	eventually(t, found, "logs", "--admin", s.admin, "--trace", "tok-trace-1")
}
