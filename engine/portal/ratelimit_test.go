package portal

import (
	"net/http"
	"strings"
	"testing"
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
