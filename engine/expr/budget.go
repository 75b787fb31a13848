package expr

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// Budget bounds every evaluation of the programs it is bound to (Bind).
//
// Time: each evaluation runs under a context that ends after Timeout, and
// never later than the caller's context (the request, the step's timeout).
// gojq checks the context before every instruction of its virtual machine,
// so loops, `range` and recursion stop promptly; a single builtin call
// (sorting an array already built, say) finishes first.
//
// Memory: Go cannot tell how much of the heap one goroutine holds, so the
// Guard watches the whole heap instead and, when it passes MaxMemoryBytes,
// stops the evaluations that have been running for at least one of its
// intervals: normal programs finish in microseconds, so those are the ones
// that can have built up the heap.
type Budget struct {
	Timeout        time.Duration // 0: no time budget beyond the caller's context
	MaxMemoryBytes uint64        // heap ceiling; 0: no memory guard
	Guard          *Guard        // watches the heap; nil: no memory guard
}

// Reasons a budget stops an evaluation, the values of BudgetError.Reason
// and of the kill counter's label.
const (
	ReasonTime   = "time"
	ReasonMemory = "memory"
)

// BudgetError is returned by Run when the budget stopped the evaluation.
type BudgetError struct {
	Reason string        // ReasonTime or ReasonMemory
	Place  string        // where the program stands, e.g. "apis/x.yaml:12: transforms.response"; "" when unknown
	Limit  time.Duration // the time budget (ReasonTime)
	Bytes  uint64        // the heap ceiling (ReasonMemory)
}

func (e *BudgetError) Error() string {
	var msg string
	if e.Reason == ReasonMemory {
		msg = fmt.Sprintf("jq program stopped: the gateway's heap passed gateway.jq.maxMemoryBytes (%d bytes) while it ran", e.Bytes)
	} else {
		msg = fmt.Sprintf("jq program stopped: it ran past its time budget of %s (gateway.jq.timeout)", e.Limit)
	}
	if e.Place != "" {
		return e.Place + ": " + msg
	}
	return msg
}

// GuardInterval is how often a Guard reads the heap size while evaluations
// run. The heap can overshoot the ceiling by what a runaway program
// allocates in one interval.
const GuardInterval = 10 * time.Millisecond

// Guard watches the heap while jq evaluations run and stops them when it
// passes their ceiling; it also enforces their time budgets. One Guard
// serves a gateway across reloads: each evaluation carries the budget of
// the Snapshot it runs on. Its watcher goroutine runs only while
// evaluations do (it ends one interval after the last), so an idle gateway
// pays nothing; on the hot path an evaluation costs one short critical
// section to enter and one to leave.
type Guard struct {
	mu         sync.Mutex
	head, tail *evaluation // running evaluations, oldest first
	watching   bool        // a watcher goroutine runs
	running    atomic.Int64
	tick       atomic.Uint64 // counts intervals; evaluations note it on entry

	onKill func(reason string)
	kills  [2]atomic.Uint64 // by reason: time, memory

	heap func() uint64 // bytes in heap objects; replaced by tests
}

