package admission

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source for the standing-queue rule.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTest(t *testing.T) (*Limiter, *clock, *counts) {
	t.Helper()
	obs := &counts{shed: map[string]int{}}
	l := New(obs)
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	l.now = c.now
	return l, c, obs
}

// counts is an Observer that remembers what it was told.
type counts struct {
	mu               sync.Mutex
	inFlight, queued int
	shed             map[string]int
	waited           int
}

func (o *counts) InFlight(n int)       { o.mu.Lock(); o.inFlight = n; o.mu.Unlock() }
func (o *counts) Queued(n int)         { o.mu.Lock(); o.queued = n; o.mu.Unlock() }
func (o *counts) Shed(r string)        { o.mu.Lock(); o.shed[r]++; o.mu.Unlock() }
func (o *counts) Waited(time.Duration) { o.mu.Lock(); o.waited++; o.mu.Unlock() }

func (o *counts) get() (inFlight, queued int, shed map[string]int, waited int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]int{}
	for k, v := range o.shed {
		m[k] = v
	}
	return o.inFlight, o.queued, m, o.waited
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// enqueue starts an Acquire that is expected to wait, and returns the
// channel its result arrives on once it is queued.
func enqueue(t *testing.T, l *Limiter, ctx context.Context, lim Limits, queuedBefore int) <-chan string {
	t.Helper()
	ch := make(chan string, 1)
	go func() { ch <- l.Acquire(ctx, lim) }()
	waitFor(t, "the request to queue", func() bool { return l.State().Queued == queuedBefore+1 })
	return ch
}

const long = time.Hour // a wait no test sees run out

func TestCapAndQueueFull(t *testing.T) {
	l, _, obs := newTest(t)
	lim := Limits{MaxInFlight: 2, QueueLength: 0, QueueTimeout: long}
	for i := 0; i < 2; i++ {
		if r := l.Acquire(context.Background(), lim); r != "" {
			t.Fatalf("acquire %d under the cap: shed %q", i, r)
		}
	}
	if r := l.Acquire(context.Background(), lim); r != ShedQueueFull {
		t.Fatalf("over the cap with no queue: %q, want %q", r, ShedQueueFull)
	}
	l.Release()
	if r := l.Acquire(context.Background(), lim); r != "" {
		t.Fatalf("after a release: shed %q", r)
	}
	if in, q, shed, _ := obs.get(); in != 2 || q != 0 || shed[ShedQueueFull] != 1 {
		t.Fatalf("observed inFlight %d queued %d shed %v", in, q, shed)
	}
}

func TestQueueWaitsThenAdmits(t *testing.T) {
	l, _, obs := newTest(t)
	lim := Limits{MaxInFlight: 1, QueueLength: 1, QueueTimeout: long}
	if r := l.Acquire(context.Background(), lim); r != "" {
		t.Fatal(r)
	}
	waiting := enqueue(t, l, context.Background(), lim, 0)
	// The queue is full: the next one is refused at once, not queued.
	if r := l.Acquire(context.Background(), lim); r != ShedQueueFull {
		t.Fatalf("queue full: %q", r)
	}
	l.Release()
	if r := <-waiting; r != "" {
		t.Fatalf("the waiter was shed %q after a release", r)
	}
	if s := l.State(); s.InFlight != 1 || s.Queued != 0 {
		t.Fatalf("state %+v, want 1 in flight (handed over), none queued", s)
	}
	if _, _, _, waited := obs.get(); waited != 1 {
		t.Fatalf("waited observed %d times, want 1", waited)
	}
	l.Release()
	if s := l.State(); s.InFlight != 0 {
		t.Fatalf("state %+v after the last release", s)
	}
}

