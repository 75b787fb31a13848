package portal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/snapshot"
)

func TestRateLimitAnswers(t *testing.T) {
	limited := "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: two\nalgorithm: fixed-window\nlimit: 2\nwindowSeconds: 60\nkeyTemplate: '${apiCode}:${header.X-Client-Id}'\n"
	files := func(enable string) map[string]string {
		return map[string]string{
			"databus.yaml":      "apiPortal:\n  basePath: /api\n  enableRateLimit: " + enable + "\n  security: {enabled: false}\n",
			"policies/p.yaml":   policy,
			"policies/two.yaml": limited,
			"apis/a.yaml":       strings.Replace(api("rl.a", "online", "[GET]", scriptStep(`function main(c) { return 1 }`)), "rateLimit: p", "rateLimit: two", 1),
		}
	}
	h, _ := newPortal(t, testRepo(t, files("true")))
	client := map[string]string{"X-Client-Id": "web"}
	for i, want := range []int{200, 200, 429, 429} {
		w, env := do(t, h, "GET", "/api/rl.a/v1", "", client)
		if w.Code != want {
			t.Fatalf("call %d: %d %q, want %d", i+1, w.Code, env.Message, want)
		}
		if got := w.Header().Get("X-RateLimit-Limit"); got != "2" {
			t.Errorf("call %d: X-RateLimit-Limit %q", i+1, got)
		}
		if want == 200 && w.Header().Get("X-RateLimit-Remaining") != []string{"1", "0"}[i] {
			t.Errorf("call %d: X-RateLimit-Remaining %q", i+1, w.Header().Get("X-RateLimit-Remaining"))
		}
		if want == 429 {
			if env.Message != MsgRateLimited || w.Header().Get("Retry-After") == "" || w.Header().Get("X-RateLimit-Reset") == "" {
				t.Errorf("429: %q, headers %v", env.Message, w.Header())
			}
		}
	}
	// The key template keeps clients apart.
	if w, _ := do(t, h, "GET", "/api/rl.a/v1", "", map[string]string{"X-Client-Id": "other"}); w.Code != http.StatusOK {
		t.Fatalf("another client id was limited: %d", w.Code)
	}
	// enableRateLimit: false switches every policy off.
	h, _ = newPortal(t, testRepo(t, files("false")))
	for i := 0; i < 5; i++ {
		if w, _ := do(t, h, "GET", "/api/rl.a/v1", "", client); w.Code != 200 || w.Header().Get("X-RateLimit-Limit") != "" {
			t.Fatalf("with enableRateLimit false, call %d: %d %v", i+1, w.Code, w.Header())
		}
	}
}

// TestDefaultKeyIgnoresClientID: a policy without keyTemplate counts per
// verified appId with security on and per client IP with it off, so a
// caller rotating the unsigned X-Client-Id header (the Java default's key)
// does not escape a limit of 3.
func TestDefaultKeyIgnoresClientID(t *testing.T) {
	const three = "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\nlimit: 3\nwindowSeconds: 3600\n"
	app := scriptStep(`function main(c) { return 1 }`)

	t.Run("security on", func(t *testing.T) {
		for k, v := range testKeys {
			t.Setenv("DATABUS_TEST_KEY_"+k, v)
		}
		dir := testRepo(t, map[string]string{
			"databus.yaml":          "apiPortal:\n  basePath: /api\n  security: {enabled: true}\n",
			"policies/p.yaml":       three,
			"credentials/aes.yaml":  cred("app-aes", "HMAC-SHA256", "AES", ""),
			"credentials/none.yaml": cred("app-none", "HMAC-SHA256", "NONE", ""),
			"apis/a.yaml":           api("rl.a", "online", "[POST]", app),
		})
		h, _ := newPortal(t, dir)
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		f := &secureFixture{base: srv.URL + "/api"}
		c := f.client("app-aes")
		c.Now = time.Now
		var got []int
		for i := 0; i < 6; i++ {
			resp := f.send(t, c, "POST", "rl.a", nil, `{}`, func(r *client.Request) { r.Header.Set("X-Client-Id", fmt.Sprint("rotated-", i)) })
			got = append(got, resp.StatusCode)
		}
		if fmt.Sprint(got) != "[200 200 200 429 429 429]" {
			t.Errorf("rotating X-Client-Id under a limit of 3: %v, want 3 allowed then 429", got)
		}
		other := f.client("app-none")
		other.Now = time.Now
		if resp := f.send(t, other, "POST", "rl.a", nil, `{}`, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("another credential shares the counter: %d", resp.StatusCode)
		}
	})

	t.Run("security off", func(t *testing.T) {
		h, _ := newPortal(t, testRepo(t, map[string]string{
			"databus.yaml":    openSettings,
			"policies/p.yaml": three,
			"apis/a.yaml":     api("rl.a", "online", "[POST]", app),
		}))
		var got []int
		for i := 0; i < 6; i++ {
			w, _ := do(t, h, "POST", "/api/rl.a/v1", `{}`, map[string]string{"X-Client-Id": fmt.Sprint("rotated-", i)})
			got = append(got, w.Code)
		}
		if fmt.Sprint(got) != "[200 200 200 429 429 429]" {
			t.Errorf("rotating X-Client-Id under a limit of 3: %v, want 3 allowed then 429", got)
		}
	})
}

// TestRateLimitEvictionsCounted: a full embedded store answers every caller
// (it drops its least recently used key) and counts what it dropped in
// databus_ratelimit_evictions_total.
func TestRateLimitEvictionsCounted(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings + "redis: {failOpen: false}\n",
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("rl.a", "online", "[POST]", scriptStep(`function main(c) { return 1 }`)),
	})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("repository: %v %s", err, diags.Error())
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: &flow.Env{Client: &http.Client{}, DefaultTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	h := New(func() *snapshot.Snapshot { return snap }, Options{Limits: ratelimit.NewMemory(32), Metrics: m})
	const callers = 200
	for i := 0; i < callers; i++ {
		r := httptest.NewRequest("POST", "/api/rl.a/v1", strings.NewReader(`{}`))
		r.RemoteAddr = fmt.Sprintf("10.0.%d.%d:40000", i/250, i%250+1)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("caller %d of %d into a store of 32 keys: %d %s", i+1, callers, w.Code, w.Body)
		}
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := -1.0
	for _, f := range fams {
		if f.GetName() == "databus_ratelimit_evictions_total" {
			n = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if n < callers-32 {
		t.Errorf("databus_ratelimit_evictions_total = %v, want at least %d", n, callers-32)
	}
}
