package store

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// recordJSON writes a Record's JSON without reflection: the bytes
// encoding/json's Encoder (SetEscapeHTML(false)) writes for it, without
// the newline. The writer encodes every record of a batch this way; the
// values only a step or a caller knows the type of (StepRecord.Request and
// Response, Extra) still go through encoding/json. ok is false for what
// encoding/json would refuse or write differently (a NaN duration, a year
// outside 0-9999, an unencodable value): the caller then uses
// encoding/json and its error handling.
type recordJSON struct {
	b    []byte
	vbuf bytes.Buffer
	venc *json.Encoder
	keys []string
}

func newRecordJSON() *recordJSON {
	w := &recordJSON{}
	w.venc = json.NewEncoder(&w.vbuf)
	w.venc.SetEscapeHTML(false)
	return w
}

// trim drops buffers that grew beyond max (a burst of huge records).
func (w *recordJSON) trim(max int) {
	if cap(w.b) > max {
		w.b = nil
	}
	if w.vbuf.Cap() > max {
		w.vbuf = bytes.Buffer{} // venc writes to &w.vbuf still
	}
}

func (w *recordJSON) encode(r *Record) (out []byte, ok bool) {
	b := w.b[:0]
	defer func() { w.b = b[:0] }()
	b = append(b, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"traceId":`...)
	b = appendJSONString(b, r.TraceID)
	b = append(b, `,"apiCode":`...)
	b = appendJSONString(b, r.APICode)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, r.Version)
	b = append(b, `,"appId":`...)
	b = appendJSONString(b, r.AppID)
	b = append(b, `,"tenantId":`...)
	b = appendJSONString(b, r.TenantID)
	b = append(b, `,"clientIp":`...)
	b = appendJSONString(b, r.ClientIP)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.Path)
	b = append(b, `,"requestHeaders":`...)
	b = w.appendHeaders(b, r.RequestHeaders)
	b = append(b, `,"requestBody":`...)
	b = appendJSONString(b, r.RequestBody)
	b = append(b, `,"responseBody":`...)
	b = appendJSONString(b, r.ResponseBody)
	b = append(b, `,"httpStatus":`...)
	b = strconv.AppendInt(b, int64(r.HTTPStatus), 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	if r.ErrorCode != "" {
		b = append(b, `,"errorCode":`...)
		b = appendJSONString(b, r.ErrorCode)
	}
	if r.ErrorMessage != "" {
		b = append(b, `,"errorMessage":`...)
		b = appendJSONString(b, r.ErrorMessage)
	}
	b = append(b, `,"startedAt":`...)
	// time.Time's MarshalJSON refuses these.
	if y := r.StartedAt.Year(); y < 0 || y > 9999 {
		return nil, false
	}
	if _, off := r.StartedAt.Zone(); off <= -24*3600 || off >= 24*3600 {
		return nil, false
	}
	b = r.StartedAt.AppendFormat(append(b, '"'), time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, `,"durationMs":`...)
	if b, ok = appendJSONFloat(b, r.DurationMs); !ok {
		return nil, false
	}
	b = append(b, `,"stepResults":`...)
	if r.StepResults == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.StepResults {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = w.appendStep(b, &r.StepResults[i]); !ok {
				return nil, false
			}
		}
		b = append(b, ']')
	}
	if len(r.Extra) > 0 {
		b = append(b, `,"extra":`...)
		if b, ok = w.appendValue(b, r.Extra); !ok {
			return nil, false
		}
	}
	if c := r.Capture; c != nil {
		b = append(b, `,"capture":{`...)
		sep := ""
		if c.Query != "" {
			b = append(b, `"query":`...)
			b = appendJSONString(b, c.Query)
			sep = ","
		}
		if c.Bytes != 0 {
			b = append(b, sep+`"bytes":`...)
			b = strconv.AppendInt(b, int64(c.Bytes), 10)
			sep = ","
		}
		if c.Skipped != "" {
			b = append(b, sep+`"skipped":`...)
			b = appendJSONString(b, c.Skipped)
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	return b, true
}

func (w *recordJSON) appendStep(b []byte, s *StepRecord) ([]byte, bool) {
	var ok bool
	b = append(b, `{"id":`...)
	b = appendJSONString(b, s.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, s.Type)
	if s.Skipped {
		b = append(b, `,"skipped":true`...)
	}
	if s.Request != nil {
		b = append(b, `,"request":`...)
		if b, ok = w.appendValue(b, s.Request); !ok {
			return nil, false
		}
	}
	if s.Response != nil {
		b = append(b, `,"response":`...)
		if b, ok = w.appendValue(b, s.Response); !ok {
			return nil, false
		}
	}
	if s.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(s.Status), 10)
	}
	b = append(b, `,"elapsedMs":`...)
	if b, ok = appendJSONFloat(b, s.ElapsedMs); !ok {
		return nil, false
	}
	if s.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, s.Error)
	}
	if s.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(s.Attempts), 10)
	}
	return append(b, '}'), true
}

// appendValue writes v as encoding/json does; a flat map (a step's request
// or response, the record's extra) without reflection.
func (w *recordJSON) appendValue(b []byte, v any) ([]byte, bool) {
	if m, ok := v.(map[string]any); ok && len(m) <= 8 {
		if b, ok := w.appendFlatMap(b, m); ok {
			return b, true
		}
	}
	w.vbuf.Reset()
	if err := w.venc.Encode(v); err != nil {
		return nil, false
	}
	return append(b, bytes.TrimSuffix(w.vbuf.Bytes(), []byte{'\n'})...), true
}

// appendFlatMap writes a map whose values are strings, ints, bools or nil; ok is
// false (and b must be discarded) for any other value.
func (w *recordJSON) appendFlatMap(b []byte, m map[string]any) ([]byte, bool) {
	return appendObject(w, b, m, func(b []byte, v any) ([]byte, bool) {
		switch x := v.(type) {
		case string:
			return appendJSONString(b, x), true
		case int:
			return strconv.AppendInt(b, int64(x), 10), true
		case bool:
			return strconv.AppendBool(b, x), true
		case nil:
			return append(b, "null"...), true
		}
		return nil, false
	})
}

func (w *recordJSON) appendHeaders(b []byte, h map[string]string) []byte {
	if h == nil {
		return append(b, "null"...)
	}
	b, _ = appendObject(w, b, h, func(b []byte, v string) ([]byte, bool) { return appendJSONString(b, v), true })
	return b
}

// appendObject writes m as a JSON object with its keys sorted (as
// encoding/json does), each value by val; ok is false when val refuses one.
func appendObject[V any](w *recordJSON, b []byte, m map[string]V, val func([]byte, V) ([]byte, bool)) ([]byte, bool) {
	keys := w.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.keys = keys
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var ok bool
		if b, ok = val(b, m[k]); !ok {
			return nil, false
		}
	}
	return append(b, '}'), true
}

// appendJSONFloat is encoding/json's float64 format; ok is false for NaN
// and infinities, which it refuses.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding without HTML
// escaping: control characters, quote and backslash escaped, invalid
// UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
