package security

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// NonceStore remembers nonces for their TTL. Use reports whether key is
// fresh (and records it) or was already used. An error means replay
// protection could not be checked: the caller must refuse the request.
type NonceStore interface {
	Use(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// ErrNonceStoreFull is returned when the embedded store holds as many live
// nonces as it may: it refuses new ones rather than forget used ones.
var ErrNonceStoreFull = errors.New("nonce store full: too many live nonces")

// MemoryNonces is the embedded, single-node NonceStore. Memory is bounded by
// max entries; expired entries are evicted as new ones arrive, oldest first,
// without a background goroutine.
type MemoryNonces struct {
	shards [nonceShards]nonceShard
	seed   maphash.Seed
	now    func() time.Time
}

const nonceShards = 32

type nonceShard struct {
	mu    sync.Mutex
	seen  map[string]int64 // key -> expiry (unix nanos)
	queue []nonceEntry     // insertion order; expiries mostly ascending
	head  int
	max   int
}

type nonceEntry struct {
	key    string
	expiry int64
}

var _ NonceStore = (*MemoryNonces)(nil)

// NewMemoryNonces returns a store for at most max live nonces (0: 1,000,000).
func NewMemoryNonces(max int) *MemoryNonces {
	if max <= 0 {
		max = 1_000_000
	}
	m := &MemoryNonces{seed: maphash.MakeSeed(), now: time.Now}
	per := max / nonceShards
	if per < 1 {
		per = 1
	}
	for i := range m.shards {
		m.shards[i].seen = make(map[string]int64)
		m.shards[i].max = per
	}
	return m
}

// Use implements NonceStore.
func (m *MemoryNonces) Use(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now().UnixNano()
	s := &m.shards[maphash.String(m.seed, key)%nonceShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(now)
	if exp, ok := s.seen[key]; ok && exp > now {
		return false, nil
	}
	if len(s.seen) >= s.max {
		s.evictAll(now)
		if len(s.seen) >= s.max {
			return false, ErrNonceStoreFull
		}
	}
	exp := now + int64(ttl)
	s.seen[key] = exp
	s.queue = append(s.queue, nonceEntry{key, exp})
	return true, nil
}

// evict drops expired entries from the front of the queue.
func (s *nonceShard) evict(now int64) {
	for s.head < len(s.queue) && s.queue[s.head].expiry <= now {
		e := s.queue[s.head]
		if exp, ok := s.seen[e.key]; ok && exp == e.expiry {
			delete(s.seen, e.key)
		}
		s.queue[s.head] = nonceEntry{}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = append(s.queue[:0:0], s.queue[s.head:]...)
		s.head = 0
	}
}

// evictAll scans for expired entries that a longer TTL in front of them kept
// in the queue (the TTL can change between reloads).
func (s *nonceShard) evictAll(now int64) {
	kept := s.queue[:0:0]
	for _, e := range s.queue[s.head:] {
		if e.expiry > now {
			kept = append(kept, e)
		} else if exp, ok := s.seen[e.key]; ok && exp == e.expiry {
			delete(s.seen, e.key)
		}
	}
	s.queue, s.head = kept, 0
}

// Len evicts what expired and returns the number of live nonces held.
func (m *MemoryNonces) Len() int {
	n := 0
	now := m.now().UnixNano()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.evictAll(now)
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}
