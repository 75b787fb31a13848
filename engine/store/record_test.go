package store

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"empty", "", 5, ""},
		{"shorter", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"one over", "abcdef", 5, "abcde…(truncated, 6 chars in all)"},
		{"zero stores nothing", "abc", 0, ""},
		{"zero of empty", "", 0, ""},
		{"negative keeps all", strings.Repeat("x", 10000), -1, strings.Repeat("x", 10000)},
		// 5 runes, 11 bytes: more bytes than max but not more characters.
		{"multibyte exact", "héllö", 5, "héllö"},
		{"multibyte cut", "héllö wörld", 4, "héll…(truncated, 11 chars in all)"},
		{"cut after multibyte", "日本語テキスト", 3, "日本語…(truncated, 7 chars in all)"},
		{"emoji", "👍👍👍", 2, "👍👍…(truncated, 3 chars in all)"},
		{"cut before multibyte", "ab日本", 2, "ab…(truncated, 4 chars in all)"},
		// Invalid bytes count as one character each and are never half-cut.
		{"invalid utf-8", "a\xffb\xfec", 3, "a\xffb…(truncated, 5 chars in all)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Truncate(tt.in, tt.max)
			if got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			if utf8.ValidString(tt.in) && !utf8.ValidString(got) {
				t.Fatalf("Truncate split a UTF-8 sequence: %q", got)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name   string
		in     http.Header
		redact []string
		want   map[string]string
	}{
		{"nil", nil, []string{"Authorization"}, nil},
		{"none redacted", http.Header{"Content-Type": {"application/json"}}, nil,
			map[string]string{"Content-Type": "application/json"}},
		{"joined values", http.Header{"Accept": {"a/b", "c/d"}}, nil,
			map[string]string{"Accept": "a/b, c/d"}},
		{"case-insensitive", http.Header{
			"Authorization": {"Bearer secret"},
			"Zt-Signature":  {"sig1", "sig2"},
			"X-Trace":       {"abc"},
		}, []string{"authorization", "ZT-SIGNATURE"},
			map[string]string{"Authorization": "***", "Zt-Signature": "***", "X-Trace": "abc"}},
		{"non-canonical key in header map", http.Header{"x-api-key": {"k"}}, []string{"X-Api-Key"},
			map[string]string{"x-api-key": "***"}},
		{"empty value masked too", http.Header{"Authorization": {""}}, []string{"Authorization"},
			map[string]string{"Authorization": "***"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.in, tt.redact); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Redact = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	for in, want := range map[int]int{
		0: StatusUnknown, 101: StatusUnknown, 200: StatusSuccess, 204: StatusSuccess,
		302: StatusSuccess, 399: StatusSuccess, 400: StatusClientError, 429: StatusClientError,
		499: StatusClientError, 500: StatusServerError, 504: StatusServerError, 600: StatusUnknown, -1: StatusUnknown,
	} {
		if got := StatusOf(in); got != want {
			t.Errorf("StatusOf(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestKeyOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	a, b, c := makeKey(t0, 0xffffffff), makeKey(t0.Add(time.Nanosecond), 0), makeKey(t0.Add(time.Nanosecond), 1)
	if !(a.String() < b.String() && b.String() < c.String()) {
		t.Fatalf("ids do not sort by time then sequence: %s %s %s", a, b, c)
	}
	if k, ok := parseKey(c.String()); !ok || k != c {
		t.Fatalf("parseKey(%s) = %v, %v", c, k, ok)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("g", 24), c.String() + "00"} {
		if _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) accepted", bad)
		}
	}
	if k := makeKey(time.Unix(-5, 0), 1); k.String()[:16] != "0000000000000000" {
		t.Errorf("a time before 1970 gives %s", k)
	}
}