// evaluation is one run of a program under a budget.
type evaluation struct {
	prev, next *evaluation // in the guard's list
	tick       uint64      // the guard's tick when it entered
	deadline   int64       // nanos() after which it is stopped; 0: none
	ceiling    uint64      // heap ceiling; 0: none
	killed     atomic.Int32

	budget *Budget
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

// kill marks the evaluation stopped for a reason and cancels it; it reports
// false when it was already stopped.
func (e *evaluation) kill(reason int32) bool {
	if !e.killed.CompareAndSwap(0, reason) {
		return false
	}
	e.cancel()
	return true
}

const (
	killedTime   = 1
	killedMemory = 2
)

// epoch anchors nanos, a monotonic clock cheaper to compare than time.Time.
var epoch = time.Now()

func nanos() int64 { return int64(time.Since(epoch)) }

// NewGuard returns a guard. onKill, when not nil, is called (from any
// goroutine) for every evaluation a budget stops, with the reason.
func NewGuard(onKill func(reason string)) *Guard {
	return &Guard{onKill: onKill, heap: heapObjectBytes}
}

// Running returns the number of evaluations in progress.
func (g *Guard) Running() int { return int(g.running.Load()) }

// Kills returns how many evaluations a budget stopped for reason.
func (g *Guard) Kills(reason string) uint64 {
	if reason == ReasonMemory {
		return g.kills[1].Load()
	}
	return g.kills[0].Load()
}

func (g *Guard) killed(reason string) {
	if g == nil {
		return
	}
	if reason == ReasonMemory {
		g.kills[1].Add(1)
	} else {
		g.kills[0].Add(1)
	}
	if g.onKill != nil {
		g.onKill(reason)
	}
}

func (g *Guard) enter(e *evaluation) {
	e.tick = g.tick.Load()
	g.mu.Lock()
	if g.tail == nil {
		g.head = e
	} else {
		g.tail.next, e.prev = e, g.tail
	}
	g.tail = e
	start := !g.watching
	g.watching = true
	g.mu.Unlock()
	g.running.Add(1)
	if start {
		go g.watch()
	}
}

func (g *Guard) leave(e *evaluation) {
	g.running.Add(-1)
	g.mu.Lock()
	if e.prev == nil {
		g.head = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		g.tail = e.prev
	} else {
		e.next.prev = e.prev
	}
	g.mu.Unlock()
	e.prev, e.next = nil, nil
}

// watch checks once per interval until no evaluation runs.
func (g *Guard) watch() {
	t := time.NewTicker(GuardInterval)
	defer t.Stop()
	for range t.C {
		if !g.check() {
			return
		}
	}
}

// check runs once per interval. It stops the evaluations past their
// deadline and, when the heap passed their ceiling, those that entered
// before the previous interval. After a memory kill it collects the garbage,
// so that the next reading shows what the stopped programs held as freed
// rather than stopping the next ones for it. It reports false, and the
// watcher ends, when no evaluation runs.
func (g *Guard) check() bool {
	tick := g.tick.Add(1)
	heap, now := g.heap(), nanos()
	freed := false
	g.mu.Lock()
	if g.head == nil {
		g.watching = false
		g.mu.Unlock()
		return false
	}
	for e := g.head; e != nil; e = e.next {
		switch {
		case e.deadline > 0 && now >= e.deadline:
			e.kill(killedTime)
		case e.ceiling > 0 && heap > e.ceiling && e.tick+1 < tick:
			freed = e.kill(killedMemory) || freed
		}
	}
	g.mu.Unlock()
	if freed {
		runtime.GC()
	}
	return true
}

var heapSample = sync.Pool{New: func() any {
	return []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
}}

// heapObjectBytes is the memory held by heap objects, live or not yet
// swept: what grows while a program builds a value.
func heapObjectBytes() uint64 {
	s := heapSample.Get().([]metrics.Sample)
	metrics.Read(s)
	v := s[0].Value.Uint64()
	heapSample.Put(s)
	return v
}

// start prepares one evaluation under b: the context to run it with and
// the evaluation to end. With a Guard, the guard's watcher enforces the
// time budget too (to within GuardInterval), which spares every evaluation
// a timer of its own.
func (b *Budget) start(parent context.Context) (context.Context, *evaluation) {
	if b == nil {
		return parent, nil
	}
	guarded := b.Guard != nil
	if b.Timeout <= 0 && (!guarded || b.MaxMemoryBytes == 0) {
		return parent, nil
	}
	e := &evaluation{budget: b, parent: parent}
	if !guarded {
		e.ctx, e.cancel = context.WithTimeout(parent, b.Timeout)
		return e.ctx, e
	}
	e.ctx, e.cancel = context.WithCancel(parent)
	if b.Timeout > 0 {
		e.deadline = nanos() + int64(b.Timeout)
	}
	e.ceiling = b.MaxMemoryBytes
	b.Guard.enter(e)
	return e.ctx, e
}

// end finishes the evaluation. Given the error the program stopped with, it
// returns a *BudgetError when the budget stopped it: a program that
// finished, or that its caller's context stopped, is never reported.
func (e *evaluation) end(err error) *BudgetError {
	if e == nil {
		return nil
	}
	b := e.budget
	if b.Guard != nil {
		b.Guard.leave(e)
	}
	e.cancel()
	if err == nil || e.parent.Err() != nil {
		return nil
	}
	var be *BudgetError
	switch {
	case e.killed.Load() == killedMemory:
		be = &BudgetError{Reason: ReasonMemory, Bytes: b.MaxMemoryBytes}
	case e.killed.Load() == killedTime || errors.Is(e.ctx.Err(), context.DeadlineExceeded):
		be = &BudgetError{Reason: ReasonTime, Limit: b.Timeout}
	default:
		return nil
	}
	b.Guard.killed(be.Reason)
	return be
}
