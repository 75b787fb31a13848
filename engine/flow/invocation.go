// Package flow compiles an API definition into a flow of steps and runs it
// for one request: input validation, http and script steps, jq transforms
// and conditions. A compiled Flow is immutable and safe for concurrent use;
// everything it compiles (jq programs, templates, scripts, input schema) is
// built once per reload, never per request.
package flow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/expr"
)

// Request is what the portal hands to a flow: the caller's request after
// the security chain.
type Request struct {
	Method      string
	Path        string
	Header      http.Header
	Query       url.Values
	Body        []byte // decrypted body
	ContentType string
	APICode     string
	Version     string
	AppID       string
	TenantID    string
	ClientID    string
	IP          string
	User        map[string]any // the anonymous user, or nil
	TraceID     string
	// Authorization goes to upstream http steps: the caller's own header,
	// or the internal JWT of an anonymous caller.
	Authorization string
}

// Output is what a step produced: decoded lazily from raw bytes, a value,
// or a stream that has not been read yet.
type Output struct {
	raw         []byte
	contentType string
	val         any
	hasVal      bool
	isValue     bool // built from a value, not read from bytes
	stream      io.ReadCloser
	limit       int64 // bound for reading stream when its value is needed
}

// ValueOutput wraps an already decoded value.
func ValueOutput(v any) *Output { return &Output{val: v, hasVal: true, isValue: true} }

// RawOutput wraps bytes that are decoded only when a program needs them.
func RawOutput(raw []byte, contentType string) *Output {
	return &Output{raw: raw, contentType: contentType}
}

// Value returns the decoded value: JSON when the bytes are JSON (numbers
// kept exact as json.Number), otherwise the text as a string.
func (o *Output) Value() (any, error) {
	if o == nil {
		return nil, nil
	}
	if o.hasVal {
		return o.val, nil
	}
	if o.stream != nil {
		if err := o.drain(); err != nil {
			var big *StreamTooLargeError
			if errors.As(err, &big) {
				big.ForProgram = true
			}
			return nil, err
		}
	}
	o.val, o.hasVal = decodeBody(o.raw), true
	return o.val, nil
}

