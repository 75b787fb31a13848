package flow

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A server that enforces the step's propagated deadline can cancel the
// stream a moment before the client's own timer fires: still the step's
// timeout. A DeadlineExceeded well before the step's deadline is the
// server's own: a 504 that says the step failed, not that it timed out.
func TestRPCDeadlineAtTheStepsDeadline(t *testing.T) {
	s := &rpcStep{timeout: 300 * time.Millisecond}
	st := &step{id: "stock"}
	stat := status.New(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL")

	// A busy machine may deliver the server's cancellation long before
	// the client's timer: 100ms early is still the step's timeout.
	for _, left := range []time.Duration{5 * time.Millisecond, 100 * time.Millisecond} {
		near, cancel := context.WithDeadline(context.Background(), time.Now().Add(left))
		defer cancel()
		e := s.callError(context.Background(), near, st, "", stat)
		if e.Status != http.StatusGatewayTimeout || !strings.Contains(e.Message, `step "stock" timed out after 300ms`) {
			t.Errorf("%s before the deadline: %d %s", left, e.Status, e.Message)
		}
	}

	far, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
	defer cancel2()
	e := s.callError(context.Background(), far, st, "", stat)
	if e.Status != http.StatusGatewayTimeout || !strings.Contains(e.Message, `step "stock" failed: gRPC DeadlineExceeded`) {
		t.Errorf("the server's own deadline: %d %s", e.Status, e.Message)
	}
}
