package call

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/store"
)

func TestRecord(t *testing.T) {
	started := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := func() *Exchange {
		return &Exchange{
			TraceID: "t1", APICode: "a.b", Version: "v1", AppID: "shop", ClientIP: "192.0.2.1",
			Method: "POST", Path: "/api/a.b/v1",
			Header: http.Header{"Authorization": {"Bearer x"}, "X-Long": {strings.Repeat("h", 30)}},
			Body:   []byte(strings.Repeat("q", 30)),
			Status: 200, Message: MsgOK, Response: []byte(`{"ok":true}`),
			Steps:   []flow.StepResult{{ID: "s", Type: "script", Elapsed: 1500 * time.Microsecond, Response: strings.Repeat("r", 30)}},
			Started: started, Elapsed: 2 * time.Millisecond,
		}
	}
	for _, tc := range []struct {
		name  string
		edit  func(x *Exchange)
		check func(t *testing.T, r *store.Record)
	}{
		{"answered", func(x *Exchange) {}, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "" || r.ErrorMessage != "" || r.Status != store.StatusSuccess || r.DurationMs != 2 || r.Extra != nil {
				t.Errorf("record %+v", r)
			}
			if r.RequestHeaders["Authorization"] != "***" || r.RequestHeaders["X-Long"] != strings.Repeat("h", 30) {
				t.Errorf("headers %v: redacted, and not cut outside a 431", r.RequestHeaders)
			}
			if !strings.Contains(r.RequestBody, "truncated") || len(r.StepResults) != 1 || r.StepResults[0].ElapsedMs != 1.5 ||
				!strings.Contains(r.StepResults[0].Response.(string), "truncated") {
				t.Errorf("bodies are not cut at maxChars: %+v", r)
			}
		}},
		{"flow failed", func(x *Exchange) { x.Status, x.Message = 502, `step "s" failed` }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != ErrorFlow || r.ErrorMessage != `step "s" failed` || r.Status != store.StatusServerError {
				t.Errorf("record %+v", r)
			}
		}},
		{"refused", func(x *Exchange) { x.Status, x.Message, x.Reason = 429, "limited", "rate_limit" }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "rate_limit" || r.ErrorMessage != "limited" {
				t.Errorf("record %+v", r)
			}
		}},
		{"headers too large", func(x *Exchange) { x.Status, x.Reason = 431, "header" }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "header" || !strings.Contains(r.RequestHeaders["X-Long"], "truncated") {
				t.Errorf("record %+v", r)
			}
		}},
		{"streamed", func(x *Exchange) { x.Streamed, x.Extra = true, map[string]any{"user": "u"} }, func(t *testing.T, r *store.Record) {
			if r.ResponseBody != "(streamed)" || r.Extra["streamed"] != true || r.Extra["user"] != "u" {
				t.Errorf("record %+v", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := base()
			tc.edit(x)
			tc.check(t, Record(x, 10, []string{"authorization"}))
		})
	}
}

