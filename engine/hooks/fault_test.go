package hooks

import (
	"errors"
	"net/http"
	"testing"

	"github.com/databus-gateway/databus/engine/fault/faulttest"
)

// TestTransportReason: transport errors are worded by what they are, from
// real calls on loopback; an error that merely reads like one is not
// mistaken for it.
func TestTransportReason(t *testing.T) {
	closed := faulttest.ClosedAddr(t)
	reset := faulttest.Resetting(t)

	call := func(addr string) error {
		resp, err := http.Post("http://"+addr+"/", "application/json", nil)
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
		{"refused", call(closed), "the hook service refused the connection"},
		{"reset", call(reset), "the hook service closed the connection"},
		{"look-alike", errors.New("resolving the service: connection refused"), "the hook service could not be reached"},
	}
	for _, tt := range tests {
		if got := transportReason(tt.err); got != tt.want {
			t.Errorf("%s: transportReason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}
