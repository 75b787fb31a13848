// Package fault classifies the error of a call that got no answer — a
// refused or reset connection, a timeout, a host that does not resolve, a
// failed TLS handshake — by what it is (errors.Is and errors.As on the
// context, syscall, net and tls errors), never by its message text, which
// differs between operating systems and Go releases and moves when a
// caller wraps it. Callers word and count the kinds themselves.
package fault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Kind is the class of a transport error.
type Kind int

// The kinds, in the order Of tests them: the first that matches wins.
const (
	// None: the error is nil.
	None Kind = iota
	// Timeout: a deadline passed (context.DeadlineExceeded,
	// os.ErrDeadlineExceeded, a net.Error whose Timeout() is true — a
	// client timeout, an I/O deadline, a DNS lookup that timed out).
	Timeout
	// Canceled: the caller gave up (context.Canceled).
	Canceled
	// Refused: nothing listens at the address (ECONNREFUSED).
	Refused
	// Closed: the peer closed or reset the connection before the answer
	// was complete (ECONNRESET, ECONNABORTED, EPIPE, io.EOF,
	// io.ErrUnexpectedEOF).
	Closed
	// HostNotFound: the host name does not resolve (a *net.DNSError
	// whose IsNotFound is true).
	HostNotFound
	// TLS: the TLS handshake failed — the certificate did not verify,
	// the peer sent an alert or does not speak TLS.
	TLS
	// Other: none of the above.
	Other
)

var names = [...]string{
	None:         "none",
	Timeout:      "timeout",
	Canceled:     "canceled",
	Refused:      "refused",
	Closed:       "closed",
	HostNotFound: "host_not_found",
	TLS:          "tls",
	Other:        "other",
}

// String is the kind's name, fit for a metric label or a log field.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(names) {
		return "unknown"
	}
	return names[k]
}

// Of classifies err.
func Of(err error) Kind {
	if err == nil {
		return None
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return Timeout
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Closed
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok && de.IsNotFound {
		return HostNotFound
	}
	if isTLS(err) {
		return TLS
	}
	return Other
}

func isTLS(err error) bool {
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true // the peer does not speak TLS
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return true // net/http's name for a RecordHeaderError that reads "HTTP/"
	}
	// crypto/tls reports an alert from the peer as a *net.OpError with
	// this Op (its alert type is unexported).
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "remote error" {
		return true
	}
	return false
}