// oldTruncValue is truncValue before maps that fit were passed through:
// the reference for the JSON a step record must keep.
func oldTruncValue(v any, maxChars int) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return store.Truncate(x, maxChars)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok {
				out[k] = store.Truncate(s, maxChars)
			} else {
				out[k] = oldTruncValue(e, maxChars)
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

// TestStepValuesUncopied: a step's {status, body} that fits maxChars is
// recorded as it is, without a copy or a JSON round trip, and every value
// encodes to the same JSON as before.
func TestStepValuesUncopied(t *testing.T) {
	fits := map[string]any{"status": 200, "body": `{"id":"A-1"}`, "ok": true, "none": nil}
	results := []flow.StepResult{{ID: "call", Type: "http", Status: 200,
		Request:  map[string]any{"method": "POST", "url": "http://127.0.0.1:1/orders", "body": `{"no":"A-1"}`},
		Response: fits}}
	if n := testing.AllocsPerRun(100, func() { StepRecords(results, 4000) }); n > 1 {
		t.Errorf("StepRecords allocated %v times for values that fit; want 1 (the slice)", n)
	}
	for _, v := range []any{
		fits, "s", 12, 12.5, true, []any{1, "x"},
		map[string]any{"status": 123456, "body": "abcdef", "n": 1.5},
		map[string]any{"status": 200, "nested": map[string]any{"s": strings.Repeat("x", 20)}},
		map[string]any{"b": true, "i": -7, "s": strings.Repeat("y", 9)},
	} {
		for _, maxChars := range []int{-1, 0, 2, 3, 5, 8, 4000} {
			got, err1 := json.Marshal(truncValue(v, maxChars))
			want, err2 := json.Marshal(oldTruncValue(v, maxChars))
			if string(got) != string(want) || (err1 == nil) != (err2 == nil) {
				t.Errorf("%v at %d: %s, want %s", v, maxChars, got, want)
			}
		}
	}
}

func TestRecordCaptured(t *testing.T) {
	body := `{"orderNo":"` + strings.Repeat("n", 50) + `"}`
	stepBody := `{"id":"` + strings.Repeat("i", 60) + `"}`
	x := &Exchange{
		TraceID: "t1", APICode: "a.b", Version: "v1", Method: "POST", Path: "/api/a.b/v1",
		Query:  "a=1&signature=abc&b=%20x&sig%6eature=def",
		Header: http.Header{"Authorization": {"Bearer x"}, "Zt-Signature": {"f00d"}, "X-Visible": {"yes"}},
		Body:   []byte(body), Status: 200, Message: MsgOK, Response: []byte(`{"id":"` + strings.Repeat("r", 40) + `"}`),
		Steps: []flow.StepResult{
			{ID: "start", Type: "start"},
			{ID: "create", Type: "http", Status: 200,
				Request:  map[string]any{"method": "POST", "url": "http://127.0.0.1:1/o", "body": body},
				Response: map[string]any{"status": 200, "body": stepBody}},
		},
	}
	// redactHeaders without the signature header: a captured record masks it all the same.
	rec, result := RecordCaptured(x, 10, []string{"Authorization"}, 4096)
	if result != CaptureKept || !rec.Capture.Kept() {
		t.Fatalf("result %q, capture %+v", result, rec.Capture)
	}
	if rec.Capture.Query != "a=1&b=%20x" {
		t.Errorf("query %q: the signature parameter must be dropped, the rest kept as sent", rec.Capture.Query)
	}
	if rec.RequestBody != body || rec.ResponseBody != string(x.Response) {
		t.Errorf("bodies cut in a captured record: %q %q", rec.RequestBody, rec.ResponseBody)
	}
	resp := rec.StepResults[1].Response.(map[string]any)
	req := rec.StepResults[1].Request.(map[string]any)
	if resp["body"] != stepBody || req["body"] != body {
		t.Errorf("step values cut in a captured record: %+v", rec.StepResults[1])
	}
	if rec.RequestHeaders["Zt-Signature"] != "***" || rec.RequestHeaders["Authorization"] != "***" || rec.RequestHeaders["X-Visible"] != "yes" {
		t.Errorf("headers %v", rec.RequestHeaders)
	}
	if rec.Capture.Bytes < len(body)*2+len(stepBody) {
		t.Errorf("capture counts %d bytes", rec.Capture.Bytes)
	}
	b, _ := json.Marshal(rec)
	if strings.Contains(string(b), "f00d") || strings.Contains(string(b), "abc") || strings.Contains(string(b), "def") {
		t.Errorf("a signature entered the record: %s", b)
	}

	// Over budget: recorded as usual (cut at maxChars), marked.
	rec, result = RecordCaptured(x, 10, []string{"Authorization"}, 100)
	if result != CaptureOverBudget || rec.Capture == nil || rec.Capture.Kept() || !strings.Contains(rec.Capture.Skipped, "maxBytes") {
		t.Fatalf("over budget: result %q, capture %+v", result, rec.Capture)
	}
	if !strings.Contains(rec.RequestBody, "truncated") || rec.Capture.Query != "" {
		t.Errorf("over budget record keeps %q, query %q", rec.RequestBody, rec.Capture.Query)
	}

	x.Streamed = true
	rec, result = RecordCaptured(x, 10, nil, 4096)
	if result != CaptureStreamed || rec.Capture.Kept() || rec.ResponseBody != "(streamed)" {
		t.Fatalf("streamed: result %q, capture %+v", result, rec.Capture)
	}
}
