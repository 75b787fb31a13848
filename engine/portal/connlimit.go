package portal

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/metrics"
)

// DefaultMaxConnections is the portal's connection cap when none is given
// (databus serve --max-connections).
const DefaultMaxConnections = 10000

// maxRefusing bounds the connections being answered 503 at once; beyond
// it, a connection over the cap is closed without an answer, so that a
// flood of connections costs no more than a bounded number of goroutines.
const maxRefusing = 64

// refuseTimeout bounds how long answering a refused connection may take.
const refuseTimeout = time.Second

// LimitListener caps the open connections accepted from ln at max. A
// connection over the cap is answered 503 with the envelope (Connection:
// close) and closed, and counted in databus_portal_connections_refused_total;
// databus_portal_connections is the number open. m may be nil.
func LimitListener(ln net.Listener, max int, m *metrics.Metrics) net.Listener {
	return &limitListener{Listener: ln, max: int64(max), m: m}
}

type limitListener struct {
	net.Listener
	max      int64
	m        *metrics.Metrics
	open     atomic.Int64
	refusing atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		if l.m != nil {
			l.m.Connections.Inc()
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

// refuse answers c 503 and closes it, in the background and within
// refuseTimeout, or closes it at once when maxRefusing are being answered.
func (l *limitListener) refuse(c net.Conn) {
	if l.refusing.Add(1) > maxRefusing {
		l.refusing.Add(-1)
		c.Close()
		l.count("closed")
		return
	}
	l.count("answered")
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseTimeout))
		if _, err := c.Write(busyAnswer()); err != nil {
			return
		}
		// Read what the client sent before closing, so the answer is not
		// lost to a reset; the deadline bounds it.
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

func (l *limitListener) count(how string) {
	if l.m != nil {
		l.m.ConnectionsRefused.WithLabelValues(how).Inc()
	}
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.l.m != nil {
			c.l.m.Connections.Dec()
		}
	})
	return err
}

// busyAnswer is the raw HTTP answer to a connection over the cap: 503
// with the envelope, as the portal answers.
func busyAnswer() []byte {
	env := appendEnvelope(nil, 503, MsgBusy, nil, call.NewTraceID(time.Now()))
	b := make([]byte, 0, 256+len(env))
	b = append(b, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(env)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, env...)
}
