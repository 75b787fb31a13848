package security

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryNoncesReplayAndExpiry(t *testing.T) {
	m := NewMemoryNonces(100)
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	if fresh, err := m.Use(ctx, "app\x00n1", time.Minute); !fresh || err != nil {
		t.Fatalf("first use: %v %v", fresh, err)
	}
	if fresh, _ := m.Use(ctx, "app\x00n1", time.Minute); fresh {
		t.Fatal("a nonce used within its TTL must be refused")
	}
	if fresh, _ := m.Use(ctx, "other\x00n1", time.Minute); !fresh {
		t.Fatal("nonces are per app")
	}
	now = now.Add(59 * time.Second)
	if fresh, _ := m.Use(ctx, "app\x00n1", time.Minute); fresh {
		t.Fatal("still within the TTL")
	}
	now = now.Add(2 * time.Second)
	if fresh, _ := m.Use(ctx, "app\x00n1", time.Minute); !fresh {
		t.Fatal("after its TTL a nonce may be used again")
	}
}

func TestMemoryNoncesBoundedRefusesNeverForgets(t *testing.T) {
	m := NewMemoryNonces(nonceShards * 4) // 4 per shard
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	var used []string
	full := 0
	for i := 0; i < nonceShards*8; i++ {
		k := fmt.Sprintf("app\x00nonce-%d", i)
		fresh, err := m.Use(ctx, k, time.Minute)
		switch {
		case errors.Is(err, ErrNonceStoreFull):
			full++
		case err != nil || !fresh:
			t.Fatalf("%s: %v %v", k, fresh, err)
		default:
			used = append(used, k)
		}
	}
	if full == 0 {
		t.Fatal("a full store must refuse new nonces")
	}
	if m.Len() > nonceShards*4 {
		t.Fatalf("store holds %d, bound is %d", m.Len(), nonceShards*4)
	}
	// Under pressure nothing was forgotten: every accepted nonce is still
	// refused as a replay.
	for _, k := range used {
		if fresh, err := m.Use(ctx, k, time.Minute); fresh || err != nil {
			t.Fatalf("%s was forgotten under pressure (fresh=%v err=%v)", k, fresh, err)
		}
	}
	// Once they expire, room comes back.
	now = now.Add(2 * time.Minute)
	if fresh, err := m.Use(ctx, "app\x00late", time.Minute); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	if m.Len() > 1 {
		t.Fatalf("expired entries were not evicted: %d left", m.Len())
	}
}

func TestMemoryNoncesConcurrentOneWinner(t *testing.T) {
	m := NewMemoryNonces(0)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if fresh, _ := m.Use(context.Background(), "app\x00same", time.Minute); fresh {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d goroutines used the same nonce", wins.Load())
	}
}

func BenchmarkMemoryNonces(b *testing.B) {
	m := NewMemoryNonces(0)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Use(ctx, fmt.Sprintf("app\x00%d", n.Add(1)), time.Second)
		}
	})
}

// TestMemoryNoncesExpiredBehindLongerTTL: entries with a short TTL recorded
// after ones with a long TTL (the TTL changed on reload) make room as soon
// as they expire, though the long ones were recorded first.
func TestMemoryNoncesExpiredBehindLongerTTL(t *testing.T) {
	m := NewMemoryNonces(nonceShards * 8)
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	long, short := 0, 0
	// Enough attempts to fill every shard, long and short TTLs alternating.
	for i := 0; i < nonceShards*8*8; i++ {
		ttl := time.Hour
		if i%2 == 1 {
			ttl = time.Minute
		}
		fresh, err := m.Use(ctx, fmt.Sprintf("app\x00n-%d", i), ttl)
		if errors.Is(err, ErrNonceStoreFull) {
			continue
		}
		if err != nil || !fresh {
			t.Fatalf("fill %d: %v %v", i, fresh, err)
		}
		if ttl == time.Hour {
			long++
		} else {
			short++
		}
	}
	now = now.Add(2 * time.Minute)
	// Every shard has room again for its expired short-TTL entries.
	accepted := 0
	for i := 0; i < nonceShards*8*16; i++ {
		if fresh, err := m.Use(ctx, fmt.Sprintf("app\x00m-%d", i), time.Minute); err == nil && fresh {
			accepted++
		}
	}
	if accepted != short {
		t.Fatalf("after %d short-TTL entries expired, %d new nonces were accepted", short, accepted)
	}
	if m.Len() != long+short {
		t.Fatalf("holds %d, want %d", m.Len(), long+short)
	}
}

// TestMemoryNoncesBoundedWorkPerUse: when a whole shard expires at once,
// one Use evicts at most evictPerUse entries, not the shard; later calls
// finish the work, and the store never holds more than its bound.
func TestMemoryNoncesBoundedWorkPerUse(t *testing.T) {
	const per = 1000
	m := NewMemoryNonces(nonceShards * per)
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < nonceShards*per*2; i++ {
		m.Use(ctx, fmt.Sprintf("app\x00n-%d", i), time.Minute)
	}
	for i := range m.shards {
		if n := len(m.shards[i].heap); n > per {
			t.Fatalf("shard %d holds %d entries, bound %d", i, n, per)
		}
	}
	now = now.Add(2 * time.Minute)
	key := "app\x00after"
	s := &m.shards[maphashString(m, 0, key)%nonceShards]
	before := len(s.heap)
	if fresh, err := m.Use(ctx, key, time.Minute); !fresh || err != nil {
		t.Fatalf("after expiry: %v %v", fresh, err)
	}
	if removed := before + 1 - len(s.heap); removed < 1 || removed > evictPerUse {
		t.Fatalf("one Use evicted %d entries; want 1..%d", removed, evictPerUse)
	}
	if m.Len() != 1 {
		t.Fatalf("expired entries left behind: %d held", m.Len())
	}
}

func maphashString(m *MemoryNonces, seed int, key string) uint64 {
	return maphash.String(m.seeds[seed], key)
}
