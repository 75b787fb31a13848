package flow

import (
	"errors"
	"net/http"
	"testing"

	"github.com/databus-gateway/databus/engine/fault/faulttest"
)

// TestUpstreamReason: transport errors are worded by what they are, from
// real calls on loopback; an error that merely reads like one is passed on
// as it is.
func TestUpstreamReason(t *testing.T) {
	closed := faulttest.ClosedAddr(t)
	reset := faulttest.Resetting(t)

	call := func(addr string) error {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", call(closed), "upstream refused the connection"},
		{"reset", call(reset), "upstream closed the connection"},
		{"look-alike", errors.New("upstream said: connection refused"), "upstream said: connection refused"},
	}
	for _, tt := range tests {
		if got := upstreamReason(tt.err); got != tt.want {
			t.Errorf("%s: upstreamReason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}
