package hooks

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"testing"
)

// TestTransportReason: transport errors are worded by what they are, from
// real calls on loopback; an error that merely reads like one is not
// mistaken for it.
func TestTransportReason(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	// reset answers the first request line with a reset (SO_LINGER 0).
	reset, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := reset.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	t.Cleanup(func() { reset.Close(); <-done })

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
		{"reset", call(reset.Addr().String()), "the hook service closed the connection"},
		{"look-alike", errors.New("resolving the service: connection refused"), "the hook service could not be reached"},
	}
	for _, tt := range tests {
		if got := transportReason(tt.err); got != tt.want {
			t.Errorf("%s: transportReason(%v) = %q, want %q", tt.name, tt.err, got, tt.want)
		}
	}
}
