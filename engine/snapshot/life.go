package snapshot

import (
	"sync/atomic"

	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/revision"
)

// life counts who uses a Snapshot: the Holder while it is current (one
// reference) and every request that acquired it. At zero, the Snapshot's
// lease on the pool is released.
type life struct {
	refs  atomic.Int64
	lease *pool.Lease
}

// Lease returns the pool references the Snapshot holds (nil: none).
func (s *Snapshot) Lease() *pool.Lease {
	if s.life == nil {
		return nil
	}
	return s.life.lease
}

// tryAcquire counts one more user unless the Snapshot is retired.
func (s *Snapshot) tryAcquire() bool {
	for {
		n := s.life.refs.Load()
		if n <= 0 {
			return false
		}
		if s.life.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release ends one use of the Snapshot (a request that acquired it); the
// last one releases its lease. It does nothing for a Snapshot no Holder
// ever served (tests build those directly).
func (s *Snapshot) Release() {
	if s == nil || s.life == nil {
		return
	}
	if s.life.refs.Add(-1) == 0 {
		s.life.lease.Release()
	}
}

// Discard releases the lease of a Snapshot that was built but will never
// be served (a dry build, a reload refused after the build).
func (s *Snapshot) Discard() {
	if s != nil && s.life != nil && s.life.refs.Load() == 0 {
		s.life.lease.Release()
	}
}

// WithRevision returns a copy of s that names another git revision (a
// commit of the content already served): the compiled flows are shared,
// and the copy holds its own references to s's resources.
func (s *Snapshot) WithRevision(rev *revision.Revision) *Snapshot {
	c := *s
	c.Git = rev
	c.life = &life{}
	if l := s.Lease(); l != nil {
		c.life.lease = l.Clone()
	}
	return &c
}

// Holder is the pointer to the Snapshot being served. Readers take it
// without locks; Swap retires the old one, whose lease is released when its
// last in-flight request ends.
type Holder struct{ p atomic.Pointer[Snapshot] }

// Load returns the Snapshot being served, without counting a use: for
// views that only read its immutable fields.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Acquire returns the Snapshot being served, counting one use that the
// caller ends with Release; nil before the first Swap.
func (h *Holder) Acquire() *Snapshot {
	for {
		s := h.p.Load()
		if s == nil {
			return nil
		}
		if s.life == nil || s.tryAcquire() {
			return s
		}
		// s was retired between Load and tryAcquire: its successor is
		// already stored.
	}
}

// Swap serves next and retires the Snapshot it replaces (returned; nil
// the first time). next must not be served by another Holder.
func (h *Holder) Swap(next *Snapshot) *Snapshot {
	if next.life == nil {
		next.life = &life{}
	}
	next.life.refs.Store(1)
	old := h.p.Swap(next)
	old.Release()
	return old
}

// Close retires the Snapshot being served (the server stops): its lease is
// released once its last request ends.
func (h *Holder) Close() {
	if old := h.p.Swap(nil); old != nil {
		old.Release()
	}
}

// WithCredentials returns a copy of s whose credentials are creds (a
// sandbox session that signs with a test's keys). The copy shares
// everything else and holds no lease of its own: it lives within s.
func (s *Snapshot) WithCredentials(creds map[string]*Credential) *Snapshot {
	c := *s
	c.Credentials = creds
	c.life = nil
	return &c
}
