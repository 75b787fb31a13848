package expr

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

// render parses tmpl as a URL template and renders it with .v = v.
func render(t testing.TB, tmpl string, v any) (string, error) {
	t.Helper()
	tp, err := ParseURLTemplate(tmpl)
	if err != nil {
		t.Fatalf("%s: %v", tmpl, err)
	}
	return tp.Render(context.Background(), map[string]any{"v": v, "w": "."}, nil)
}

func TestURLTemplateValues(t *testing.T) {
	tests := []struct {
		tmpl string
		v    any
		want string // "": refused with ErrUnsafeValue
	}{
		// Path: escaped, never a dot-segment.
		{"http://up/items/${.v}/detail", "..", ""},
		{"http://up/items/${.v}/detail", ".", ""},
		{"http://up/items/${.v}", "..", ""},
		{"http://up/items/${.v}?q=1", "..", ""},
		{"http://up/items/${.v}#f", ".", ""},
		{"http://up/items/.${.v}/detail", ".", ""},
		{"http://up/items/%2e${.v}/detail", ".", ""},
		{"http://up/items/${.v}${.w}/detail", ".", ""},
		{"http://up/items/${.v}/detail", "%2E%2E", "http://up/items/%252E%252E/detail"},
		{"http://up/items/${.v}/detail", "../admin", "http://up/items/..%2Fadmin/detail"},
		{"http://up/items/${.v}/detail", "...", "http://up/items/.../detail"},
		{"http://up/items/${.v}/detail", "a..b", "http://up/items/a..b/detail"},
		{"http://up/items/${.v}/detail", "x@127.0.0.1:8081", "http://up/items/x@127.0.0.1:8081/detail"},
		{"http://up/items/${.v}/detail", "a?b#c", "http://up/items/a%3Fb%23c/detail"},
		{"http://up/items/${.v}/detail", "", "http://up/items//detail"},
		{"http://up/${.v}", "..", ""},
		{"http://up/${.v}", "127.0.0.1:8081", "http://up/127.0.0.1:8081"},
		// Query and fragment: QueryEscape; dots are harmless there.
		{"http://up/items?id=${.v}", "..", "http://up/items?id=.."},
		{"http://up/items?id=${.v}", "a&b=c /", "http://up/items?id=a%26b%3Dc+%2F"},
		{"http://up/items#${.v}", "..", "http://up/items#.."},
		// Authority: a host, an IP or host:port only.
		{"http://${.v}/x", "orders.internal", "http://orders.internal/x"},
		{"http://${.v}/x", "10.0.0.1:9001", "http://10.0.0.1:9001/x"},
		{"http://${.v}/x", "[::1]:9001", "http://[::1]:9001/x"},
		{"http://${.v}/x", "x@127.0.0.1:8081", ""},
		{"http://${.v}/x", "127.0.0.1:8081/admin?", ""},
		{"http://${.v}/x", "127.0.0.1%2f", ""},
		{"http://${.v}/x", "a b", ""},
		{"http://orders-${.v}.internal/x", "eu", "http://orders-eu.internal/x"},
		{"http://orders-${.v}.internal/x", "eu.evil.com#", ""},
		{"http${.v}://up/x", "s", "https://up/x"},
		{"http${.v}://up/x", "://evil/", ""},
		// A base URL at the start: inserted as it is, no dot-segment.
		{"${.v}/orders", "http://10.0.0.1:9001/api", "http://10.0.0.1:9001/api/orders"},
		{"${.v}/orders", "http://10.0.0.1:9001/api/..", ""},
		{"${.v}/orders", "http://10.0.0.1:9001/%2e%2E/x", ""},
		{"${.v}./orders", "http://10.0.0.1:9001/api/.", ""},
		{"${.v}/orders?x=..", "http://h/api", "http://h/api/orders?x=.."},
	}
	for _, tt := range tests {
		got, err := render(t, tt.tmpl, tt.v)
		if tt.want == "" {
			if !errors.Is(err, ErrUnsafeValue) {
				t.Errorf("%s with %q = %q, %v; want ErrUnsafeValue", tt.tmpl, tt.v, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s with %q = %q, %v; want %q", tt.tmpl, tt.v, got, err, tt.want)
		}
	}
}

func TestURLTemplateErrorNamesTheInterpolation(t *testing.T) {
	_, err := render(t, "http://up/items/${.v}/detail", "..")
	var ve *URLValueError
	if !errors.As(err, &ve) || ve.Src != ".v" || !strings.Contains(err.Error(), `".."`) {
		t.Fatalf("error %v does not name ${.v} and its value", err)
	}
}

func TestAuthorityTemplated(t *testing.T) {
	tests := []struct {
		tmpl string
		want bool
	}{
		{"http://up/items/${.v}", false},
		{"http://up/items?x=${.v}", false},
		{"http://up:9001/${.v}/${.w}", false},
		{"http://up", false},
		{"http://${.v}/x", true},
		{"http://${.v}", true},
		{"http://u:p@${.v}:80/x", true},
		{"http://up:${.v}/x", true},
		{"http://${.v}@up/x", true},
		{"http${.v}://up/x", true},
		{"${.v}/x", true},
		{"$${.v}/x", false},
	}
	for _, tt := range tests {
		tp, err := ParseURLTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.AuthorityTemplated(); got != tt.want {
			t.Errorf("AuthorityTemplated(%s) = %v, want %v", tt.tmpl, got, tt.want)
		}
	}
}

// FuzzURLTemplateValue holds for every value: it never changes the
// scheme, userinfo, host or port of a URL whose authority is literal, and
// never makes a dot-segment in its path.
func FuzzURLTemplateValue(f *testing.F) {
	for _, s := range []string{"..", ".", "%2e%2E", "x@127.0.0.1:8081", "a/b?c#d", "\\..\\", "", "..;/", "%", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, tmpl := range []string{"http://up:9001/items/${.v}/detail?q=${.v}", "http://up:9001/${.v}", "http://up:9001/a/.${.v}#${.v}"} {
			got, err := render(t, tmpl, v)
			if err != nil {
				if !errors.Is(err, ErrUnsafeValue) {
					t.Fatalf("%s with %q: %v", tmpl, v, err)
				}
				continue
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("%s with %q rendered %q, which does not parse: %v", tmpl, v, got, err)
			}
			if u.Scheme != "http" || u.User != nil || u.Host != "up:9001" {
				t.Fatalf("%s with %q rendered %q: scheme %q, user %v, host %q", tmpl, v, got, u.Scheme, u.User, u.Host)
			}
			for _, seg := range strings.Split(u.EscapedPath(), "/") {
				if dotSegment(seg) {
					t.Fatalf("%s with %q rendered %q: dot-segment in the path", tmpl, v, got)
				}
			}
		}
	})
}

func BenchmarkURLTemplateRender(b *testing.B) {
	tp, err := ParseURLTemplate("http://orders:9001/items/${.request.body.orderNo}/detail?trace=${.traceId}")
	if err != nil {
		b.Fatal(err)
	}
	d := doc()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Render(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
	}
}
