// Package portal is the HTTP handler third parties call:
// {basePath}/{apiCode}/{version}. It routes a request to the API of the
// current Snapshot, runs the security chain and the flow, and answers the
// envelope {code, message, response, traceId} — errors included.
package portal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// TraceHeader carries the trace id in both directions.
const TraceHeader = "X-Trace-Id"

// Handler serves the portal from whatever Snapshot current returns.
type Handler struct {
	current func() *snapshot.Snapshot
	log     *slog.Logger
}

// New returns the portal handler.
func New(current func() *snapshot.Snapshot, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{current: current, log: log}
}

// Call is the state of one portal request as it moves through the chain.
type Call struct {
	W        http.ResponseWriter
	R        *http.Request
	Snap     *snapshot.Snapshot
	Route    *snapshot.Route
	TraceID  string
	ClientIP netip.Addr
	Body     []byte
	Status   int    // the answer's HTTP status, once written
	Message  string // the answer's message
}

// fault is a refusal: the status and the envelope's message.
type fault struct {
	status  int
	message string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &Call{W: w, R: r, TraceID: traceID(r)}
	w.Header()[TraceHeader] = []string{c.TraceID}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("portal panic", "traceId", c.TraceID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if c.Status == 0 {
				h.fail(c, &fault{http.StatusInternalServerError, MsgInternal})
			}
		}
	}()
	c.Snap = h.current()
	if c.Snap == nil {
		h.fail(c, &fault{http.StatusServiceUnavailable, MsgUnavailable})
		return
	}
	if f := h.serve(c); f != nil {
		h.fail(c, f)
	}
}

// serve runs the portal's stages in DESIGN.md's order.
func (h *Handler) serve(c *Call) *fault {
	code, version, ok := route(c.Snap.BasePaths, c.R.URL.EscapedPath())
	if !ok {
		return &fault{http.StatusNotFound, MsgNotFound}
	}
	c.ClientIP = clientIP(c.R, c.Snap.TrustedProxies)
	if f := checkIP(c.ClientIP, c.Snap.AllowedIPs, c.Snap.DeniedIPs); f != nil {
		return f
	}
	c.Route = c.Snap.Online(code, version)
	if c.Route == nil {
		return &fault{http.StatusNotFound, MsgNotFound}
	}
	if !c.Route.Methods[c.R.Method] {
		c.W.Header().Set("Allow", c.Route.Allow)
		return &fault{http.StatusMethodNotAllowed, MsgMethod}
	}
	if f := h.readBody(c); f != nil {
		return f
	}
	if *c.Snap.Settings.APIPortal.Security.Enabled {
		// The signature and encryption chain is not part of this build:
		// refuse rather than serve unauthenticated.
		return &fault{http.StatusNotImplemented, "security chain not available in this build; set apiPortal.security.enabled: false"}
	}
	return h.runFlow(c)
}

// route splits {base}/{code}/{version}. Anything else under a base path,
// or outside every base path, is not a route.
func route(bases []string, path string) (code, version string, ok bool) {
	for _, base := range bases {
		rest, found := strings.CutPrefix(path, base)
		if !found || len(rest) < 2 || rest[0] != '/' {
			continue
		}
		code, version, found = strings.Cut(rest[1:], "/")
		if !found || !validSegment(code) || !validVersion(version) {
			return "", "", false
		}
		return code, version, true
	}
	return "", "", false
}

func validSegment(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return s[0] != '.' && s[0] != '_' && s[0] != '-'
}

func validVersion(s string) bool {
	if len(s) < 2 || len(s) > 12 || s[0] != 'v' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (h *Handler) readBody(c *Call) *fault {
	limit := c.Snap.Settings.APIPortal.MaxBodyBytes
	if c.R.ContentLength > limit {
		return &fault{http.StatusRequestEntityTooLarge, MsgTooLarge}
	}
	if c.R.Body == nil || c.R.Body == http.NoBody {
		return nil
	}
	body, err := readAll(http.MaxBytesReader(c.W, c.R.Body, limit), c.R.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &fault{http.StatusRequestEntityTooLarge, MsgTooLarge}
		}
		return &fault{http.StatusBadRequest, MsgBodyReadFailed}
	}
	c.Body = body
	return nil
}

