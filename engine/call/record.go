package call

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/store"
)

// ErrorFlow is the access log's errorCode of an answer of 400 or more that
// no refusal explains: the flow failed.
const ErrorFlow = "flow"

// Exchange is one call and its answer, as the access log records it.
type Exchange struct {
	TraceID  string
	APICode  string // "" when the request matched no API
	Version  string
	AppID    string
	TenantID string
	ClientIP string // "" when unknown
	Method   string
	Path     string
	Query    string // the raw query; only a captured record keeps it
	Header   http.Header
	Body     []byte // the request body, decrypted

	Status   int
	Message  string
	Reason   string // why the call was refused; "" when it was not
	Response []byte // the envelope's response, before any encryption
	Streamed bool   // the response was passed through, not kept

	// Steps are the chain's decisions (hooks, rate limit), then the flow's
	// step results.
	Steps   []flow.StepResult
	Started time.Time
	Elapsed time.Duration
	Extra   map[string]any // what only this kind of call knows; may be nil
}

// Record is x as an access-log record: headers in redact masked, bodies
// and step values cut at maxChars, errorCode the refusal's reason or
// ErrorFlow.
func Record(x *Exchange, maxChars int, redact []string) *store.Record {
	headers := store.Redact(x.Header, redact)
	if x.Status == http.StatusRequestHeaderFieldsTooLarge {
		// The headers are what was too large: keep the record bounded.
		for k, v := range headers {
			headers[k] = store.Truncate(v, maxChars)
		}
	}
	rec := &store.Record{
		TraceID:        x.TraceID,
		APICode:        x.APICode,
		Version:        x.Version,
		AppID:          x.AppID,
		TenantID:       x.TenantID,
		ClientIP:       x.ClientIP,
		Method:         x.Method,
		Path:           x.Path,
		RequestHeaders: headers,
		RequestBody:    store.Truncate(string(x.Body), maxChars),
		ResponseBody:   store.Truncate(string(x.Response), maxChars),
		HTTPStatus:     x.Status,
		Status:         store.StatusOf(x.Status),
		ErrorCode:      x.Reason,
		StartedAt:      x.Started,
		DurationMs:     Millis(x.Elapsed),
		StepResults:    StepRecords(x.Steps, maxChars),
		Extra:          x.Extra,
	}
	if x.Status >= 400 {
		rec.ErrorMessage = x.Message
		if rec.ErrorCode == "" {
			rec.ErrorCode = ErrorFlow
		}
	}
	if x.Streamed {
		rec.ResponseBody = "(streamed)"
		if rec.Extra == nil {
			rec.Extra = map[string]any{}
		}
		rec.Extra["streamed"] = true
	}
	return rec
}

// StepRecords turns step results into access-log records, their bodies
// truncated to maxChars.
func StepRecords(results []flow.StepResult, maxChars int) []store.StepRecord {
	out := make([]store.StepRecord, 0, len(results))
	for _, r := range results {
		out = append(out, store.StepRecord{
			ID: r.ID, Type: r.Type, Skipped: r.Skipped, Status: r.Status, Error: r.Error, Attempts: r.Attempts,
			Request: truncValue(r.Request, maxChars), Response: truncValue(r.Response, maxChars),
			ElapsedMs: Millis(r.Elapsed),
		})
	}
	return out
}

// truncValue bounds what a step recorded: strings directly, the string
// fields of a map, anything else through its JSON form. A map none of
// whose fields it would change is returned as it is, not copied (a step's
// {status, body} is the common case): the flow is done with it.
func truncValue(v any, maxChars int) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return store.Truncate(x, maxChars)
	case map[string]any:
		if keeps(x, maxChars) {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok {
				out[k] = store.Truncate(s, maxChars)
			} else {
				out[k] = truncValue(e, maxChars)
			}
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	if maxChars >= 0 && len(b) > maxChars {
		return store.Truncate(string(b), maxChars)
	}
	return json.RawMessage(b)
}

// keeps reports whether truncValue would leave every field of m as it is
// (encoded, the same JSON): nil, strings that fit, and ints and bools whose
// JSON fits.
func keeps(m map[string]any, maxChars int) bool {
	for _, e := range m {
		var n int
		switch x := e.(type) {
		case nil:
			continue
		case string:
			n = len(x)
		case int:
			var buf [24]byte
			n = len(strconv.AppendInt(buf[:0], int64(x), 10))
		case bool:
			n = len(strconv.FormatBool(x))
		default:
			return false
		}
		if maxChars >= 0 && n > maxChars {
			return false
		}
	}
	return true
}

// Captured is how a sampled record was kept: CaptureKept (whole),
// CaptureOverBudget or CaptureStreamed (recorded as usual, marked). They are
// the values of databus_accesslog_captured_total's result label.
const (
	CaptureKept       = "kept"
	CaptureOverBudget = "over_budget"
	CaptureStreamed   = "streamed"
)

// RecordCaptured is x as a captured access-log record
// (storage.accessLog.capture): the request body, the query, the response
// and each step's request and response whole, as long as together they
// fit maxBytes. Headers are redacted as in Record, and the signature
// header always; the query loses its signature parameter. A request over
// maxBytes, or whose response was streamed, is recorded as Record does,
// its Capture saying why. result is one of the Capture* values.
func RecordCaptured(x *Exchange, maxChars int, redact []string, maxBytes int) (rec *store.Record, result string) {
	if x.Streamed {
		rec = Record(x, maxChars, redact)
		rec.Capture = &store.Capture{Skipped: "the response was streamed, not kept"}
		return rec, CaptureStreamed
	}
	query := withoutSignature(x.Query)
	n := len(x.Body) + len(x.Response) + len(query)
	for i := range x.Steps {
		if n > maxBytes {
			break
		}
		n += valueSize(x.Steps[i].Request) + valueSize(x.Steps[i].Response)
	}
	if n > maxBytes {
		rec = Record(x, maxChars, redact)
		rec.Capture = &store.Capture{Skipped: fmt.Sprintf("over budget: more than %d bytes (storage.accessLog.capture.maxBytes)", maxBytes)}
		return rec, CaptureOverBudget
	}
	r := make([]string, 0, len(redact)+1)
	r = append(append(r, redact...), security.HeaderSignature)
	rec = Record(x, -1, r)
	rec.Capture = &store.Capture{Query: query, Bytes: n}
	return rec, CaptureKept
}

// withoutSignature drops a "signature" parameter (which the signature
// itself skips) from a raw query, keeping the rest byte for byte.
func withoutSignature(raw string) string {
	if !strings.Contains(raw, "signature") {
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, _ := url.QueryUnescape(k); uk == "signature" || k == "signature" {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// valueSize is about the bytes v takes in a record: strings by length,
// the string fields of a map directly, anything else through its JSON.
func valueSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case string:
		return len(x)
	case map[string]any:
		n := 0
		for k, e := range x {
			n += len(k) + valueSize(e)
		}
		return n
	}
	b, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(b)
}
