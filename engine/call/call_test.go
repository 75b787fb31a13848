package call

import (
	"encoding/hex"
	"testing"
	"time"
)

// TestNewTraceIDOrdered checks that generated trace ids are W3C-shaped and
// sort by time, so that the access log's trace index appends.
func TestNewTraceIDOrdered(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewTraceID(t0.Add(time.Duration(i) * time.Millisecond))
		if _, err := hex.DecodeString(id); len(id) != 32 || err != nil {
			t.Fatalf("trace id %q is not 32 hex digits", id)
		}
		if id <= prev {
			t.Fatalf("trace id %q made 1ms after %q sorts before it", id, prev)
		}
		if seen[id] {
			t.Fatalf("duplicate trace id %q", id)
		}
		seen[id] = true
		prev = id
	}
	// Same millisecond: still distinct (80 random bits).
	if NewTraceID(t0) == NewTraceID(t0) {
		t.Fatal("two ids of the same millisecond are equal")
	}
}
