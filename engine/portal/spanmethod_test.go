package portal

import (
	"strings"
	"testing"
)

// The caller writes the method: known ones name the span, anything else is
// _OTHER (a megabyte of method must not become a span name).
func TestSpanMethod(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "PATCH": "PATCH", "FOO": "_OTHER", "get": "_OTHER", strings.Repeat("X", 1<<20): "_OTHER"} {
		if got := spanMethod(in); got != want {
			t.Errorf("spanMethod(%.10q) = %q, want %q", in, got, want)
		}
	}
}
