// Package portal is the HTTP handler third parties call:
// {basePath}/{apiCode}/{version}. It routes a request to the API of the
// current Snapshot, runs the security chain and the flow, and answers the
// envelope {code, message, response, traceId} — errors included.
package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/admission"
	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// TraceHeader carries the trace id in both directions.
const TraceHeader = "X-Trace-Id"

// Handler serves the portal from whatever Snapshot current returns; it
// calls the Snapshot's Release when the request is done.
type Handler struct {
	current func() *snapshot.Snapshot
	log     *slog.Logger
	nonces  security.NonceStore // used when the Snapshot has none
	limits  ratelimit.Store     // used when the Snapshot has none
	now     func() time.Time
	metrics *metrics.Metrics
	faults  storeFaults
	acc     AccessLog // nil: no access log
	trusted bool      // Options.Trusted

	bodyBytes atomic.Int64 // request body bytes held now (apiPortal.maxBodyBytesInFlight)
	// admission bounds the requests worked on at once (apiPortal.maxInFlight).
	admission *admission.Limiter
	// refusals is the budget of refusal records in the access log.
	refusals refusalBudget
}

// Options are the portal's long-lived parts.
type Options struct {
	Logger  *slog.Logger        // nil: discard
	Nonces  security.NonceStore // nil: an embedded in-memory store
	Limits  ratelimit.Store     // nil: an embedded in-memory store
	Now     func() time.Time    // nil: time.Now (tests move the clock)
	Metrics *metrics.Metrics    // nil: not counted
	// AccessLog receives a record per request when apiPortal.enableAudit
	// is on; nil: none.
	AccessLog AccessLog
	// FaultLogInterval is how often a failing store is logged (default 10s).
	FaultLogInterval time.Duration
	// Trusted takes the caller's ZT-App-Id without proof: no timestamp,
	// nonce, decryption or signature check, no key needed, answers in
	// plain text. Only a sandbox replaying recorded traffic (whose
	// signatures cannot be made again) sets it; no setting reaches it.
	Trusted bool
}

