package portal

import (
	"net/http"
	"testing"
)

// TestTraceIDGenerated: a request without a trace id gets a generated one.
func TestTraceIDGenerated(t *testing.T) {
	r, _ := http.NewRequest(http.MethodPost, "/", nil)
	if id := traceID(r); len(id) != 32 || !isHex(id) {
		t.Fatalf("traceID() = %q", id)
	}
}