// readAll reads a body, sized up front when its length is known.
func readAll(r io.Reader, n int64) ([]byte, error) {
	if n > 0 && n < 1<<20 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		// Make sure nothing follows what the length announced.
		var one [1]byte
		if m, _ := r.Read(one[:]); m > 0 {
			return nil, errors.New("body longer than Content-Length")
		}
		return b, nil
	}
	return io.ReadAll(r)
}

func (h *Handler) runFlow(c *Call) *fault {
	r := c.R
	api := c.Route.API
	req := &flow.Request{
		Method:      r.Method,
		Path:        r.URL.Path,
		Header:      r.Header,
		Query:       r.URL.Query(),
		Body:        c.Body,
		ContentType: r.Header.Get("Content-Type"),
		APICode:     api.Code,
		Version:     api.Version,
		AppID:       r.Header.Get("ZT-App-Id"),
		ClientID:    r.Header.Get("X-Client-Id"),
		IP:          c.ClientIP.String(),
		TraceID:     c.TraceID,
	}
	if p := c.Snap.Settings.APIPortal; *p.EnableTenantHeader {
		req.TenantID = r.Header.Get(p.TenantHeader)
	}
	res := c.Route.Flow.Run(r.Context(), req)
	defer res.Close()
	if res.Err != nil {
		var resp []byte
		if res.ErrResponse != nil {
			resp, _ = flow.ValueOutput(res.ErrResponse).JSON()
		}
		h.log.Debug("flow failed", "traceId", c.TraceID, "api", api.ID(), "status", res.Err.Status, "error", res.Err.Message)
		h.answer(c, res.Err.Status, res.Err.Message, resp)
		return nil
	}
	if stream, ct := res.Output.Stream(); stream != nil {
		h.stream(c, stream, ct)
		return nil
	}
	body, err := res.Output.JSON()
	if err != nil {
		h.log.Warn("flow output is not JSON", "traceId", c.TraceID, "api", api.ID(), "error", err)
		h.answer(c, http.StatusBadGateway, "flow output could not be encoded: "+err.Error(), nil)
		return nil
	}
	h.answer(c, http.StatusOK, MsgOK, body)
	return nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// stream passes a streaming step's body through, unbuffered, with the
// upstream's content type.
func (h *Handler) stream(c *Call, body io.Reader, contentType string) {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	c.W.Header().Set("Content-Type", contentType)
	c.Status, c.Message = http.StatusOK, MsgOK
	c.W.WriteHeader(http.StatusOK)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if _, err := io.CopyBuffer(writerOnly{c.W}, body, *bp); err != nil {
		h.log.Warn("stream interrupted", "traceId", c.TraceID, "error", err)
	}
}

// writerOnly hides ReadFrom so CopyBuffer uses the pooled buffer.
type writerOnly struct{ io.Writer }

func (h *Handler) answer(c *Call, status int, message string, response []byte) {
	c.Status, c.Message = status, message
	writeEnvelope(c.W, status, message, response, c.TraceID)
}

func (h *Handler) fail(c *Call, f *fault) {
	h.answer(c, f.status, f.message, nil)
}

// traceID takes the caller's trace id (W3C traceparent, then X-Trace-Id)
// when it is well formed, or makes a new one.
func traceID(r *http.Request) string {
	if tp := r.Header.Get("Traceparent"); len(tp) == 55 && tp[2] == '-' && tp[35] == '-' {
		if id := tp[3:35]; isHex(id) && id != "00000000000000000000000000000000" {
			return id
		}
	}
	if id := r.Header.Get(TraceHeader); id != "" && len(id) <= 128 && safeID(id) {
		return id
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func safeID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// clientIP is the peer address, or — when the peer is a trusted proxy — the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if len(trusted) == 0 || !contains(trusted, peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer // a malformed hop: trust nothing beyond the peer
			}
			a = a.Unmap()
			if !contains(trusted, a) {
				return a
			}
		}
	}
	return peer
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// checkIP applies deniedIps, then allowedIps (empty allows all).
func checkIP(a netip.Addr, allowed, denied []netip.Prefix) *fault {
	if len(denied) > 0 && contains(denied, a) {
		return &fault{http.StatusForbidden, MsgIPDenied}
	}
	if len(allowed) > 0 && !contains(allowed, a) {
		return &fault{http.StatusForbidden, MsgIPDenied}
	}
	return nil
}