// New returns the portal handler.
func New(current func() *snapshot.Snapshot, o Options) *Handler {
	h := &Handler{current: current, log: o.Logger, nonces: o.Nonces, limits: o.Limits, now: o.Now, metrics: o.Metrics, acc: o.AccessLog, trusted: o.Trusted}
	h.faults.interval = o.FaultLogInterval
	if h.faults.interval == 0 {
		h.faults.interval = 10 * time.Second
	}
	if h.limits == nil {
		h.limits = ratelimit.NewMemory(0)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.nonces == nil {
		h.nonces = security.NewMemoryNonces(0)
	}
	if h.now == nil {
		h.now = time.Now
	}
	var obs admission.Observer
	if h.metrics != nil {
		obs = admissionMetrics{h.metrics}
	}
	h.admission = admission.New(obs)
	return h
}

// MaxHeaderBytes bounds a request's headers; larger ones get a 431
// envelope. (The server's own limit, above it, cuts off anything bigger.)
const MaxHeaderBytes = 64 << 10

// MsgHeaderTooLarge answers a request whose headers exceed MaxHeaderBytes.
const MsgHeaderTooLarge = "请求头过大"

func headerBytes(h http.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// Call is the state of one portal request as it moves through the chain.
type Call struct {
	W        http.ResponseWriter
	R        *http.Request
	Snap     *snapshot.Snapshot
	Route    *snapshot.Route
	TraceID  string
	ClientIP netip.Addr
	Body     []byte // the request body, decrypted once the chain has run
	Status   int    // the answer's HTTP status, once written
	Message  string // the answer's message
	Reason   string // why the request was refused, "" when it was not

	Cred          *snapshot.Credential // the caller, once known (security on)
	TenantID      string
	User          map[string]any // the anonymous user, or nil
	Authorization string         // sent to upstream steps

	// Chain records decisions of the chain (hooks, rate limit) for the
	// access log, beside the flow's step results.
	Chain []flow.StepResult

	// Steps are the flow's step results.
	Steps []flow.StepResult

	started   time.Time
	respBody  []byte // the envelope's response, before encryption
	streamed  bool
	encrypt   security.Cipher // answers are encrypted with it once set
	timestamp string
	nonce     string
	decrypted bool
	held      int64 // bytes of the in-flight body budget this request holds
	admitted  bool  // holds a slot of apiPortal.maxInFlight
	// wasAdmitted: the request was given a slot (it counts in
	// databus_portal_admitted_duration_seconds).
	wasAdmitted bool
	// span is the request's server span; nil while tracing is off or the
	// trace is not sampled.
	span trace.Span
}

// fault is a refusal: its reason (for the metrics and the access log),
// the status and the envelope's message.
type fault struct {
	reason  string
	status  int
	message string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &Call{W: w, R: r, TraceID: traceID(r), started: time.Now()}
	w.Header()[TraceHeader] = []string{c.TraceID}
	// The Snapshot is held until the record is written: its resources
	// (Redis client, transports) are released only after its last request.
	defer func() { c.Snap.Release() }()
	defer h.finish(c)
	defer h.release(c)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("portal panic", "traceId", c.TraceID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if c.Status == 0 {
				h.fail(c, refuse(ReasonInternal, http.StatusInternalServerError, MsgInternal))
			}
		}
	}()
	if headerBytes(r.Header) > MaxHeaderBytes {
		h.fail(c, refuse(ReasonHeader, http.StatusRequestHeaderFieldsTooLarge, MsgHeaderTooLarge))
		return
	}
	c.Snap = h.current()
	if c.Snap == nil {
		h.fail(c, refuse(ReasonNoConfig, http.StatusServiceUnavailable, MsgUnavailable))
		return
	}
	if t := c.Snap.Tracer; t != nil {
		h.startSpan(c, t)
	}
	if f := h.serve(c); f != nil {
		h.fail(c, f)
	}
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

// MsgBusy answers a request the gateway has no room for now
// (apiPortal.maxInFlight and its queue, apiPortal.maxBodyBytesInFlight,
// the connection cap).
const MsgBusy = "网关繁忙，请稍后重试"

// readBody reads the body within apiPortal.maxBodyBytes, holding its size
// against the in-flight budget (apiPortal.maxBodyBytesInFlight) until the
// request is done. A body whose announced length does not fit is refused
// before a byte of it is read; one of unknown length takes the budget as it
// arrives.
func (h *Handler) readBody(c *Call) *fault {
	p := c.Snap.Settings.APIPortal
	if c.R.ContentLength > p.MaxBodyBytes {
		return refuse(ReasonBody, http.StatusRequestEntityTooLarge, MsgTooLarge)
	}
	if c.R.Body == nil || c.R.Body == http.NoBody || c.R.ContentLength == 0 {
		return nil
	}
	r := http.MaxBytesReader(c.W, c.R.Body, p.MaxBodyBytes)
	var body []byte
	var err error
	if n := c.R.ContentLength; n > 0 {
		if !h.hold(c, n, p.MaxBodyBytesInFlight) {
			return h.busy(c)
		}
		body, err = readKnown(r, n)
	} else {
		var full bool
		body, full, err = h.readUnknown(c, r, p.MaxBodyBytes, p.MaxBodyBytesInFlight)
		if full {
			return h.busy(c)
		}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return refuse(ReasonBody, http.StatusRequestEntityTooLarge, MsgTooLarge)
		}
		return refuse(ReasonBody, http.StatusBadRequest, MsgBodyReadFailed)
	}
	c.Body = body
	return nil
}

// busy refuses a body the in-flight budget has no room for; the caller
// may retry shortly.
func (h *Handler) busy(c *Call) *fault {
	c.W.Header().Set("Retry-After", "1")
	return refuse(ReasonBudget, http.StatusServiceUnavailable, MsgBusy)
}

// hold takes n bytes of the in-flight body budget for c, false when they
// do not fit under limit. The request gives them back when it is done.
func (h *Handler) hold(c *Call, n, limit int64) bool {
	for {
		cur := h.bodyBytes.Load()
		if cur+n > limit {
			return false
		}
		if h.bodyBytes.CompareAndSwap(cur, cur+n) {
			break
		}
	}
	c.held += n
	if h.metrics != nil {
		h.metrics.BodyBytesInFlight.Add(float64(n))
	}
	return true
}

// release gives back what c holds of the in-flight body budget and its
// slot of apiPortal.maxInFlight.
func (h *Handler) release(c *Call) {
	h.leave(c)
	if c.held == 0 {
		return
	}
	h.bodyBytes.Add(-c.held)
	if h.metrics != nil {
		h.metrics.BodyBytesInFlight.Sub(float64(c.held))
	}
	c.held = 0
}

// readKnown reads a body of announced length n into one buffer of that size.
func readKnown(r io.Reader, n int64) ([]byte, error) {
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

// bodyChunk is how much of the budget a body of unknown length takes at a time.
const bodyChunk = 64 << 10

// readUnknown reads a body of unknown length (chunked) into a buffer that
// doubles as it fills, taking the budget for each growth before it grows;
// full reports that the budget ran out.
func (h *Handler) readUnknown(c *Call, r io.Reader, maxBody, limit int64) (body []byte, full bool, err error) {
	for {
		if len(body) == cap(body) {
			// One byte beyond maxBody lets the reader report the excess.
			grow := min(max(bodyChunk, int64(cap(body))), maxBody+1-int64(cap(body)))
			if !h.hold(c, grow, limit) {
				return nil, true, nil
			}
			nb := make([]byte, len(body), int64(cap(body))+grow)
			copy(nb, body)
			body = nb
		}
		m, rerr := r.Read(body[len(body):cap(body)])
		body = body[:len(body)+m]
		if rerr == io.EOF {
			return body, false, nil
		}
		if rerr != nil {
			return nil, false, rerr
		}
	}
}

func (h *Handler) runFlow(c *Call) *fault {
	r := c.R
	api := c.Route.API
	req := &flow.Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		Header:        r.Header,
		Query:         r.URL.Query(),
		Body:          c.Body,
		ContentType:   c.contentType(),
		APICode:       api.Code,
		Version:       api.Version,
		AppID:         c.AppID(),
		TenantID:      c.TenantID,
		ClientID:      r.Header.Get("X-Client-Id"),
		IP:            c.ClientIP.String(),
		User:          c.User,
		Authorization: c.Authorization,
		TraceID:       c.TraceID,
	}
	// A stream passes through unbuffered unless the answer must be
	// encrypted: then it is read (bounded) into the envelope.
	out := call.Run(r.Context(), c.Route.Flow, req, c.encrypt == nil)
	defer out.Close()
	c.Steps = out.Steps
	switch {
	case out.Err != nil:
		h.log.Debug("flow failed", "traceId", c.TraceID, "api", api.ID(), "status", out.Status, "error", out.Message)
	case out.EncodeErr != nil:
		var big *flow.StreamTooLargeError
		if errors.As(out.EncodeErr, &big) && !big.ForProgram && c.encrypt != nil {
			// The stream would have passed through: what read it whole is
			// the credential's response encryption.
			out.Message = fmt.Sprintf("flow output could not be encoded: the streamed answer is larger than %d bytes (gateway.webClient.maxResponseBytes) and credential %s encrypts answers, which needs the whole answer: raise the bound, or call the API with a credential whose encryptionType is NONE (or apiPortal.security.encryptResponse: false) so that it streams", big.Limit, c.AppID())
		}
		h.log.Warn("flow output could not be encoded", "traceId", c.TraceID, "api", api.ID(), "error", out.EncodeErr)
	case out.Stream != nil:
		h.stream(c, out.Stream, out.ContentType)
		return nil
	}
	h.answer(c, out.Status, out.Message, out.Response)
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
	c.Status, c.Message, c.streamed = http.StatusOK, MsgOK, true
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
	c.Status, c.Message, c.respBody = status, message, response
	if c.encrypt == nil {
		writeEnvelope(c.W, status, message, response, c.TraceID)
		return
	}
	// The plain envelope only lives until it is sealed: a pooled buffer.
	bp := bufPool.Get().(*[]byte)
	env := appendEnvelope((*bp)[:0], status, message, response, c.TraceID)
	body, err := sealed(c.encrypt, env)
	*bp = env
	if cap(env) <= 64<<10 {
		bufPool.Put(bp)
	}
	if err != nil {
		h.log.Error("response encryption failed", "error", err, "traceId", c.TraceID)
		c.encrypt = nil
		c.Status, c.Message, c.Reason = http.StatusInternalServerError, MsgInternal, ReasonInternal
		writeEnvelope(c.W, http.StatusInternalServerError, MsgInternal, nil, c.TraceID)
		return
	}
	hd := c.W.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	c.W.WriteHeader(status)
	c.W.Write(body)
}

// contentTypeOf names what a decrypted body holds.
func contentTypeOf(b []byte) string {
	if json.Valid(b) {
		return "application/json"
	}
	return "text/plain; charset=utf-8"
}

// fail answers a refusal; finish counts it under its reason.
func (h *Handler) fail(c *Call, f *fault) {
	c.Reason = f.reason
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
	return call.NewTraceID(time.Now())
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
