package portal

import (
	"sync"
	"time"
)

// refusalBudget is a token bucket for the access-log records of refused
// requests: rate a second, a burst of rate. Refusals cost the gateway
// little to answer and anyone can send them, so without a budget of their
// own a flood of them would fill the access log's queue and file and crowd
// out the records of answered requests. The rate is read from the serving
// Snapshot at each call, so a reload changes it; the bucket outlives
// reloads.
type refusalBudget struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
	primed bool
}

// allow takes one token at now if there is one.
func (b *refusalBudget) allow(now time.Time, rate int) bool {
	if rate <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	burst := float64(rate)
	if !b.primed {
		b.tokens, b.last, b.primed = burst, now, true
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens += d.Seconds() * float64(rate)
		b.last = now
	}
	if b.tokens > burst {
		b.tokens = burst
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
