package gateway

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The health listener answers /healthz, /readyz and /metrics without a
// token, whatever the admin listener asks, and nothing else: the admin
// API, the pages and the registry are not there.
func TestHealthListener(t *testing.T) {
	t.Setenv("DATABUS_TEST_ADMIN_TOKEN", "s3cret-operator-token")
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "1")})
	writeFile(t, dir+"/databus.yaml", testSettings+"admin:\n  tokens:\n    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_TEST_ADMIN_TOKEN'}}\n")
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ServeHealth(ln)
	ts := serveServer(t, s)
	health := "http://" + ln.Addr().String()
	get := func(base, path string) (int, string) {
		t.Helper()
		resp, err := ts.client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(health, "/healthz"); st != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", st, body)
	}
	if st, body := get(health, "/readyz"); st != http.StatusOK || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz: %d %s", st, body)
	}
	if st, body := get(health, "/metrics"); st != http.StatusOK || !strings.Contains(body, "databus_config_last_reload_success 1") {
		t.Errorf("/metrics: %d %.200s", st, body)
	}
	for _, p := range []string{"/databus/gateway/definition/page", "/ui/", "/v1/server/query", "/debug/pprof/"} {
		if st, _ := get(health, p); st != http.StatusNotFound && st != http.StatusMethodNotAllowed {
			t.Errorf("%s on the health listener: %d, want nothing there", p, st)
		}
	}
	// The admin listener keeps its rules: the same API wants the token.
	if st, _ := get(ts.adminURL, "/databus/gateway/definition/page"); st != http.StatusUnauthorized {
		t.Errorf("admin API without a token: %d, want 401", st)
	}
}

// The health listener holds at most HealthMaxConnections connections: one
// more is answered 503 and closed, and the probes are answered again once
// connections close.
func TestHealthListenerConnectionCap(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "1")})
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ServeHealth(ln)
	serveServer(t, s)
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	probe := func() int {
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: clientTimeout}).Get("http://" + ln.Addr().String() + "/healthz")
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Open connections until the listener holds HealthMaxConnections (each
	// accepted one is served: a probe on it would answer 200).
	for range HealthMaxConnections {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	waitFor(t, pollTimeout, "a probe beyond the cap is refused", func() bool { return probe() == http.StatusServiceUnavailable })
	for _, c := range held {
		c.Close()
	}
	held = nil
	waitFor(t, pollTimeout, "probes answered again", func() bool { return probe() == http.StatusOK })
}
