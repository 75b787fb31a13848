package security

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMemoryNoncesFull is the cost of one Use when the store is full of
// live nonces (the store refuses): the case a flood drives it into. It must
// not grow with the store's size.
func BenchmarkMemoryNoncesFull(b *testing.B) {
	for _, size := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			m := NewMemoryNonces(size)
			now := time.Unix(1_700_000_000, 0)
			m.now = func() time.Time { return now }
			ctx := context.Background()
			for i := 0; ; i++ {
				if _, err := m.Use(ctx, "app\x00fill-"+strconv.Itoa(i), time.Hour); errors.Is(err, ErrNonceStoreFull) {
					break
				}
			}
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = "app\x00flood-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Use(ctx, keys[i%len(keys)], time.Hour)
			}
		})
	}
}

// BenchmarkMemoryNoncesChurn is the steady state of a busy store: every Use
// records a nonce and an older one expires.
func BenchmarkMemoryNoncesChurn(b *testing.B) {
	m := NewMemoryNonces(1_000_000)
	var clock int64 = 1_700_000_000_000_000_000
	m.now = func() time.Time { return time.Unix(0, clock) }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clock += int64(time.Microsecond)
		m.Use(ctx, "app\x00n-"+strconv.Itoa(i), 500*time.Millisecond)
	}
}
