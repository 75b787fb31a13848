package portal

import (
	"bytes"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/internal/testredis"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// benchUpstream answers a small JSON document, like a typical API.
func benchUpstream() *httptest.Server {
	body := []byte(`{"code":0,"data":{"orderNo":"A-1","status":"created","items":[1,2,3]}}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

func drive(b *testing.B, client *http.Client, target, body string) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(target, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkProxy compares, in one run, a plain httputil.ReverseProxy (the
// baseline) with Databus serving a passthrough API (start → http → end) and
// a three-step API with jq transforms, all to the same upstream over real
// loopback HTTP. Compare ns/op of the sub-benchmarks.
func BenchmarkProxy(b *testing.B) {
	up := benchUpstream()
	defer up.Close()
	target, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	base := httptest.NewServer(rp)
	defer base.Close()

	dir := testRepo(b, map[string]string{
		"databus.yaml":    "apiPortal:\n  basePath: /api\n  security: {enabled: false}\n",
		"policies/p.yaml": policy,
		"apis/pass.yaml": api("bench.pass", "online", "[POST]",
			"  - id: call\n    type: http\n    http: {method: POST, url: '"+up.URL+"/orders'}\n"),
		"apis/three.yaml": "apiVersion: databus/v1\nkind: Api\ncode: bench.three\nversion: v1\nstatus: online\nmethods: [POST]\npolicies: {rateLimit: p}\n" +
			"transforms: {response: '{orderNo: .steps.create.orderNo, score: .steps.score.s, status: .steps.confirm.status}'}\nsteps:\n" +
			"  - {id: start, type: start}\n" +
			"  - id: create\n    type: http\n    http: {method: POST, url: '" + up.URL + "/orders/${.request.body.orderNo}'}\n" +
			"    transforms: {request: '{orderNo: .request.body.orderNo, qty: (.request.body.qty * 2)}', response: '.body.data'}\n" +
			"  - id: score\n    type: script\n    script: {source: 'function main(c) { return {s: c.steps.create.items.length} }'}\n" +
			"  - id: confirm\n    type: http\n    http: {method: POST, url: '" + up.URL + "/confirm', headers: {X-Order: '${.steps.create.orderNo}'}}\n" +
			"    transforms: {request: '{no: .steps.create.orderNo}', response: '.body.data'}\n" +
			"  - {id: end, type: end}\n",
	})
	h, _ := newPortal(b, dir)
	gw := httptest.NewServer(h)
	defer gw.Close()

	body := `{"orderNo":"A-1","qty":2}`
	b.Run("baseline-reverseproxy", func(b *testing.B) { drive(b, benchClient(), base.URL+"/orders", body) })
	b.Run("databus-passthrough", func(b *testing.B) { drive(b, benchClient(), gw.URL+"/api/bench.pass/v1", body) })
	b.Run("databus-3step-jq", func(b *testing.B) { drive(b, benchClient(), gw.URL+"/api/bench.three/v1", body) })
}

// BenchmarkSecurityChain measures the portal handler in-process on an API
// without steps (start → end, so the chain's cost shows) with the security
// chain off and with the full chain (AES decryption,
// HMAC-SHA256, nonce, response encryption). Requests are signed before the
// timer starts, so only the gateway's work is measured.
func BenchmarkSecurityChain(b *testing.B) {
	f := newSecureFixture(b)
	h := f.srv.Config.Handler
	body := []byte(`{"orderNo":"SO20251120001","items":[{"sku":"A","qty":2}]}`)

	openDir := testRepo(b, map[string]string{
		"databus.yaml":    "apiPortal:\n  basePath: /api\n  security: {enabled: false}\n",
		"policies/p.yaml": policy,
		"apis/plain.yaml": api("sec.plain", "online", "[POST]", ""),
	})
	open, _ := newPortal(b, openDir)

	run := func(b *testing.B, h http.Handler, prepare func(i int) *http.Request) {
		const batch = 256
		reqs := make([]*http.Request, batch)
		b.ReportAllocs()
		for done := 0; done < b.N; done += batch {
			b.StopTimer()
			for i := range reqs {
				reqs[i] = prepare(i)
			}
			b.StartTimer()
			for i := 0; i < batch && done+i < b.N; i++ {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, reqs[i])
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		}
	}
	b.Run("security-off", func(b *testing.B) {
		run(b, open, func(int) *http.Request {
			r := httptest.NewRequest("POST", "/api/sec.plain/v1", bytes.NewReader(body))
			r.RemoteAddr = "127.0.0.1:1"
			return r
		})
	})
	b.Run("full-chain", func(b *testing.B) {
		c := f.client("app-aes")
		run(b, h, func(int) *http.Request {
			req, err := c.Prepare("POST", "sec.plain", nil, body)
			if err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest("POST", "/api/sec.plain/v1", bytes.NewReader(req.Body))
			r.Header = req.Header
			r.RemoteAddr = "127.0.0.1:1"
			return r
		})
	})
}

// BenchmarkRateLimitStores measures the portal in-process on one
// rate-limited API (security off) with the embedded store and with the
// Redis store (DATABUS_TEST_REDIS), so their ratio shows what sharing
// counters across replicas costs.
func BenchmarkRateLimitStores(b *testing.B) {
	dir := testRepo(b, map[string]string{
		"databus.yaml":    "apiPortal:\n  basePath: /api\n  security: {enabled: false}\n",
		"policies/p.yaml": "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\nalgorithm: sliding-window\nlimit: 1000000000\nwindowSeconds: 60\n",
		"apis/a.yaml":     api("rl.bench", "online", "[GET]", ""),
	})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		b.Fatal(err, diags)
	}
	env := &flow.Env{Client: &http.Client{}, DefaultTimeout: time.Second, MaxResponseBytes: 1 << 20}
	run := func(b *testing.B, limits ratelimit.Store, backend string) {
		snap, err := snapshot.Build(repo, snapshot.Deps{Env: env, Limits: limits, StoreBackend: backend})
		if err != nil {
			b.Fatal(err)
		}
		h := New(func() *snapshot.Snapshot { return snap }, Options{})
		b.ReportAllocs()
		b.SetParallelism(8) // 16 concurrent requests, as a loaded gateway has
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := httptest.NewRequest("GET", "/api/rl.bench/v1", nil)
				r.RemoteAddr = "127.0.0.1:1"
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 || w.Header().Get("X-RateLimit-Limit") == "" {
					b.Errorf("status %d", w.Code)
					return
				}
			}
		})
	}
	b.Run("embedded", func(b *testing.B) { run(b, ratelimit.NewMemory(0), "memory") })
	b.Run("redis", func(b *testing.B) {
		c := redis.NewClient(&redis.Options{Addr: testredis.Addr(b)})
		defer c.Close()
		run(b, ratelimit.NewRedis(c, time.Second), "redis")
	})
}