func TestQueueTimeoutAndCancel(t *testing.T) {
	l, _, obs := newTest(t)
	if r := l.Acquire(context.Background(), Limits{MaxInFlight: 1, QueueLength: 4, QueueTimeout: long}); r != "" {
		t.Fatal(r)
	}
	if r := l.Acquire(context.Background(), Limits{MaxInFlight: 1, QueueLength: 4, QueueTimeout: time.Millisecond}); r != ShedQueueTimeout {
		t.Fatalf("wait bound passed: %q, want %q", r, ShedQueueTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiting := enqueue(t, l, ctx, Limits{MaxInFlight: 1, QueueLength: 4, QueueTimeout: long}, 0)
	cancel()
	if r := <-waiting; r != ShedCanceled {
		t.Fatalf("caller gone: %q, want %q", r, ShedCanceled)
	}
	if s := l.State(); s.InFlight != 1 || s.Queued != 0 {
		t.Fatalf("state %+v: shed waiters must leave the queue", s)
	}
	if _, q, shed, _ := obs.get(); q != 0 || shed[ShedQueueTimeout] != 1 || shed[ShedCanceled] != 1 {
		t.Fatalf("observed queued %d shed %v", q, shed)
	}
}

// A standing queue (not empty for a whole QueueTimeout) serves the newest
// waiter first; a queue that empties now and then serves the oldest.
func TestStandingQueueIsLIFO(t *testing.T) {
	l, clk, _ := newTest(t)
	lim := Limits{MaxInFlight: 1, QueueLength: 8, QueueTimeout: long}
	if r := l.Acquire(context.Background(), lim); r != "" {
		t.Fatal(r)
	}
	first := enqueue(t, l, context.Background(), lim, 0)
	second := enqueue(t, l, context.Background(), lim, 1)
	third := enqueue(t, l, context.Background(), lim, 2)

	l.Release() // the queue is young: FIFO
	if r := <-first; r != "" {
		t.Fatalf("oldest waiter shed %q", r)
	}
	clk.advance(long) // not empty for a whole timeout: standing
	l.Release()
	if r := <-third; r != "" {
		t.Fatalf("newest waiter shed %q", r)
	}
	select {
	case r := <-second:
		t.Fatalf("the older waiter was served (%q) before the newest under a standing queue", r)
	default:
	}
	l.Release()
	if r := <-second; r != "" {
		t.Fatalf("last waiter shed %q", r)
	}
}

// Under a standing queue a new waiter gets a twentieth of the timeout.
func TestStandingQueueShortensTheWait(t *testing.T) {
	l, clk, _ := newTest(t)
	lim := Limits{MaxInFlight: 1, QueueLength: 8, QueueTimeout: 100 * time.Millisecond}
	if r := l.Acquire(context.Background(), lim); r != "" {
		t.Fatal(r)
	}
	if got := l.waitBound(clk.now()); got != 100*time.Millisecond {
		t.Fatalf("empty queue: wait bound %v, want the whole timeout", got)
	}
	old := enqueue(t, l, context.Background(), Limits{MaxInFlight: 1, QueueLength: 8, QueueTimeout: long}, 0)
	if got := l.waitBound(clk.now()); got != time.Hour {
		t.Fatalf("young queue: wait bound %v, want the whole timeout", got)
	}
	clk.advance(long)
	if got := l.waitBound(clk.now()); got != long/OverloadDivisor {
		t.Fatalf("standing queue: wait bound %v, want %v", got, long/OverloadDivisor)
	}
	l.Release()
	if r := <-old; r != "" {
		t.Fatalf("old waiter: %q", r)
	}
	if got := l.waitBound(clk.now()); got != time.Hour {
		t.Fatalf("emptied queue: wait bound %v, want the whole timeout", got)
	}
}

// New limits apply at the next Acquire without losing counts: a raised cap
// admits waiters at once; a lowered one lets the extra requests finish.
func TestLimitsChange(t *testing.T) {
	l, _, _ := newTest(t)
	small := Limits{MaxInFlight: 1, QueueLength: 4, QueueTimeout: long}
	if r := l.Acquire(context.Background(), small); r != "" {
		t.Fatal(r)
	}
	a := enqueue(t, l, context.Background(), small, 0)
	b := enqueue(t, l, context.Background(), small, 1)
	big := Limits{MaxInFlight: 4, QueueLength: 4, QueueTimeout: long}
	if r := l.Acquire(context.Background(), big); r != "" {
		t.Fatalf("after raising the cap: %q", r)
	}
	for _, ch := range []<-chan string{a, b} {
		if r := <-ch; r != "" {
			t.Fatalf("a waiter was shed %q when the cap rose", r)
		}
	}
	if s := l.State(); s.InFlight != 4 || s.Queued != 0 {
		t.Fatalf("state %+v, want 4 in flight", s)
	}
	// Lower the cap to 2: nothing is dropped; releases bring it down and
	// only then is a new request admitted.
	two := Limits{MaxInFlight: 2, QueueLength: 0, QueueTimeout: long}
	if r := l.Acquire(context.Background(), two); r != ShedQueueFull {
		t.Fatalf("over the lowered cap: %q", r)
	}
	l.Release()
	l.Release()
	if r := l.Acquire(context.Background(), two); r != ShedQueueFull {
		t.Fatalf("at the lowered cap: %q", r)
	}
	l.Release()
	if r := l.Acquire(context.Background(), two); r != "" {
		t.Fatalf("under the lowered cap: %q", r)
	}
}

// Many callers at once never exceed the cap and all leave the counts at zero.
func TestConcurrentNeverExceedsCap(t *testing.T) {
	l, _, _ := newTest(t)
	l.now = time.Now
	lim := Limits{MaxInFlight: 3, QueueLength: 5, QueueTimeout: 50 * time.Millisecond}
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if l.Acquire(context.Background(), lim) != "" {
					continue
				}
				n := cur.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				cur.Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d in flight at once, cap 3", p)
	}
	if s := l.State(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("state %+v after everyone left", s)
	}
}
