package metrics

import (
	"testing"
	"time"
)

func TestSeriesWindow(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 30, 20, 0, time.UTC)
	for _, c := range []struct {
		name    string
		since   time.Time
		covered time.Duration
		partial bool
	}{
		{"started 5 min ago", now.Add(-5 * time.Minute), 5 * time.Minute, true},
		{"started 2 h ago", now.Add(-2 * time.Hour), 59*time.Minute + 20*time.Second, false},
		{"never started", time.Time{}, 59*time.Minute + 20*time.Second, false},
		{"clock behind the start", now.Add(time.Minute), 0, true},
	} {
		var s Series
		s.Start(c.since)
		s.Add(now.Add(-time.Minute), false)
		s.Add(now.Add(-90*time.Minute), true) // outside the hour
		w := s.Window(now)
		if w.Covered != c.covered || w.Partial != c.partial {
			t.Errorf("%s: covered %s partial %v, want %s %v", c.name, w.Covered, w.Partial, c.covered, c.partial)
		}
		n := 0
		for _, m := range w.Minutes {
			n += m.Requests
		}
		if len(w.Minutes) != 60 || n != 1 {
			t.Errorf("%s: %d minutes, %d requests", c.name, len(w.Minutes), n)
		}
	}
}
