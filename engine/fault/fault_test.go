package fault_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/fault"
	"github.com/databus-gateway/databus/engine/fault/faulttest"
)

// The errors below are produced for real on loopback: a dial, a read, an
// HTTP call, a DNS lookup or a TLS handshake that failed, so that the
// classification is checked against what the standard library returns, not
// against errors built by hand.

// hangingUp reads the first line a client sends, then closes the
// connection in order (FIN).
func hangingUp(t *testing.T) string {
	return faulttest.Serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.Close()
	})
}

// shortBody answers an HTTP request with a body shorter than its
// Content-Length, then closes.
func shortBody(t *testing.T) string {
	return faulttest.Serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		c.Close()
	})
}

// alerting answers a TLS ClientHello with a fatal handshake_failure
// alert, then waits for the client to hang up.
func alerting(t *testing.T) string {
	return faulttest.Serve(t, func(c net.Conn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write([]byte{21, 3, 3, 0, 2, 2, 40}) // alert record: fatal, handshake_failure
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
		c.Close()
	})
}

// dnsServer is a loopback DNS server over UDP: it answers every query
// NXDOMAIN, or never when mute.
func dnsServer(t *testing.T, mute bool) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if mute || n < 12 {
				continue
			}
			// The query echoed back as an answer: QR, RD and RA set,
			// rcode 3 (name error).
			msg := append([]byte(nil), buf[:n]...)
			msg[2], msg[3] = 0x81, 0x83
			pc.WriteTo(msg, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// tlsServer is an HTTPS server on loopback whose certificate no client
// trusts by default; it does not log the handshakes its clients refuse.
func tlsServer(t *testing.T) *httptest.Server {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get is an HTTP GET of url through client; a response is read to the end.
func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

// sendLine dials addr, writes a line and reads the answer.
func sendLine(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "hello\n"); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  func(t *testing.T) error
		want fault.Kind
	}{
		{"nil", func(*testing.T) error { return nil }, fault.None},
		{"dial a closed port", func(t *testing.T) error {
			_, err := net.Dial("tcp", faulttest.ClosedAddr(t))
			return err
		}, fault.Refused},
		{"http to a closed port", func(t *testing.T) error {
			return get(http.DefaultClient, "http://"+faulttest.ClosedAddr(t)+"/")
		}, fault.Refused},
		{"refused, wrapped", func(t *testing.T) error {
			_, err := net.Dial("tcp", faulttest.ClosedAddr(t))
			return fmt.Errorf("resolving the service: %w", err)
		}, fault.Refused},
		{"read deadline on a listener that never accepts", func(t *testing.T) error {
			c, err := net.Dial("tcp", faulttest.Silent(t))
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			return err
		}, fault.Timeout},
		{"http client timeout", func(t *testing.T) error {
			return get(&http.Client{Timeout: 50 * time.Millisecond}, "http://"+faulttest.Silent(t)+"/")
		}, fault.Timeout},
		{"http request deadline", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+faulttest.Silent(t)+"/", nil)
			_, err := http.DefaultClient.Do(req)
			return err
		}, fault.Timeout},
		{"http request cancelled", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+faulttest.Silent(t)+"/", nil)
			_, err := http.DefaultClient.Do(req)
			return err
		}, fault.Canceled},
		{"read from a connection the peer reset", func(t *testing.T) error {
			return sendLine(faulttest.Resetting(t))
		}, fault.Closed},
		{"http to a server that resets", func(t *testing.T) error {
			return get(http.DefaultClient, "http://"+faulttest.Resetting(t)+"/")
		}, fault.Closed},
		{"write to a connection the peer reset", func(t *testing.T) error {
			c, err := net.Dial("tcp", faulttest.Resetting(t))
			if err != nil {
				return err
			}
			defer c.Close()
			io.WriteString(c, "hello\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && fault.Of(err) != fault.Closed {
				return fmt.Errorf("reading before the write: %w", err)
			}
			_, err = io.WriteString(c, "again\n")
			return err
		}, fault.Closed},
		{"read from a connection the peer closed", func(t *testing.T) error {
			return sendLine(hangingUp(t))
		}, fault.Closed},
		{"http to a server that hangs up", func(t *testing.T) error {
			return get(http.DefaultClient, "http://"+hangingUp(t)+"/")
		}, fault.Closed},
		{"http body shorter than its length", func(t *testing.T) error {
			return get(http.DefaultClient, "http://"+shortBody(t)+"/")
		}, fault.Closed},
		{"lookup of a name that does not exist", func(t *testing.T) error {
			_, err := dnsServer(t, false).LookupHost(context.Background(), "nothing.invalid")
			return err
		}, fault.HostNotFound},
		{"http to a name that does not exist", func(t *testing.T) error {
			d := &net.Dialer{Resolver: dnsServer(t, false)}
			client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
			return get(client, "http://nothing.invalid/")
		}, fault.HostNotFound},
		{"lookup that times out", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := dnsServer(t, true).LookupHost(ctx, "nothing.invalid")
			return err
		}, fault.Timeout},
		{"certificate of an unknown authority", func(t *testing.T) error {
			srv := tlsServer(t)
			return get(http.DefaultClient, srv.URL)
		}, fault.TLS},
		{"certificate for another name", func(t *testing.T) error {
			srv := tlsServer(t)
			cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			cfg.ServerName = "other.invalid"
			c, err := tls.Dial("tcp", srv.Listener.Addr().String(), cfg)
			if err == nil {
				c.Close()
			}
			return err
		}, fault.TLS},
		{"tls to a plain http server", func(t *testing.T) error {
			srv := httptest.NewServer(http.NotFoundHandler())
			defer srv.Close()
			c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				c.Close()
			}
			return err
		}, fault.TLS},
		{"https to a plain http server", func(t *testing.T) error {
			srv := httptest.NewServer(http.NotFoundHandler())
			defer srv.Close()
			return get(http.DefaultClient, "https://"+srv.Listener.Addr().String()+"/")
		}, fault.TLS},
		{"tls alert from the peer", func(t *testing.T) error {
			c, err := tls.Dial("tcp", alerting(t), &tls.Config{InsecureSkipVerify: true})
			if err == nil {
				c.Close()
			}
			return err
		}, fault.TLS},
		{"an error that only reads like one", func(*testing.T) error {
			return errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}, fault.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err(t)
			t.Logf("%v", err)
			if got := fault.Of(err); got != tt.want {
				t.Errorf("Of(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[fault.Kind]string{fault.None: "none", fault.Refused: "refused", fault.HostNotFound: "host_not_found", fault.Other: "other", fault.Kind(99): "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("%d: %q, want %q", int(k), got, want)
		}
	}
}
