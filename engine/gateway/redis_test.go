package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/internal/testredis"
)

var apiSeq atomic.Int64

// sharedRepo writes a repository whose stores live in the Redis at addr:
// one credential, one script API limited to limit requests an hour per app.
func sharedRepo(t *testing.T, addr string, security, failOpen bool, limit int) (dir, code string) {
	t.Helper()
	dir = t.TempDir()
	code = fmt.Sprintf("shared.p%d.n%d", os.Getpid(), apiSeq.Add(1))
	writeRepo(t, dir, map[string]string{
		"databus.yaml":       fmt.Sprintf("apiPortal:\n  basePath: "+basePath+"\n  security: {enabled: %v}\nredis:\n  addr: %s\n  timeout: 2s\n  failOpen: %v\n", security, addr, failOpen),
		"keys/a.key":         "0123456789abcdef",
		"credentials/a.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: app-a\nencryptionKey: {secretRef: 'file:keys/a.key'}\n",
		"policies/p.yaml":    fmt.Sprintf("apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\nalgorithm: fixed-window\nlimit: %d\nwindowSeconds: 3600\nkeyTemplate: '${apiCode}:${appId}'\n", limit),
		"apis/a.yaml": "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: v1\nstatus: online\nmethods: [POST]\npolicies: {rateLimit: p}\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {timeout: 10s, source: 'function main(c) { return \"hi\" }'}\n  - {id: end, type: end}\n",
	})
	return dir, code
}

func signedClient(ts *testServer) *client.Client {
	return &client.Client{
		BaseURL:    ts.portalURL + basePath,
		Credential: client.Credential{AppID: "app-a", EncryptionKey: []byte("0123456789abcdef")},
		HTTP:       &http.Client{Timeout: clientTimeout},
	}
}

// TestTwoReplicasShareRedis: two gateways on one Redis — a limit of N is N
// in total, and a nonce used on one is refused on the other.
func TestTwoReplicasShareRedis(t *testing.T) {
	addr := testredis.Addr(t)
	dir, code := sharedRepo(t, addr, true, true, 10)
	a := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "a.db")})
	b := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "b.db")})
	ca, cb := signedClient(a), signedClient(b)
	ok, limited := 0, 0
	for i := 0; i < 16; i++ {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		resp, err := c.Call(context.Background(), code, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		switch resp.Envelope.Code {
		case 200:
			ok++
		case 429:
			limited++
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("429 without Retry-After / X-RateLimit-Remaining: %v", resp.Header)
			}
		default:
			t.Fatalf("call %d: %d %s", i, resp.Envelope.Code, resp.Envelope.Message)
		}
	}
	if ok != 10 || limited != 6 {
		t.Fatalf("across two replicas: %d allowed, %d limited; want 10 and 6", ok, limited)
	}

	// A nonce used on one replica is refused on the other.
	fresh := startServer(t, Options{Dir: must(sharedRepo(t, addr, true, true, 1000)), NoWatch: true})
	other := startServer(t, Options{Dir: fresh.Current().Repo.Dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "other.db")})
	c1, c2 := signedClient(fresh), signedClient(other)
	apiCode := fresh.Current().Repo.APIs[0].Code
	req, err := c1.Prepare("POST", apiCode, nil, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	r1, err := c1.Send(context.Background(), req)
	if err != nil || r1.Envelope.Code != 200 {
		t.Fatalf("first send: %v %+v", err, r1)
	}
	r2, err := c2.Send(context.Background(), req)
	if err != nil || r2.Envelope.Code != 401 || r2.Envelope.Message != "重复请求" {
		t.Fatalf("replay on the other replica: %v %+v", err, r2.Envelope)
	}
}

