package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/config"
)

// Memory is the embedded store for a single node. It holds at most max
// keys; expired keys are swept from a shard as it fills, so memory stays
// bounded without a background goroutine.
type Memory struct {
	shards [memShards]memShard
	seed   maphash.Seed
}

const memShards = 32

type memShard struct {
	mu      sync.Mutex
	entries map[string]*memEntry
	max     int
}

// memEntry is the state of one key, whichever the algorithm.
type memEntry struct {
	expires int64 // unix ms; the entry is gone after it
	count   int64 // fixed-window count / sliding-window current count
	prev    int64 // sliding-window previous count
	win     int64 // sliding-window index
	tokens  float64
	ts      int64 // token-bucket last refill, unix ms
}

var _ Store = (*Memory)(nil)

// NewMemory returns an embedded store for at most maxKeys keys (0: 1,000,000).
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = 1_000_000
	}
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].entries = map[string]*memEntry{}
		m.shards[i].max = max(1, maxKeys/memShards)
	}
	return m
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string, p *Policy, at time.Time) (Decision, error) {
	now := at.UnixMilli()
	s := &m.shards[maphash.String(m.seed, key)%memShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e != nil && e.expires <= now {
		delete(s.entries, key)
		e = nil
	}
	if e == nil {
		if len(s.entries) >= s.max {
			s.sweep(now)
			if len(s.entries) >= s.max {
				return Decision{}, ErrStoreFull
			}
		}
		e = &memEntry{}
		s.entries[key] = e
		if p.Algorithm == config.AlgoTokenBucket {
			e.tokens, e.ts = float64(p.Limit), now
		}
	}
	w := p.Window.Milliseconds()
	switch p.Algorithm {
	case config.AlgoSlidingWindow:
		idx := now / w
		switch {
		case e.count == 0 && e.prev == 0:
			e.win = idx
		case idx < e.win: // the clock went back: count in the stored window
			idx = e.win
		case idx == e.win+1:
			e.prev, e.count, e.win = e.count, 0, idx
		case idx != e.win:
			e.prev, e.count, e.win = 0, 0, idx
		}
		elapsed := max(0, now-idx*w)
		allowed := slidingEstimate(e.prev, e.count, elapsed, w)+1 <= float64(p.Limit)
		if allowed {
			e.count++
		}
		e.expires = (idx+2)*w + 1
		return slidingDecision(p, allowed, e.prev, e.count, elapsed), nil
	case config.AlgoTokenBucket:
		rate := float64(p.Limit) / float64(w)
		if now > e.ts {
			e.tokens = math.Min(float64(p.Limit), e.tokens+float64(now-e.ts)*rate)
			e.ts = now
		}
		allowed := e.tokens >= 1
		if allowed {
			e.tokens--
		}
		e.expires = now + int64(math.Ceil((float64(p.Limit)-e.tokens)/rate)) + 1
		return bucketDecision(p, allowed, e.tokens), nil
	default: // fixed-window: the expiry is set when the counter is created
		if e.count == 0 {
			e.expires = now + w
		}
		e.count++
		return fixedDecision(p, e.count, e.expires-now), nil
	}
}

func (s *memShard) sweep(now int64) {
	for k, e := range s.entries {
		if e.expires <= now {
			delete(s.entries, k)
		}
	}
}

// Len returns the number of keys held (expired ones included until swept).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}
