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
