package flow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what decodeBody did before decodeJSON: json.Valid, then a
// Decoder with UseNumber.
func stdDecode(b []byte) (any, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

var decodeCases = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	` {"x" : [ 1 , 2 ] } ` + "\n\t\r",
	`12345678901234567890123456789`, `-0`, `0.5e-10`, `1E+2`, `-12.50`, `1e400`,
	`{"big":18446744073709551616,"f":1.0,"g":1.10,"h":-0.0}`,
	`"\u00e9\u4e2d\ud83d\ude00"`, `"\ud83d"`, `"\ude00\ud83d"`, `"\ud83dx"`, `"\ud83d\u0041"`,
	`"\ud83d\ud83d\ude00"`, `"a\/b\\c\"d\b\f\n\r\t"`, `"<>&\u003c\u2028"`,
	"\"\xff\xfeok\xe4\xb8\"", "\"中文\xc3\"", "\"\xed\xa0\x80\"", `"\uFFFD"`, "\"\xef\xbf\xbd\"",
	`{"a":1,"a":2}`, `[]`, `{}`, `[{}]`, `""`, `"x"`,
	// Not JSON: kept as text by decodeBody.
	`{"a":1`, `[1,]`, `{"a":1,}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`, `"\x"`, `"\u12"`,
	"\"a\nb\"", `{"a" 1}`, `{1:2}`, `[1 2]`, `1 2`, `{}x`, "\xef\xbb\xbf{}", `NaN`, `"abc`, `'a'`,
	`[` + strings.Repeat(`[`, 9998) + strings.Repeat(`]`, 9999),  // depth 10000: valid
	`[` + strings.Repeat(`[`, 9999) + strings.Repeat(`]`, 10000), // depth 10001: not
	strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000),
	strings.Repeat(`{"a":`, 10001) + `1` + strings.Repeat(`}`, 10001),
}

// TestDecodeJSONMatchesEncodingJSON: decodeJSON gives what encoding/json
// gives, value for value, and rejects what json.Valid rejects.
func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	for _, c := range decodeCases {
		checkDecode(t, []byte(c))
	}
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	want, wantOK := stdDecode(b)
	got, gotOK := decodeJSON(b)
	if gotOK != wantOK || !reflect.DeepEqual(got, want) {
		name := string(b)
		if len(name) > 60 {
			name = name[:60] + "..."
		}
		t.Fatalf("%q: decodeJSON = %#v, %v; encoding/json = %#v, %v", name, got, gotOK, want, wantOK)
	}
}

// TestDecodeBodyRoundTrip: what a program sees of a body, encoded again,
// is what encoding/json gave before (big integers and number spellings kept).
func TestDecodeBodyRoundTrip(t *testing.T) {
	in := `{"n":123456789012345678901234567890,"f":1.50,"e":1e+2,"s":"<a&b>\u2028\ud83d\ude00","bad":"` + "\xff" + `"}`
	v := decodeBody([]byte(in))
	got, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bad":"` + "\ufffd" + `","e":1e+2,"f":1.50,"n":123456789012345678901234567890,"s":"<a&b>\u2028😀"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, c := range decodeCases {
		if len(c) < 1000 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

func BenchmarkDecodeBody(b *testing.B) {
	body := []byte(`{"orderNo":"A-1001","status":"accepted","createdAt":"2026-01-02T03:04:05Z",` +
		`"items":[{"sku":"SKU-1","qty":2,"price":12.5},{"sku":"SKU-2","qty":1,"price":99.9}],"total":124.9,"note":"中文"}`)
	b.Run("decodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			decodeJSON(body)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			stdDecode(body)
		}
	})
}