func must(dir, _ string) string { return dir }

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// TestRedisOutage kills the test's own redis-server in the middle of the
// test and starts it again: nonces fail closed (503), rate limits fail open
// or closed as configured, failures are logged once per interval and
// counted, and everything recovers by itself.
func TestRedisOutage(t *testing.T) {
	rs := testredis.Start(t)
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))

	secured := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, true, true, 1000)), NoWatch: true, Logger: log})
	open := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, true, 1000)), NoWatch: true})
	closed := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, false, 1000)), NoWatch: true})
	call := func(ts *testServer) (int, string) {
		code := ts.Current().Repo.APIs[0].Code
		if *ts.Current().Settings.APIPortal.Security.Enabled {
			resp, err := signedClient(ts).Call(context.Background(), code, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			return resp.Envelope.Code, resp.Envelope.Message
		}
		env, err := ts.do("POST", code, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return env.Code, env.Message
	}
	for _, ts := range []*testServer{secured, open, closed} {
		if st, msg := call(ts); st != 200 {
			t.Fatalf("before the outage: %d %s", st, msg)
		}
	}

	rs.Kill()
	for i := 0; i < 5; i++ {
		if st, msg := call(secured); st != 503 || msg != "防重放校验暂不可用" {
			t.Fatalf("nonce during the outage: %d %q, want 503", st, msg)
		}
		if st, msg := call(open); st != 200 {
			t.Fatalf("failOpen during the outage: %d %q, want 200", st, msg)
		}
		if st, msg := call(closed); st != 503 || msg != "限流校验暂不可用" {
			t.Fatalf("failOpen false during the outage: %d %q, want 503", st, msg)
		}
	}
	if n := logs.count("store unavailable"); n != 1 {
		t.Errorf("5 nonce failures within the interval logged %d times, want once:\n%s", n, logs.b.String())
	}
	st, body := secured.metricsText(t)
	if st != 200 || !strings.Contains(body, `databus_store_errors_total{backend="redis",store="nonce"} 5`) {
		t.Errorf("metrics do not count the nonce store errors:\n%s", grep(body, "databus_store_errors_total"))
	}

	rs.Restart()
	waitFor(t, 10*time.Second, "recovery after redis restarts", func() bool {
		a, _ := call(secured)
		b, _ := call(closed)
		return a == 200 && b == 200
	})
	if n := logs.count("store available again"); n != 1 {
		t.Errorf("recovery logged %d times, want once", n)
	}
	// Replay protection works again.
	c := signedClient(secured)
	req, _ := c.Prepare("POST", secured.Current().Repo.APIs[0].Code, nil, []byte(`{}`))
	c.Send(context.Background(), req)
	if again, _ := c.Send(context.Background(), req); again.Envelope.Code != 401 {
		t.Errorf("replay after recovery: %d", again.Envelope.Code)
	}
}

func (ts *testServer) metricsText(t *testing.T) (int, string) {
	resp, err := ts.client.Get(ts.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSampleRepositoryIsLimited: the sample API's policy limits it on one
// node with the embedded store, and on two nodes sharing Redis.
func TestSampleRepositoryIsLimited(t *testing.T) {
	sample := func(t *testing.T, redisAddr string) string {
		dir := t.TempDir()
		for _, sub := range []string{"apis", "credentials", "policies", "examples/secrets"} {
			copyDir(t, filepath.Join("..", "..", sub), filepath.Join(dir, sub))
		}
		data, err := os.ReadFile("../../databus.yaml")
		if err != nil {
			t.Fatal(err)
		}
		settings := string(data)
		if redisAddr != "" {
			settings = strings.Replace(settings, `addr: ""`, "addr: "+redisAddr, 1)
		}
		writeFile(t, filepath.Join(dir, "databus.yaml"), settings)
		return dir
	}
	// order.quote is bound to the "strict" policy: a token bucket of 10 a
	// minute per app.
	quote := func(t *testing.T, nodes ...*testServer) (ok, limited int) {
		body := []byte(`{"orderNo":"A-100","items":[{"sku":"x","qty":1,"price":5}]}`)
		for i := 0; i < 12; i++ {
			ts := nodes[i%len(nodes)]
			c := &client.Client{BaseURL: ts.portalURL + basePath,
				Credential: client.Credential{AppID: "demo-app", EncryptionKey: []byte("databus-demo-key")}}
			resp, err := c.Call(context.Background(), "order.quote", body)
			if err != nil {
				t.Fatal(err)
			}
			switch resp.Envelope.Code {
			case 200:
				ok++
			case 429:
				limited++
				if resp.Envelope.Message != "请求触发限流策略" {
					t.Errorf("429 message %q", resp.Envelope.Message)
				}
			default:
				t.Fatalf("%d %s", resp.Envelope.Code, resp.Envelope.Message)
			}
		}
		return ok, limited
	}
	t.Run("one node", func(t *testing.T) {
		ts := startServer(t, Options{Dir: sample(t, ""), NoWatch: true})
		if ok, limited := quote(t, ts); ok != 10 || limited != 2 {
			t.Fatalf("%d allowed, %d limited; want 10 and 2", ok, limited)
		}
	})
	t.Run("two nodes sharing redis", func(t *testing.T) {
		addr := testredis.Addr(t)
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		// The sample's key is fixed: start from an empty bucket.
		rc.Del(context.Background(), "databus:api:rl:order.quote:v1:demo-app:tb")
		dir := sample(t, addr)
		a := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "a.db")})
		b := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "b.db")})
		if a.Current().StoreBackend != "redis" {
			t.Fatalf("store backend %q", a.Current().StoreBackend)
		}
		if ok, limited := quote(t, a, b); ok != 10 || limited != 2 {
			t.Fatalf("across two nodes: %d allowed, %d limited; want 10 and 2", ok, limited)
		}
	})
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRedisOutageUnderLoad kills the Redis server while workers call a
// signed gateway (nonces in Redis), a fail-open one and a fail-closed one
// (counters in Redis), then restarts it: every answer is one the rules
// allow for its phase (before: 200; during: 503 for nonces and fail-closed,
// 200 for fail-open; after: 200 again), and no call errs at the transport.
func TestRedisOutageUnderLoad(t *testing.T) {
	rs := testredis.Start(t)
	secured := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, true, true, 1_000_000)), NoWatch: true})
	open := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, true, 1_000_000)), NoWatch: true})
	closed := startServer(t, Options{Dir: must(sharedRepo(t, rs.Addr, false, false, 1_000_000)), NoWatch: true})

	type tally struct {
		mu     sync.Mutex
		counts map[string]int // "target status"
		bad    []string
	}
	tl := &tally{counts: map[string]int{}}
	var phase atomic.Value // "before", "outage", "after"
	phase.Store("before")
	allowed := map[string]map[string][]int{
		"before": {"secured": {200}, "open": {200}, "closed": {200}},
		// Calls that straddle a phase change, or run while the server is
		// being killed, are not judged. "after" begins as
		// the restart begins, so refusals stay allowed until Redis answers
		// again (and once per dead connection the pool still holds).
		"outage": {"secured": {503}, "open": {200}, "closed": {503}},
		"after":  {"secured": {200, 503}, "open": {200}, "closed": {200, 503}},
	}
	call := func(name string, ts *testServer) int {
		code := ts.Current().Repo.APIs[0].Code
		if name == "secured" {
			resp, err := signedClient(ts).Call(context.Background(), code, []byte(`{}`))
			if err != nil {
				return -1
			}
			return resp.Envelope.Code
		}
		env, err := ts.do("POST", code, strings.NewReader(`{}`))
		if err != nil {
			return -1
		}
		return env.Code
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	targets := map[string]*testServer{"secured": secured, "open": open, "closed": closed}
	for name, ts := range targets {
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ph := phase.Load().(string)
					st := call(name, ts)
					if phase.Load().(string) != ph {
						continue // the call straddled a kill or a restart
					}
					tl.mu.Lock()
					tl.counts[fmt.Sprintf("%s %s %d", ph, name, st)]++
					if rules, judged := allowed[ph]; judged && !slices.Contains(rules[name], st) && len(tl.bad) < 10 {
						tl.bad = append(tl.bad, fmt.Sprintf("%s: %s answered %d", ph, name, st))
					}
					tl.mu.Unlock()
				}
			}()
		}
	}
	count := func(key string) int {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		return tl.counts[key]
	}
	waitFor(t, pollTimeout, "calls before the outage", func() bool { return count("before closed 200") >= 20 })
	phase.Store("killing") // calls in this phase are not judged
	rs.Kill()
	phase.Store("outage")
	waitFor(t, pollTimeout, "refusals during the outage", func() bool {
		return count("outage secured 503") >= 20 && count("outage closed 503") >= 20 && count("outage open 200") >= 20
	})
	phase.Store("after") // from the moment the server may be back
	rs.Restart()
	waitFor(t, pollTimeout, "recovery under load", func() bool {
		return count("after secured 200") >= 20 && count("after closed 200") >= 20
	})
	close(stop)
	wg.Wait()
	if len(tl.bad) > 0 {
		t.Errorf("answers outside the rules:\n  %s", strings.Join(tl.bad, "\n  "))
	}
	t.Logf("%v", tl.counts)
}
