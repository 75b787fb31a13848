package store

import (
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Record is one portal request in the access log.
type Record struct {
	// ID is set by Append when empty: the hex of the record key (StartedAt's
	// unix nanos and a sequence), so ids sort lexicographically by time and
	// are unique. A non-empty ID must be one this package made.
	ID             string            `json:"id"`
	TraceID        string            `json:"traceId"`
	APICode        string            `json:"apiCode"`
	Version        string            `json:"version"`
	AppID          string            `json:"appId"`
	TenantID       string            `json:"tenantId"`
	ClientIP       string            `json:"clientIp"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	RequestHeaders map[string]string `json:"requestHeaders"` // flattened and redacted: see Redact
	RequestBody    string            `json:"requestBody"`    // see Truncate
	ResponseBody   string            `json:"responseBody"`   // see Truncate
	HTTPStatus     int               `json:"httpStatus"`
	Status         int               `json:"status"` // set by Append to StatusOf(HTTPStatus)
	ErrorCode      string            `json:"errorCode,omitempty"`
	ErrorMessage   string            `json:"errorMessage,omitempty"`
	StartedAt      time.Time         `json:"startedAt"` // set by Append to now when zero
	DurationMs     float64           `json:"durationMs"`
	StepResults    []StepRecord      `json:"stepResults"`
	Extra          map[string]any    `json:"extra,omitempty"`
	// Capture is set on a record sampled by storage.accessLog.capture.
	// Unless Capture.Skipped says why not, RequestBody, ResponseBody and
	// the steps' Request and Response are whole, not truncated.
	Capture *Capture `json:"capture,omitempty"`
}

// Capture is what a captured record keeps beyond the usual fields.
type Capture struct {
	Query   string `json:"query,omitempty"`   // the raw query, without a signature parameter
	Bytes   int    `json:"bytes,omitempty"`   // bytes kept whole: bodies, query, step values
	Skipped string `json:"skipped,omitempty"` // sampled but kept as usual, and why
}

// Kept reports whether c holds a whole capture.
func (c *Capture) Kept() bool { return c != nil && c.Skipped == "" }

// StepRecord is what one flow step did for the request.
type StepRecord struct {
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Skipped   bool    `json:"skipped,omitempty"`
	Request   any     `json:"request,omitempty"`
	Response  any     `json:"response,omitempty"`
	Status    int     `json:"status,omitempty"`
	ElapsedMs float64 `json:"elapsedMs"`
	Error     string  `json:"error,omitempty"`
	Attempts  int     `json:"attempts,omitempty"`
}

// Record.Status values.
const (
	StatusSuccess     = 0 // 2xx, 3xx
	StatusClientError = 1 // 4xx
	StatusServerError = 2 // 5xx
	StatusUnknown     = 3 // anything else, e.g. no response at all
)

// StatusOf classifies an HTTP status: 2xx/3xx → StatusSuccess,
// 4xx → StatusClientError, 5xx → StatusServerError, else StatusUnknown.
func StatusOf(httpStatus int) int {
	switch {
	case httpStatus >= 200 && httpStatus < 400:
		return StatusSuccess
	case httpStatus >= 400 && httpStatus < 500:
		return StatusClientError
	case httpStatus >= 500 && httpStatus < 600:
		return StatusServerError
	}
	return StatusUnknown
}

// Truncate keeps at most max characters (runes; it never splits a UTF-8
// sequence) of s and, when it cut, appends "…(truncated, N chars in all)".
// max 0 stores nothing (""); a negative max keeps s whole.
func Truncate(s string, max int) string {
	if max < 0 || len(s) <= max { // bytes >= runes: short strings fit
		return s
	}
	if max == 0 {
		return ""
	}
	n, cut := 0, -1
	for i := range s {
		if n == max {
			cut = i
		}
		n++
	}
	if cut < 0 { // at most max runes
		return s
	}
	return s[:cut] + "…(truncated, " + strconv.Itoa(n) + " chars in all)"
}

// Redact flattens headers (several values joined with ", ") and replaces
// the values of the headers named in redact (any case) with "***".
func Redact(h http.Header, redact []string) map[string]string {
	if h == nil {
		return nil
	}
	out := make(map[string]string, len(h))
	for name, vs := range h {
		masked := false
		for _, r := range redact {
			if strings.EqualFold(name, r) {
				masked = true
				break
			}
		}
		if masked {
			out[name] = "***"
		} else {
			out[name] = strings.Join(vs, ", ")
		}
	}
	return out
}

// key is a record's key in the accesslog bucket.
type key [keyLen]byte

const keyLen = 12

func makeKey(t time.Time, seq uint32) key {
	var k key
	ns := t.UnixNano()
	if ns < 0 { // before 1970 (or out of range): the start of time
		ns = 0
	}
	binary.BigEndian.PutUint64(k[:8], uint64(ns))
	binary.BigEndian.PutUint32(k[8:], seq)
	return k
}

// timeKey is the smallest key at or after t.
func timeKey(t time.Time) []byte {
	k := makeKey(t, 0)
	return k[:]
}

func (k key) String() string { return hex.EncodeToString(k[:]) }

func parseKey(id string) (key, bool) {
	var k key
	if len(id) != 2*keyLen {
		return k, false
	}
	if _, err := hex.Decode(k[:], []byte(id)); err != nil {
		return k, false
	}
	return k, true
}

// maxIndexed is the longest traceId or apiCode that gets an index entry;
// a longer one (a hostile client's trace header) is stored but not indexed,
// and queries for it scan. It keeps keys far below bbolt's 32 KiB limit.
const maxIndexed = 512

func indexable(s string) bool { return s != "" && len(s) <= maxIndexed }

// indexKey is value + 0x00 + record key.
func indexKey(value string, k []byte) []byte {
	b := make([]byte, 0, len(value)+1+keyLen)
	b = append(b, value...)
	b = append(b, 0)
	return append(b, k...)
}
