package flow

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestOutputJSON(t *testing.T) {
	tests := []struct {
		name string
		out  *Output
		want string
	}{
		{"nil output", nil, `null`},
		{"raw JSON kept", RawOutput([]byte(" {\"b\":1,\"a\":1.50}\n"), "application/json"), `{"b":1,"a":1.50}`},
		{"raw text", RawOutput([]byte("a \"b\" <c>"), "text/plain"), `"a \"b\" <c>"`},
		{"raw empty", RawOutput(nil, ""), `null`},
		{"value", ValueOutput(map[string]any{"b": 1, "a": "<x>"}), `{"a":"<x>","b":1}`},
		{"value string that looks like JSON", ValueOutput(`{"a":1}`), `"{\"a\":1}"`},
		{"value nil", ValueOutput(nil), `null`},
		{"value json.Number", ValueOutput(json.Number("12345678901234567890")), `12345678901234567890`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.out.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON() = %s, want %s", got, tt.want)
			}
		})
	}
}

// Decoding raw bytes for a program does not change what JSON() returns.
func TestOutputJSONAfterValue(t *testing.T) {
	raw := `{"z":[3,1],"a":12345678901234567890,"x":1.0}`
	o := RawOutput([]byte(raw), "application/json")
	v, err := o.Value()
	if err != nil {
		t.Fatal(err)
	}
	if n := v.(map[string]any)["a"]; n != json.Number("12345678901234567890") {
		t.Errorf("big integer decoded as %T %v", n, n)
	}
	got, _ := o.JSON()
	if string(got) != raw {
		t.Errorf("JSON() after Value() = %s, want %s", got, raw)
	}
}

func TestOutputStream(t *testing.T) {
	rc := &trackingReader{Reader: strings.NewReader(`{"a":1}`)}
	o := &Output{stream: rc, contentType: "application/json", limit: 100}
	s, ct := o.Stream()
	if s == nil || ct != "application/json" {
		t.Fatalf("Stream() = %v, %q", s, ct)
	}
	v, err := o.Value()
	if err != nil || !reflect.DeepEqual(v, map[string]any{"a": json.Number("1")}) {
		t.Fatalf("Value() = %v, %v", v, err)
	}
	if !rc.closed {
		t.Errorf("a drained stream was not closed")
	}
	if s, _ := o.Stream(); s != nil {
		t.Errorf("Stream() after Value() is not nil")
	}
	if b, _ := o.JSON(); string(b) != `{"a":1}` {
		t.Errorf("JSON() = %s", b)
	}

	rc = &trackingReader{Reader: strings.NewReader(strings.Repeat("x", 101))}
	o = &Output{stream: rc, limit: 100}
	if _, err := o.Value(); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Errorf("oversized stream: %v", err)
	}
	if !rc.closed {
		t.Errorf("an oversized stream was not closed")
	}

	rc = &trackingReader{Reader: strings.NewReader("x")}
	o = &Output{stream: rc}
	o.Close()
	o.Close()
	if !rc.closed {
		t.Errorf("Close did not close the stream")
	}
	var nilOut *Output
	nilOut.Close()
	if s, _ := nilOut.Stream(); s != nil {
		t.Errorf("nil output has a stream")
	}
}

type trackingReader struct {
	io.Reader
	closed bool
}

func (r *trackingReader) Close() error { r.closed = true; return nil }

func TestFieldName(t *testing.T) {
	for ptr, want := range map[string]string{
		"":                  "",
		"/orderNo":          "orderNo",
		"/items/0/qty":      "items[0].qty",
		"/0":                "[0]",
		"/a~1b/c~0d":        "a/b.c~d",
		"/matrix/1/2/value": "matrix[1][2].value",
	} {
		if got := fieldName(ptr); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", ptr, got, want)
		}
	}
}

// FuzzOutputJSON: whatever bytes an upstream answers, JSON() gives valid
// JSON, the same value Value() gives, and never panics.
func FuzzOutputJSON(f *testing.F) {
	for _, s := range []string{
		``, ` `, `null`, `{"a":1}`, `[1,2`, `12345678901234567890`, `1e999`, `"\ud800"`,
		"\xff\xfe", "text <b>", "\u00a01", "{\"a\":1}\u00a0", " \t\r\n{} ", `{"a":1}{"b":2}`, "\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(o *Output, what string) {
			b, err := o.JSON()
			if err != nil {
				t.Fatalf("%s: JSON() error %v for %q", what, err, data)
			}
			if !json.Valid(b) {
				t.Fatalf("%s: JSON() = %q is not valid JSON for %q", what, b, data)
			}
			if json.Valid(data) && !bytes.Equal(b, bytes.TrimSpace(data)) {
				t.Fatalf("%s: valid JSON %q re-encoded as %q", what, data, b)
			}
			// JSON() and Value() describe the same value.
			v, err := o.Value()
			if err != nil {
				t.Fatal(err)
			}
			want, err := marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(b, want) {
				t.Fatalf("%s: JSON() = %q but Value() marshals to %q for %q", what, b, want, data)
			}
		}
		check(RawOutput(bytes.Clone(data), "application/octet-stream"), "fresh")
		o := RawOutput(bytes.Clone(data), "")
		o.Value()
		check(o, "decoded")
		check(&Output{stream: io.NopCloser(bytes.NewReader(data)), limit: int64(len(data))}, "stream")
	})
}

func sameJSON(a, b []byte) bool {
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	var va, vb any
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// TestRequestPartBuiltOnlyWhenRead: a flow whose programs read only the
// steps never builds the document's request part (its headers map, its
// decoded body); a program that reads it sees it whole, the request
// transform's body included, even when an earlier program ran without it.
func TestRequestPartBuiltOnlyWhenRead(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"ORD-1","n":12345678901234567890}`)
	})
	stepsOnly := compileFlow(t, testEnv(t), `
transforms:
  response: '{id: .steps.call.id, n: .steps.call.n}'
steps:
  - {id: start, type: start}
  - {id: call, type: http, http: {method: POST, url: '{{up}}/orders'}}
  - {id: end, type: end}
`, up.URL)
	res := stepsOnly.Run(context.Background(), jsonReq(`{"orderNo":"A-1"}`))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got, _ := res.Output.JSON(); string(got) != `{"id":"ORD-1","n":12345678901234567890}` {
		t.Errorf("output %s", got)
	}
	if _, built := res.Inv.doc["request"]; built {
		t.Errorf("request part built for a program that never reads it")
	}
	res.Close()

	both := compileFlow(t, testEnv(t), `
transforms:
  request: '.steps | {orderNo: "B-2"}'
  response: '{id: .steps.call.id, no: .request.body.orderNo, ct: .request.headers["Content-Type"], t: .traceId}'
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http: {method: POST, url: '{{up}}/orders'}
    when: '.steps | length == 0'
  - {id: end, type: end}
`, up.URL)
	res = both.Run(context.Background(), jsonReq(`{"orderNo":"A-1"}`))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	defer res.Close()
	if got, _ := res.Output.JSON(); string(got) != `{"ct":"application/json","id":"ORD-1","no":"B-2","t":"trace-1"}` {
		t.Errorf("output %s", got)
	}
}
