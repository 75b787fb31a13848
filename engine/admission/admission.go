// Package admission bounds the requests the gateway works on at once: a cap
// on those in flight and a bounded wait queue in front of it, so that load
// beyond what the gateway can serve is refused at once instead of queued in
// memory until every answer is late.
//
// The queue behaves as Facebook's controlled-delay queue with adaptive LIFO
// ("Fail at Scale", ACM Queue 13(8), 2015). While the queue empties now and
// then it is FIFO and a waiter waits up to Limits.QueueTimeout: a burst is
// absorbed. Once the queue has not been empty for a whole QueueTimeout — a
// standing queue, the gateway is overloaded — new waiters wait only
// QueueTimeout/OverloadDivisor and a freed slot goes to the newest waiter:
// those at the back of a standing queue are the ones whose callers are about
// to give up, so serving the newest keeps the latency of what is admitted
// close to that of an unloaded gateway while the rest are refused fast.
package admission

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Limits bound a Limiter. A reload may change them at any time; requests
// in flight and waiting keep their places.
type Limits struct {
	// MaxInFlight is how many requests may be worked on at once (≥ 1).
	MaxInFlight int
	// QueueLength is how many requests may wait for a slot; 0 refuses at
	// once every request over MaxInFlight.
	QueueLength int
	// QueueTimeout is the longest a request waits for a slot while the
	// queue empties now and then; under a standing queue the wait is
	// bounded by QueueTimeout/OverloadDivisor.
	QueueTimeout time.Duration
}

// OverloadDivisor divides Limits.QueueTimeout into the wait allowed under
// a standing queue (100 ms → 5 ms, Facebook's N and M).
const OverloadDivisor = 20

// Shed reasons: why Acquire refused a request.
const (
	ShedQueueFull    = "queue_full"    // in-flight cap and queue are full
	ShedQueueTimeout = "queue_timeout" // waited its bound without a slot
	ShedCanceled     = "canceled"      // the caller went away while waiting
)

// Observer is told what the Limiter does; every method is called with the
// Limiter's lock held, so it must be quick (a Prometheus gauge or counter).
// A nil Observer is fine.
type Observer interface {
	InFlight(n int)
	Queued(n int)
	Shed(reason string)
	Waited(d time.Duration)
}

// Limiter admits requests within Limits. Its zero value is not ready; use
// New. It is safe for concurrent use and outlives reloads.
type Limiter struct {
	obs Observer
	now func() time.Time

	mu        sync.Mutex
	lim       Limits
	inFlight  int
	queue     list.List // of *waiter, oldest at the front
	lastEmpty time.Time // when the queue was last empty
}

type waiter struct {
	ready    chan struct{} // closed when the waiter is handed a slot
	admitted bool          // under mu: handed a slot
	enqueued time.Time
}

// New returns a Limiter; obs may be nil.
func New(obs Observer) *Limiter {
	return &Limiter{obs: obs, now: time.Now}
}

// Acquire admits the caller within lim (the limits of the serving
// configuration, which take effect here: a raised cap admits waiters at
// once). It returns "" and must be followed by exactly one Release, or the
// reason the request is shed. It waits only when the cap is reached and
// the queue has room, and no longer than the queue's bound or ctx.
func (l *Limiter) Acquire(ctx context.Context, lim Limits) (shed string) {
	l.mu.Lock()
	l.setLimits(lim)
	if l.inFlight < l.lim.MaxInFlight && l.queue.Len() == 0 {
		l.inFlight++
		l.observeInFlight()
		l.mu.Unlock()
		return ""
	}
	if l.queue.Len() >= l.lim.QueueLength {
		l.shed(ShedQueueFull)
		l.mu.Unlock()
		return ShedQueueFull
	}
	now := l.now()
	timeout := l.waitBound(now)
	if l.queue.Len() == 0 {
		l.lastEmpty = now // empty until this waiter
	}
	w := &waiter{ready: make(chan struct{}), enqueued: now}
	e := l.queue.PushBack(w)
	l.observeQueued()
	l.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	reason := ""
	select {
	case <-w.ready:
		return ""
	case <-t.C:
		reason = ShedQueueTimeout
	case <-ctx.Done():
		reason = ShedCanceled
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.admitted {
		// Handed a slot as the wait ran out: take it.
		return ""
	}
	l.queue.Remove(e)
	l.dequeued()
	l.shed(reason)
	return reason
}

// Release gives back the slot of an admitted request: to a waiter if one
// is queued (the oldest, or under a standing queue the newest), else to
// the pool.
func (l *Limiter) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight <= l.lim.MaxInFlight {
		if l.handOff() {
			return
		}
	}
	l.inFlight--
	l.observeInFlight()
}

// handOff passes the caller's slot to a waiter; false when none waits.
func (l *Limiter) handOff() bool {
	if l.queue.Len() == 0 {
		return false
	}
	now := l.now()
	e := l.queue.Front()
	if l.standing(now) {
		e = l.queue.Back() // newest first
	}
	w := l.queue.Remove(e).(*waiter)
	l.dequeued()
	w.admitted = true
	close(w.ready)
	if l.obs != nil {
		l.obs.Waited(now.Sub(w.enqueued))
	}
	return true
}

// waitBound is how long a request queued at now may wait: QueueTimeout,
// or a twentieth of it under a standing queue.
func (l *Limiter) waitBound(now time.Time) time.Duration {
	if l.standing(now) {
		return l.lim.QueueTimeout / OverloadDivisor
	}
	return l.lim.QueueTimeout
}

// standing reports whether the queue has not been empty for a whole
// QueueTimeout.
func (l *Limiter) standing(now time.Time) bool {
	return l.queue.Len() > 0 && now.Sub(l.lastEmpty) >= l.lim.QueueTimeout
}

// setLimits applies lim; a raised cap admits waiters now.
func (l *Limiter) setLimits(lim Limits) {
	if lim == l.lim {
		return
	}
	if lim.MaxInFlight < 1 {
		lim.MaxInFlight = 1
	}
	l.lim = lim
	for l.inFlight < l.lim.MaxInFlight && l.handOff() {
		l.inFlight++
	}
	l.observeInFlight()
}

// dequeued notes that a waiter left the queue.
func (l *Limiter) dequeued() {
	if l.queue.Len() == 0 {
		l.lastEmpty = l.now()
	}
	l.observeQueued()
}

func (l *Limiter) shed(reason string) {
	if l.obs != nil {
		l.obs.Shed(reason)
	}
}

func (l *Limiter) observeInFlight() {
	if l.obs != nil {
		l.obs.InFlight(l.inFlight)
	}
}

func (l *Limiter) observeQueued() {
	if l.obs != nil {
		l.obs.Queued(l.queue.Len())
	}
}

// State is a Limiter's counts at one moment.
type State struct {
	InFlight, Queued int
}

// State returns the counts now.
func (l *Limiter) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return State{InFlight: l.inFlight, Queued: l.queue.Len()}
}
