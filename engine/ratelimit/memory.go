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
// keys (DefaultMaxKeys): when a new key finds its shard full, the shard's
// least recently used key is dropped in O(1) — an expired one costs
// nothing, a live one loses its count and is reported in Decision.Evicted
// (databus_ratelimit_evictions_total). A flood of fresh keys therefore
// costs the oldest idle callers their counters, never every caller their
// answer. No background goroutine, no scan under a lock.
type Memory struct {
	shards [memShards]memShard
	seed   maphash.Seed
}

// DefaultMaxKeys is how many keys NewMemory(0) holds.
const DefaultMaxKeys = 1_000_000

const memShards = 32

type memShard struct {
	mu      sync.Mutex
	entries map[string]*memEntry
	max     int
	lru     memEntry // sentinel: lru.next is the most recently used
}

// memEntry is the state of one key, whichever the algorithm, and its place
// in the shard's recency list.
type memEntry struct {
	key        string
	prev, next *memEntry

	expires   int64 // unix ms; the entry is gone after it
	count     int64 // fixed-window count / sliding-window current count
	prevCount int64 // sliding-window previous count
	win       int64 // sliding-window index
	tokens    float64
	ts        int64 // token-bucket last refill, unix ms
}

var _ Store = (*Memory)(nil)

// NewMemory returns an embedded store for at most maxKeys keys (0:
// DefaultMaxKeys).
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	m := &Memory{seed: maphash.MakeSeed()}
	for i := range m.shards {
		s := &m.shards[i]
		s.entries = map[string]*memEntry{}
		s.max = max(1, maxKeys/memShards)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
	}
	return m
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string, p *Policy, at time.Time) (Decision, error) {
	now := at.UnixMilli()
	s := &m.shards[maphash.String(m.seed, key)%memShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	evicted := 0
	e := s.entries[key]
	switch {
	case e == nil:
		if len(s.entries) >= s.max {
			old := s.lru.prev
			if old.expires > now {
				evicted = 1
			}
			s.unlink(old)
			delete(s.entries, old.key)
		}
		e = &memEntry{key: key}
		s.entries[key] = e
		fresh(e, p, now)
	case e.expires <= now:
		s.unlink(e)
		*e = memEntry{key: key}
		fresh(e, p, now)
	default:
		s.unlink(e)
	}
	// Most recently used first.
	e.prev, e.next = &s.lru, s.lru.next
	s.lru.next.prev = e
	s.lru.next = e
	d := take(e, p, now)
	d.Evicted = evicted
	return d, nil
}

func (s *memShard) unlink(e *memEntry) {
	if e.prev != nil {
		e.prev.next, e.next.prev = e.next, e.prev
		e.prev, e.next = nil, nil
	}
}

// fresh starts the state of a new key.
func fresh(e *memEntry, p *Policy, now int64) {
	if p.Algorithm == config.AlgoTokenBucket {
		e.tokens, e.ts = float64(p.Limit), now
	}
}

// take applies p's algorithm to e.
func take(e *memEntry, p *Policy, now int64) Decision {
	w := p.Window.Milliseconds()
	switch p.Algorithm {
	case config.AlgoSlidingWindow:
		idx := now / w
		switch {
		case e.count == 0 && e.prevCount == 0:
			e.win = idx
		case idx < e.win: // the clock went back: count in the stored window
			idx = e.win
		case idx == e.win+1:
			e.prevCount, e.count, e.win = e.count, 0, idx
		case idx != e.win:
			e.prevCount, e.count, e.win = 0, 0, idx
		}
		elapsed := max(0, now-idx*w)
		allowed := slidingEstimate(e.prevCount, e.count, elapsed, w)+1 <= float64(p.Limit)
		if allowed {
			e.count++
		}
		e.expires = (idx+2)*w + 1
		return slidingDecision(p, allowed, e.prevCount, e.count, elapsed)
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
		return bucketDecision(p, allowed, e.tokens)
	default: // fixed-window: the expiry is set when the counter is created
		if e.count == 0 {
			e.expires = now + w
		}
		e.count++
		return fixedDecision(p, e.count, e.expires-now)
	}
}

// Len returns the number of keys held (expired ones included until reused
// or dropped).
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