func (o *Output) drain() error {
	defer func() { o.stream.Close(); o.stream = nil }()
	b, err := io.ReadAll(io.LimitReader(o.stream, o.limit+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > o.limit {
		return &StreamTooLargeError{Limit: o.limit}
	}
	o.raw = b
	return nil
}

// StreamTooLargeError: a streaming step's body had to be read whole and is
// larger than its bound (gateway.webClient.maxResponseBytes). Either a
// program (a transform, a condition) reads it (ForProgram), or the answer
// is built whole from it: then the caller knows why (response encryption,
// the debug invoke) and says so.
type StreamTooLargeError struct {
	Limit      int64
	ForProgram bool
}

func (e *StreamTooLargeError) Error() string {
	if e.ForProgram {
		return fmt.Sprintf("streamed body larger than %d bytes (gateway.webClient.maxResponseBytes) cannot be used by a transform or condition", e.Limit)
	}
	return fmt.Sprintf("streamed body larger than %d bytes (gateway.webClient.maxResponseBytes) cannot be read whole into the answer", e.Limit)
}

// decodeBody decodes JSON bytes; anything else is kept as text. Empty is null.
func decodeBody(b []byte) any {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if v, ok := decodeJSON(b); ok {
		return v
	}
	return string(b)
}

// JSON returns the output as JSON bytes for the envelope. Raw JSON bytes
// pass through untouched, even when a program decoded them meanwhile (key
// order, number spelling and big integers are kept); text becomes a JSON
// string.
func (o *Output) JSON() ([]byte, error) {
	if o == nil {
		return []byte("null"), nil
	}
	if o.stream != nil {
		if err := o.drain(); err != nil {
			return nil, err
		}
	}
	if !o.isValue {
		// JSON's own whitespace only: json.Valid, and so Value, accept no other.
		trimmed := bytes.Trim(o.raw, " \t\r\n")
		if len(trimmed) == 0 {
			return []byte("null"), nil
		}
		if json.Valid(trimmed) {
			return trimmed, nil
		}
	}
	v, err := o.Value()
	if err != nil {
		return nil, err
	}
	return marshal(v)
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Stream returns the unread body of a streaming step and its content type;
// nil when the output is not a stream.
func (o *Output) Stream() (io.ReadCloser, string) {
	if o == nil || o.stream == nil {
		return nil, ""
	}
	return o.stream, o.contentType
}

// Close releases an unread stream.
func (o *Output) Close() {
	if o != nil && o.stream != nil {
		o.stream.Close()
		o.stream = nil
	}
}

// StepResult records what one step did, for the access log and the debug
// invoke.
type StepResult struct {
	ID       string        `json:"id"`
	Type     string        `json:"type"`
	Skipped  bool          `json:"skipped,omitempty"`
	Request  any           `json:"request,omitempty"`
	Response any           `json:"response,omitempty"`
	Status   int           `json:"status,omitempty"`
	Elapsed  time.Duration `json:"elapsed"`
	Error    string        `json:"error,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
}

// Error is a failed flow: the HTTP status and message of the envelope, and
// where it happened.
type Error struct {
	Status  int
	Message string
	Step    string // step id, "" when not in a step
	Phase   string // e.g. "transforms.response", "when", "input"
	Err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// Invocation is the state of one run: the request, the step outputs and the
// invocation document that jq programs and scripts see.
type Invocation struct {
	Req     *Request
	Results []StepResult

	body    *Output
	outputs map[string]*Output
	order   []string
	decoded int            // outputs of order already in steps
	doc     map[string]any // built on first use, then kept up to date
	request map[string]any // doc's request part, built when a program may read it
	steps   map[string]any
	vars    map[string]any
}

func newInvocation(req *Request) *Invocation {
	return &Invocation{
		Req:     req,
		body:    RawOutput(req.Body, req.ContentType),
		outputs: make(map[string]*Output, 4),
	}
}

// setOutput stores a step's output. It is decoded into the document only
// when a program next needs the document, so a stream that nothing reads
// stays a stream.
func (inv *Invocation) setOutput(id string, out *Output) {
	inv.outputs[id] = out
	inv.order = append(inv.order, id)
}

// Doc returns the invocation document:
// {request: {...}, traceId, steps: {id: output}, vars: {}}.
func (inv *Invocation) Doc() (map[string]any, error) { return inv.document(true) }

// docFor returns the document p runs over. The request part (its headers
// map, its decoded body) is built only for a program that may read it
// (expr.Program.ReadsRequest); one that does not cannot tell it is absent.
func (inv *Invocation) docFor(p *expr.Program) (map[string]any, error) {
	return inv.document(p.ReadsRequest())
}

func (inv *Invocation) document(withRequest bool) (map[string]any, error) {
	if inv.doc == nil {
		inv.steps = make(map[string]any, len(inv.outputs))
		if inv.vars == nil {
			inv.vars = map[string]any{}
		}
		inv.doc = map[string]any{
			"traceId": inv.Req.TraceID,
			"steps":   inv.steps,
			"vars":    inv.vars,
		}
	}
	if withRequest && inv.request == nil {
		if err := inv.buildRequest(); err != nil {
			return nil, err
		}
	}
	for ; inv.decoded < len(inv.order); inv.decoded++ {
		id := inv.order[inv.decoded]
		v, err := inv.outputs[id].Value()
		if err != nil {
			return nil, fmt.Errorf("step %q output: %w", id, err)
		}
		inv.steps[id] = v
	}
	return inv.doc, nil
}

func (inv *Invocation) buildRequest() error {
	body, err := inv.body.Value()
	if err != nil {
		return err
	}
	r := inv.Req
	headers := make(map[string]any, len(r.Header))
	for k, v := range r.Header {
		headers[k] = strings.Join(v, ", ")
	}
	query := make(map[string]any, len(r.Query))
	for k, v := range r.Query {
		query[k] = strings.Join(v, ",")
	}
	var user any
	if r.User != nil {
		user = r.User
	}
	inv.request = map[string]any{
		"method":   r.Method,
		"path":     r.Path,
		"headers":  headers,
		"query":    query,
		"body":     body,
		"apiCode":  r.APICode,
		"version":  r.Version,
		"appId":    r.AppID,
		"tenantId": r.TenantID,
		"clientId": r.ClientID,
		"ip":       r.IP,
		"user":     user,
	}
	inv.doc["request"] = inv.request
	return nil
}

// setBody replaces the request body (API-level request transform).
func (inv *Invocation) setBody(v any) error {
	inv.body = ValueOutput(v)
	if inv.request != nil {
		inv.request["body"] = v
	}
	return nil
}

// Body returns the current request body.
func (inv *Invocation) Body() *Output { return inv.body }

// Output returns the output of step id, or nil.
func (inv *Invocation) Output(id string) *Output { return inv.outputs[id] }

// close releases unread streams except keep.
func (inv *Invocation) close(keep *Output) {
	for _, o := range inv.outputs {
		if o != keep {
			o.Close()
		}
	}
}
