package store

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// stdRecordJSON is what the writer wrote before recordJSON: encoding/json's
// Encoder without HTML escaping, newline cut.
func stdRecordJSON(r *Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

var recordStrings = []string{
	"", "plain", `quote " back \ slash`, "<html> & 'x'", "ctl \x00\x01\x1f\x7f \b\f\n\r\t",
	"中文 é 😀", "bad \xff\xfe utf8 \xc3", "sep \u2028 \u2029 end", "\ufffd", "\xed\xa0\x80",
	`{"orderNo":"A-1","items":[1,2]}`,
}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	return recordStrings[rng.IntN(len(recordStrings))]
}

var recordFloats = []float64{0, math.Copysign(0, -1), 1, 1.5, 0.0001234, 1e-7, 1.234e-9, 123456.789, 1e20, 1e21, 1.5e300, -2.5e-8, 5e-324}

func randRecord(rng *rand.Rand) *Record {
	r := &Record{
		ID: randString(rng), TraceID: randString(rng), APICode: randString(rng), Version: "v1", AppID: randString(rng),
		TenantID: randString(rng), ClientIP: "127.0.0.1", Method: "POST", Path: randString(rng),
		RequestBody: randString(rng), ResponseBody: randString(rng), HTTPStatus: rng.IntN(600), Status: rng.IntN(4),
		DurationMs: recordFloats[rng.IntN(len(recordFloats))],
	}
	if rng.IntN(2) == 0 {
		r.ErrorCode, r.ErrorMessage = randString(rng), randString(rng)
	}
	switch rng.IntN(4) {
	case 0:
		r.StartedAt = time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC()
	case 1:
		r.StartedAt = time.Unix(rng.Int64N(4e9), 0).In(time.FixedZone("X", 5*3600+30*60))
	case 2:
		r.StartedAt = time.Date(2026, 1, 2, 3, 4, 5, 100, time.FixedZone("", -8*3600))
	}
	if rng.IntN(3) > 0 {
		r.RequestHeaders = map[string]string{}
		for range rng.IntN(6) {
			r.RequestHeaders[randString(rng)] = randString(rng)
		}
	}
	if rng.IntN(4) > 0 {
		r.StepResults = []StepRecord{}
		for range rng.IntN(4) {
			s := StepRecord{ID: randString(rng), Type: "http", Skipped: rng.IntN(3) == 0, Status: rng.IntN(3) * 200,
				ElapsedMs: recordFloats[rng.IntN(len(recordFloats))], Attempts: rng.IntN(3)}
			if rng.IntN(2) == 0 {
				s.Error = randString(rng)
			}
			switch rng.IntN(6) {
			case 0:
				s.Request = map[string]any{"method": "POST", "url": randString(rng), "body": randString(rng)}
			case 1:
				s.Request = randString(rng)
			case 2:
				s.Request = json.RawMessage(`[1, 2.50, {"a" : "<b>"}]`)
			case 3:
				s.Request = map[string]any{"status": 200, "n": nil, "f": 1.5}
			}
			switch rng.IntN(4) {
			case 0:
				s.Response = map[string]any{"status": rng.IntN(600), "body": randString(rng)}
			case 1:
				s.Response = map[string]any{"nested": map[string]any{"x": randString(rng)}, "ok": true}
			}
			r.StepResults = append(r.StepResults, s)
		}
	}
	switch rng.IntN(4) {
	case 0:
		r.Extra = map[string]any{"encrypted": true, "user": randString(rng)}
	case 1:
		r.Extra = map[string]any{}
	}
	switch rng.IntN(5) {
	case 0:
		r.Capture = &Capture{Query: randString(rng), Bytes: rng.IntN(70000)}
	case 1:
		r.Capture = &Capture{Skipped: randString(rng)}
	case 2:
		r.Capture = &Capture{}
	case 3:
		r.Capture = &Capture{Bytes: rng.IntN(3), Skipped: randString(rng)}
	}
	return r
}

// TestRecordJSONMatchesEncodingJSON: the writer's encoder gives the bytes
// encoding/json gave for every record, or declines (ok false) exactly where
// encoding/json fails, so stored records do not change.
func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	w := newRecordJSON()
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(r *Record) {
		t.Helper()
		want, err := stdRecordJSON(r)
		got, ok := w.encode(r)
		if err != nil {
			if ok {
				t.Fatalf("encoding/json fails (%v) but recordJSON wrote %s", err, got)
			}
			return
		}
		if !ok {
			// Declining is always safe (the writer falls back); it must
			// not be the common case.
			t.Fatalf("recordJSON declined a record encoding/json writes: %s", want)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	for range 5000 {
		check(randRecord(rng))
	}
	for _, f := range []float64{math.NaN(), math.Inf(1)} {
		r := randRecord(rng)
		r.DurationMs = f
		check(r)
	}
	r := randRecord(rng)
	r.StepResults = []StepRecord{{ID: "s", Response: map[string]any{"f": math.NaN()}}}
	check(r)
	r.StepResults = nil
	r.StartedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	check(r)
	r.StartedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))
	check(r)
}

// BenchmarkEncodeRecord: a portal record like the bench's full chain
// (small bodies, three steps), as the writer encodes it, and as
// encoding/json did.
func BenchmarkEncodeRecord(b *testing.B) {
	r := sample("trace-1", "bench.full", 200, time.Time{})
	r.StartedAt = time.Now()
	r.RequestHeaders = map[string]string{"Accept-Encoding": "gzip", "Content-Length": "108", "Content-Type": "application/json",
		"User-Agent": "databus-bench", "Zt-App-Id": "bench-app", "Zt-Nonce": "f0e1d2c3b4a59687", "Zt-Signature": "***", "Zt-Timestamp": "1767322800000"}
	r.RequestBody = `{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1}]}`
	r.ResponseBody = `{"lines":2,"orderNo":"A-1001","status":"accepted"}`
	r.StepResults = []StepRecord{
		{ID: "start", Type: "start", ElapsedMs: 0.01},
		{ID: "call", Type: "http", Status: 200, ElapsedMs: 1.25, Attempts: 1,
			Request:  map[string]any{"method": "POST", "url": "http://127.0.0.1:1/orders", "body": `{"orderNo":"A-1001"}`},
			Response: map[string]any{"status": 200, "body": `{"orderNo":"A-1001","status":"accepted"}`}},
		{ID: "end", Type: "end", ElapsedMs: 0.02},
	}
	b.Run("recordJSON", func(b *testing.B) {
		w := newRecordJSON()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			w.encode(r)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			buf.Reset()
			enc.Encode(r)
		}
	})
}

func FuzzJSONString(f *testing.F) {
	for _, s := range recordStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got, want := appendJSONString(nil, s), bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}
