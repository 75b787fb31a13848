package metrics

import (
	"sync"
	"time"
)

// Series keeps per-minute request and error counts for the last hour, for
// the admin pages' chart and rates (the gateway's own data, no Prometheus
// server needed).
type Series struct {
	mu      sync.Mutex
	buckets [60]Minute
	since   time.Time // when counting began; zero: before the hour
}

// Minute is one minute of traffic.
type Minute struct {
	Start    time.Time `json:"start"`
	Requests int       `json:"requests"`
	Errors   int       `json:"errors"` // answers with status >= 500 (gateway or upstream failures)
}

// Add counts one answer at t; failed is true for errors.
func (s *Series) Add(t time.Time, failed bool) {
	start := t.Truncate(time.Minute)
	i := (start.Unix() / 60) % 60
	s.mu.Lock()
	b := &s.buckets[i]
	if !b.Start.Equal(start) {
		*b = Minute{Start: start}
	}
	b.Requests++
	if failed {
		b.Errors++
	}
	s.mu.Unlock()
}

// Start says when counting began (the gateway's start), so that a rate
// divides by the time actually counted, not by a whole hour.
func (s *Series) Start(t time.Time) {
	s.mu.Lock()
	s.since = t
	s.mu.Unlock()
}

// Window is the last hour of traffic and how much of it was counted.
type Window struct {
	Minutes []Minute // LastHour
	// Covered is the time the counts span: from the start of the first
	// minute, or from Start when counting began later, up to now.
	Covered time.Duration
	// Partial: counting began within the window (the gateway has run for
	// less than the hour).
	Partial bool
}

// Window returns the last hour and the time it covers.
func (s *Series) Window(now time.Time) Window {
	w := Window{Minutes: s.LastHour(now)}
	from := w.Minutes[0].Start
	s.mu.Lock()
	since := s.since
	s.mu.Unlock()
	if since.After(from) {
		from, w.Partial = since, true
	}
	w.Covered = max(now.Sub(from), 0)
	return w
}

// LastHour returns the 60 minutes up to now, oldest first; minutes without
// traffic are zero.
func (s *Series) LastHour(now time.Time) []Minute {
	end := now.Truncate(time.Minute)
	out := make([]Minute, 60)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := 0; k < 60; k++ {
		start := end.Add(time.Duration(k-59) * time.Minute)
		b := s.buckets[(start.Unix()/60)%60]
		if b.Start.Equal(start) {
			out[k] = b
		} else {
			out[k] = Minute{Start: start}
		}
	}
	return out
}
