package security

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// NonceStore remembers nonces for their TTL. Use reports whether key is
// fresh (and records it) or was already used, atomically: of two calls with
// one key within its TTL, one is fresh. An error means replay protection
// could not be checked: the caller must refuse the request.
type NonceStore interface {
	Use(ctx context.Context, key string, ttl time.Duration) (fresh bool, err error)
}

// ErrNonceStoreFull is returned when the embedded store holds as many live
// nonces as it may: it refuses new ones rather than forget used ones.
var ErrNonceStoreFull = errors.New("nonce store full: too many live nonces")

// DefaultNonceCapacity is the embedded store's bound on live nonces. The
// portal spends a nonce only for a request whose signature verified, so
// the store fills only when more than DefaultNonceCapacity signed requests
// arrive within one nonce TTL (1,666 a second for the 600 s default TTL,
// sustained); it then refuses (503) until nonces expire. Each live nonce
// costs about 80 bytes, whatever its length: about 80 MB when full.
const DefaultNonceCapacity = 1_000_000

// evictPerUse bounds the expired entries one Use removes. Above one, the
// store sheds expired entries faster than it records new ones, and no call
// does more than this much eviction work under its shard's lock.
const evictPerUse = 4

// MemoryNonces is the embedded, single-node NonceStore. It holds at most
// its capacity of live nonces, each as a 128-bit keyed hash of the key, so
// memory does not depend on what callers send. Every shard keeps its
// entries in a min-heap by expiry: a Use costs O(log n) under its shard's
// lock, evicts expired entries from the top of the heap without a
// background goroutine, and never scans the shard — a full shard is known
// to be full of live nonces when the top of its heap has not expired.
type MemoryNonces struct {
	shards [nonceShards]nonceShard
	seeds  [2]maphash.Seed
	now    func() time.Time
}

const nonceShards = 32

// nonceID is a key's 128-bit keyed hash. The seeds are random per
// process, so callers cannot aim collisions; a chance collision (about
// n²/2^129) only refuses a fresh nonce as a replay.
type nonceID [2]uint64

type nonceShard struct {
	mu   sync.Mutex
	seen map[nonceID]int64 // id -> expiry (unix nanos)
	// heap holds (id, expiry) ordered by expiry: every id in seen once,
	// plus expired entries of ids recorded again after they expired but
	// before eviction reached them (dropped when popped).
	heap []nonceEntry
	max  int
}

type nonceEntry struct {
	id     nonceID
	expiry int64
}

var _ NonceStore = (*MemoryNonces)(nil)

// NewMemoryNonces returns a store for at most max live nonces
// (0: DefaultNonceCapacity).
func NewMemoryNonces(max int) *MemoryNonces {
	if max <= 0 {
		max = DefaultNonceCapacity
	}
	m := &MemoryNonces{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, now: time.Now}
	per := max / nonceShards
	if per < 1 {
		per = 1
	}
	for i := range m.shards {
		m.shards[i].seen = make(map[nonceID]int64)
		m.shards[i].max = per
	}
	return m
}

// Use implements NonceStore.
func (m *MemoryNonces) Use(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := m.now().UnixNano()
	id := nonceID{maphash.String(m.seeds[0], key), maphash.String(m.seeds[1], key)}
	s := &m.shards[id[0]%nonceShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(now, evictPerUse)
	if exp, ok := s.seen[id]; ok && exp > now {
		return false, nil
	}
	if len(s.heap) >= s.max {
		// evict stopped at a live top (the shard is full of live nonces)
		// or after evictPerUse entries; one more expired entry makes room.
		if s.evict(now, 1); len(s.heap) >= s.max {
			return false, ErrNonceStoreFull
		}
	}
	exp := now + int64(ttl)
	s.seen[id] = exp
	s.push(nonceEntry{id, exp})
	return true, nil
}

// evict removes up to n expired entries from the top of the heap.
func (s *nonceShard) evict(now int64, n int) {
	for ; n > 0 && len(s.heap) > 0 && s.heap[0].expiry <= now; n-- {
		e := s.pop()
		if exp, ok := s.seen[e.id]; ok && exp == e.expiry {
			delete(s.seen, e.id)
		}
	}
}

func (s *nonceShard) push(e nonceEntry) {
	h := append(s.heap, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].expiry <= h[i].expiry {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	s.heap = h
}

func (s *nonceShard) pop() nonceEntry {
	h := s.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < len(h) && h[l].expiry < h[small].expiry {
			small = l
		}
		if r := l + 1; r < len(h) && h[r].expiry < h[small].expiry {
			small = r
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	s.heap = h
	return top
}

// Len evicts every expired entry and returns the number of live nonces
// held. It is for tests and diagnostics: its work is not bounded per call.
func (m *MemoryNonces) Len() int {
	n := 0
	now := m.now().UnixNano()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.evict(now, len(s.heap))
		n += len(s.seen)
		s.mu.Unlock()
	}
	return n
}
