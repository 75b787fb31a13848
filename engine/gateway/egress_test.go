package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// egressAPI is an API whose http step calls url (a template) with GET.
func egressAPI(code, url string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http: {method: GET, url: '%s', timeout: 5s}
  - {id: end, type: end}
`, code, url)
}

// pathRecorder is a loopback upstream that records the raw request
// target of every call it receives.
type pathRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPathRecorder(t *testing.T) *pathRecorder {
	pr := &pathRecorder{}
	pr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr.mu.Lock()
		pr.paths = append(pr.paths, r.RequestURI)
		pr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(pr.srv.Close)
	return pr
}

func (pr *pathRecorder) got() []string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return append([]string(nil), pr.paths...)
}

// TestBodyCannotSteerStepToAdmin: a caller's host value cannot make a step
// read the admin listener, neither as host:port (even on an allowed host)
// nor with userinfo in front.
func TestBodyCannotSteerStepToAdmin(t *testing.T) {
	up := newPathRecorder(t)
	dir := newRepo(t, map[string]string{"steer.yaml": egressAPI("steer", "http://${.request.body.host}/databus/gateway/definitions")})
	writeFile(t, dir+"/databus.yaml", testSettings+"gateway:\n  webClient: {allowedHosts: [127.0.0.1]}\n")
	ts := startServer(t, Options{Dir: dir})
	admin := strings.TrimPrefix(ts.adminURL, "http://")
	upHost := strings.TrimPrefix(up.srv.URL, "http://")

	for _, tt := range []struct {
		host   string
		status int
		says   string
	}{
		{admin, http.StatusBadGateway, "admin listener"},
		{"x@" + admin, http.StatusBadRequest, `step "call"`},
		{"localhost:" + strings.Split(admin, ":")[1], http.StatusBadGateway, `"localhost" is not in gateway.webClient.allowedHosts`},
		{upHost + "/x?", http.StatusBadRequest, "authority"},
		{upHost, http.StatusOK, ""},
	} {
		env, err := ts.do(http.MethodPost, "steer", strings.NewReader(fmt.Sprintf(`{"host":%q}`, tt.host)))
		if err != nil {
			t.Fatal(err)
		}
		if env.Code != tt.status || !strings.Contains(env.Message, tt.says) {
			t.Errorf("host %q: %d %q %s; want %d naming %q", tt.host, env.Code, env.Message, env.Response, tt.status, tt.says)
		}
		if strings.Contains(string(env.Response), `"data"`) {
			t.Errorf("host %q: the admin listener's answer reached the caller: %s", tt.host, env.Response)
		}
	}
	// A whole base URL from the body: the same allow-list and guard, no
	// userinfo, no dot-segment.
	writeFile(t, dir+"/apis/base.yaml", egressAPI("base", "${.request.body.base}/items"))
	if res := ts.Reload(context.Background(), "test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	for _, tt := range []struct {
		base   string
		status int
		says   string
	}{
		{ts.adminURL, http.StatusBadGateway, "admin listener"},
		{"http://x@" + admin, http.StatusBadGateway, "userinfo"},
		{"http://127.0.0.2:1", http.StatusBadGateway, `"127.0.0.2" is not in gateway.webClient.allowedHosts`},
		{"file:///etc/passwd#", http.StatusBadGateway, "not http or https"},
		{up.srv.URL + "/..", http.StatusBadRequest, `step "call"`},
		{up.srv.URL, http.StatusOK, ""},
	} {
		env, err := ts.do(http.MethodPost, "base", strings.NewReader(fmt.Sprintf(`{"base":%q}`, tt.base)))
		if err != nil {
			t.Fatal(err)
		}
		if env.Code != tt.status || !strings.Contains(env.Message, tt.says) {
			t.Errorf("base %q: %d %q %s; want %d naming %q", tt.base, env.Code, env.Message, env.Response, tt.status, tt.says)
		}
	}
	if got := up.got(); strings.Join(got, " ") != "/databus/gateway/definitions /items" {
		t.Errorf("upstream received %q, want /databus/gateway/definitions then /items", got)
	}
}

// TestPathValueMakesNoDotSegment: ".." in a path value is refused (400
// naming the step) and never reaches the upstream; other values arrive
// escaped inside their segment.
func TestPathValueMakesNoDotSegment(t *testing.T) {
	up := newPathRecorder(t)
	dir := newRepo(t, map[string]string{"item.yaml": egressAPI("item", up.srv.URL+"/items/${.request.body.id}/detail")})
	ts := startServer(t, Options{Dir: dir})
	for _, id := range []string{"..", ".", "../admin"} {
		env, err := ts.do(http.MethodPost, "item", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id)))
		if err != nil {
			t.Fatal(err)
		}
		if id == "../admin" {
			if env.Code != http.StatusOK {
				t.Errorf("id %q: %d %q, want 200", id, env.Code, env.Message)
			}
			continue
		}
		if env.Code != http.StatusBadRequest || !strings.Contains(env.Message, `step "call"`) {
			t.Errorf("id %q: %d %q, want 400 naming step \"call\"", id, env.Code, env.Message)
		}
	}
	for _, id := range []string{"%2E%2E", "a"} {
		if env, err := ts.do(http.MethodPost, "item", strings.NewReader(fmt.Sprintf(`{"id":%q}`, id))); err != nil || env.Code != http.StatusOK {
			t.Fatalf("id %q: %v %d %q", id, err, env.Code, env.Message)
		}
	}
	want := []string{"/items/..%2Fadmin/detail", "/items/%252E%252E/detail", "/items/a/detail"}
	got := up.got()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("upstream received %q, want %q", got, want)
	}
	for _, p := range got {
		for _, seg := range strings.Split(p, "/") {
			if s, _ := url.PathUnescape(seg); seg == "." || seg == ".." || strings.EqualFold(seg, "%2e%2e") || s == ".." {
				t.Errorf("upstream received the dot-segment path %q", p)
			}
		}
	}
}

// TestDialerRefusesAdminListener: even a literal url cannot reach the
// gateway's own admin listener unless allowAdminListener says so.
func TestDialerRefusesAdminListener(t *testing.T) {
	dir := newRepo(t, map[string]string{"self.yaml": egressAPI("self", "http://127.0.0.1:1/readyz")})
	ts := startServer(t, Options{Dir: dir})
	apiFile := dir + "/apis/self.yaml"
	writeFile(t, apiFile, egressAPI("self", ts.adminURL+"/readyz"))
	if res := ts.Reload(context.Background(), "test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	env, err := ts.do(http.MethodPost, "self", nil)
	if err != nil {
		t.Fatal(err)
	}
	if env.Code != http.StatusBadGateway || !strings.Contains(env.Message, `step "call"`) || !strings.Contains(env.Message, "admin listener") {
		t.Errorf("literal admin url: %d %q, want 502 naming the step and the admin listener", env.Code, env.Message)
	}
	// The same through "localhost" (resolved before the check).
	port := strings.Split(ts.adminURL, ":")[2]
	writeFile(t, apiFile, egressAPI("self", "http://localhost:"+port+"/readyz"))
	if res := ts.Reload(context.Background(), "test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	if env, err := ts.do(http.MethodPost, "self", nil); err != nil || env.Code != http.StatusBadGateway {
		t.Errorf("localhost admin url: %v %d %q, want 502", err, env.Code, env.Message)
	}

	writeFile(t, dir+"/databus.yaml", testSettings+"gateway:\n  webClient: {allowAdminListener: true}\n")
	if res := ts.Reload(context.Background(), "test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	if env, err := ts.do(http.MethodPost, "self", nil); err != nil || env.Code != http.StatusOK {
		t.Errorf("allowAdminListener: %v %d %q, want 200", err, env.Code, env.Message)
	}
}
