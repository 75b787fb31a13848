package security

import (
	"context"
	"errors"
	"fmt"
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
