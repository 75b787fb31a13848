package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/internal/testredis"
)

func policy(t testing.TB, algo string, limit, window int, tmpl string) *Policy {
	t.Helper()
	if tmpl == "" {
		tmpl = config.DefaultKeyTemplate
	}
	p, err := Compile(&config.RateLimitPolicy{Name: "p", Algorithm: algo, Limit: limit, WindowSeconds: window, KeyTemplate: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// step is one Take at a time offset, with the expected decision.
type step struct {
	at        time.Duration
	n         int // how many identical takes (default 1)
	allowed   bool
	remaining int64
	retry     time.Duration // checked when not allowed; -1: not checked
}

type boundaryCase struct {
	name  string
	algo  string
	limit int
	win   int
	steps []step
}

var boundaryCases = []boundaryCase{
	{"sliding-window", config.AlgoSlidingWindow, 10, 10, []step{
		{at: 0, n: 10, allowed: true, remaining: 0},
		// The 10 count in full until the next window starts, then fade: at
		// 11s they count 9, leaving room for one.
		{at: 0, allowed: false, remaining: 0, retry: 11 * time.Second},
		{at: 9999 * time.Millisecond, allowed: false, retry: 1001 * time.Millisecond},
		{at: 10 * time.Second, allowed: false, retry: time.Second},
		// Halfway: it counts for 5, so 5 more fit.
		{at: 15 * time.Second, n: 5, allowed: true, remaining: -1},
		{at: 15 * time.Second, allowed: false, remaining: 0, retry: time.Second},
		{at: 16 * time.Second, allowed: true, remaining: 0},
		// Two windows later nothing counts.
		{at: 40 * time.Second, n: 10, allowed: true, remaining: -1},
		{at: 40 * time.Second, allowed: false, remaining: 0, retry: 11 * time.Second},
	}},
	{"token-bucket", config.AlgoTokenBucket, 10, 10, []step{
		{at: 0, n: 10, allowed: true, remaining: -1},
		{at: 0, allowed: false, remaining: 0, retry: time.Second},
		{at: 500 * time.Millisecond, allowed: false, remaining: 0, retry: 500 * time.Millisecond},
		{at: time.Second, allowed: true, remaining: 0},
		{at: time.Second, allowed: false, remaining: 0, retry: time.Second},
		// Refilled in full after a window, never beyond the limit.
		{at: time.Hour, n: 10, allowed: true, remaining: -1},
		{at: time.Hour, allowed: false, remaining: 0, retry: time.Second},
	}},
	{"fixed-window", config.AlgoFixedWindow, 3, 10, []step{
		{at: 0, n: 3, allowed: true, remaining: -1},
		{at: 0, allowed: false, remaining: 0, retry: 10 * time.Second},
		{at: 9999 * time.Millisecond, allowed: false, remaining: 0, retry: time.Millisecond},
		// The counter expires 10s after it was created.
		{at: 10 * time.Second, n: 3, allowed: true, remaining: -1},
		{at: 12 * time.Second, allowed: false, remaining: 0, retry: 8 * time.Second},
	}},
}

// runBoundaryFull checks remaining and retry-after of the last take of each
// step too.
func runBoundaryFull(t *testing.T, store Store, tc boundaryCase, key string) {
	p := policy(t, tc.algo, tc.limit, tc.win, "")
	base := time.UnixMilli(1_800_000_000_000 - 1_800_000_000_000%int64(tc.win*1000))
	for i, s := range tc.steps {
		var d Decision
		for j := 0; j < max(s.n, 1); j++ {
			var err error
			d, err = store.Take(context.Background(), key, p, base.Add(s.at))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if d.Allowed != s.allowed {
				t.Fatalf("step %d (t=%s, take %d): allowed=%v, want %v (%+v)", i, s.at, j+1, d.Allowed, s.allowed, d)
			}
		}
		if s.remaining >= 0 && d.Remaining != s.remaining {
			t.Errorf("step %d (t=%s): remaining %d, want %d", i, s.at, d.Remaining, s.remaining)
		}
		if !s.allowed && s.retry >= 0 && d.RetryAfter != s.retry {
			t.Errorf("step %d (t=%s): retry after %s, want %s", i, s.at, d.RetryAfter, s.retry)
		}
		if !s.allowed && d.RetryAfter <= 0 {
			t.Errorf("step %d: a refusal must say when to retry", i)
		}
	}
}

func TestMemoryBoundaries(t *testing.T) {
	for _, tc := range boundaryCases {
		t.Run(tc.name, func(t *testing.T) {
			runBoundaryFull(t, NewMemory(0), tc, "k")
		})
	}
}

func redisClient(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: testredis.Addr(t)})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRedisBoundaries(t *testing.T) {
	c := redisClient(t)
	store := NewRedis(c, 2*time.Second)
	for _, tc := range boundaryCases {
		if tc.algo == config.AlgoFixedWindow {
			continue // its expiry is Redis's own clock: TestRedisFixedWindow
		}
		t.Run(tc.name, func(t *testing.T) {
			runBoundaryFull(t, store, tc, testredis.Prefix(t)+"k")
		})
	}
}

// TestRedisFixedWindow: the counter's expiry runs on Redis's clock, set when
// the counter is created.
func TestRedisFixedWindow(t *testing.T) {
	c := redisClient(t)
	store := NewRedis(c, 2*time.Second)
	p := policy(t, config.AlgoFixedWindow, 3, 1, "")
	key := testredis.Prefix(t) + "fixed"
	for i := 0; i < 3; i++ {
		d, err := store.Take(context.Background(), key, p, time.Now())
		if err != nil || !d.Allowed || d.Remaining != int64(2-i) {
			t.Fatalf("take %d: %+v %v", i+1, d, err)
		}
	}
	d, err := store.Take(context.Background(), key, p, time.Now())
	if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Fatalf("4th take: %+v %v", d, err)
	}
	ttl, err := c.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 0 || ttl > time.Second {
		t.Fatalf("the counter's expiry: %s %v", ttl, err)
	}
	time.Sleep(d.RetryAfter + 50*time.Millisecond)
	if d, err := store.Take(context.Background(), key, p, time.Now()); err != nil || !d.Allowed {
		t.Fatalf("after the window: %+v %v", d, err)
	}
}

func hammer(t *testing.T, store Store, key string, p *Policy) int64 {
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 200; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				d, err := store.Take(context.Background(), key, p, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return admitted.Load()
}

func TestConcurrencyNeverAdmitsMoreThanTheLimit(t *testing.T) {
	stores := map[string]func(t *testing.T) (Store, string){
		"memory": func(t *testing.T) (Store, string) { return NewMemory(0), "k" },
		"redis": func(t *testing.T) (Store, string) {
			return NewRedis(redisClient(t), 5*time.Second), testredis.Prefix(t) + "k"
		},
	}
	for name, mk := range stores {
		for _, algo := range []string{config.AlgoFixedWindow, config.AlgoSlidingWindow, config.AlgoTokenBucket} {
			t.Run(name+"/"+algo, func(t *testing.T) {
				store, key := mk(t)
				// A long window: nothing refills during the test.
				p := policy(t, algo, 100, 3600, "")
				if got := hammer(t, store, key, p); got != 100 {
					t.Fatalf("200 goroutines x 5 takes admitted %d, want exactly 100", got)
				}
			})
		}
	}
}

func TestKeyTemplate(t *testing.T) {
	h := http.Header{}
	h.Set("X-Client-Id", "web-1")
	v := &Vars{APICode: "order.create", Version: "v1", AppID: "shop", TenantID: "7", ClientIP: "10.0.0.1", Header: h}
	tests := []struct{ algo, tmpl, want string }{
		{config.AlgoFixedWindow, "", "databus:api:rl:order.create:v1:shop"}, // the default: the verified appId
		{config.AlgoFixedWindow, "${appId}/${tenantId}/${clientIp}", "databus:api:rl:shop/7/10.0.0.1"},
		{config.AlgoSlidingWindow, "${apiCode}:${header.X-Missing}", "databus:api:rl:order.create::sw"},
		{config.AlgoTokenBucket, "global", "databus:api:rl:global:tb"},
	}
	for _, tt := range tests {
		if got := policy(t, tt.algo, 1, 1, tt.tmpl).Key(v); got != tt.want {
			t.Errorf("%s %q: %s, want %s", tt.algo, tt.tmpl, got, tt.want)
		}
	}
	if _, err := Compile(&config.RateLimitPolicy{Name: "x", Algorithm: config.AlgoFixedWindow, Limit: 1, WindowSeconds: 1, KeyTemplate: "${nope}"}); err == nil {
		t.Error("an unknown variable must not compile")
	}
}

// TestMemoryEvictsWhenFull: a full embedded store drops its least recently
// used key to make room (counted in Decision.Evicted) instead of refusing
// the new one, and a key in use keeps its count through a flood of fresh
// keys.
func TestMemoryEvictsWhenFull(t *testing.T) {
	const capacity = memShards * 4
	const flood = capacity * 50
	m := NewMemory(capacity)
	p := policy(t, config.AlgoFixedWindow, 2*flood, 60, "")
	now := time.UnixMilli(1_800_000_000_000)
	ctx := context.Background()
	evicted := 0
	for i := 0; i < flood; i++ {
		d, err := m.Take(ctx, fmt.Sprint("flood-", i), p, now)
		if err != nil {
			t.Fatalf("take %d of %d fresh keys into %d: %v", i+1, flood, capacity, err)
		}
		evicted += d.Evicted
		// The hot key is used between every two fresh keys: it is never
		// the least recently used of its shard, so its count survives.
		d, err = m.Take(ctx, "hot", p, now)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(2*flood - (i + 1)); d.Remaining != want {
			t.Fatalf("after %d fresh keys the hot key has %d left, want %d: its state was dropped", i+1, d.Remaining, want)
		}
		evicted += d.Evicted
	}
	if n := m.Len(); n > capacity {
		t.Errorf("holds %d keys, capacity %d", n, capacity)
	}
	if want := flood + 1 - m.Len(); evicted != want {
		t.Errorf("evicted %d, want %d (every key taken minus the ones held)", evicted, want)
	}
	// An expired key makes room without counting as an eviction.
	if d, err := m.Take(ctx, "later", p, now.Add(2*time.Minute)); err != nil || d.Evicted != 0 {
		t.Fatalf("after expiry: evicted %d, %v", d.Evicted, err)
	}
}

// BenchmarkMemoryFull is a full store taking fresh keys: each evicts one.
func BenchmarkMemoryFull(b *testing.B) {
	m := NewMemory(memShards * 1024)
	p := policy(b, config.AlgoFixedWindow, 10, 60, "")
	now := time.Now()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			m.Take(ctx, fmt.Sprintf("k%p-%d", pb, i), p, now)
		}
	})
}

func BenchmarkStores(b *testing.B) {
	p := policy(b, config.AlgoSlidingWindow, 1<<40, 60, "")
	b.Run("memory", func(b *testing.B) {
		m := NewMemory(0)
		b.ReportAllocs()
		for b.Loop() {
			m.Take(context.Background(), "k", p, time.Now())
		}
	})
	b.Run("redis", func(b *testing.B) {
		r := NewRedis(redisClient(b), time.Second)
		key := testredis.Prefix(b) + "k"
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Take(context.Background(), key, p, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
