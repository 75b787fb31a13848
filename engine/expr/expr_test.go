package expr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func doc() map[string]any {
	return map[string]any{
		"request": map[string]any{
			"body":  map[string]any{"orderNo": "A-1", "qty": 3, "tags": []any{"x", "y"}},
			"query": map[string]any{"page": "2"},
		},
		"traceId": "t-123",
		"steps":   map[string]any{"price": map[string]any{"total": 12.5}},
	}
}

func TestCompileAndRun(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{".request.body.orderNo", "A-1"},
		{".steps.price.total * 2", 25.0},
		{"{no: .request.body.orderNo, n: (.request.body.tags | length)}", map[string]any{"no": "A-1", "n": 2}},
		{".missing", nil},
	}
	for _, tt := range tests {
		p, err := Compile(tt.src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.src, err)
		}
		got, err := p.Run(context.Background(), doc(), nil)
		if err != nil {
			t.Fatalf("Run(%q): %v", tt.src, err)
		}
		if !equalJSON(got, tt.want) {
			t.Errorf("Run(%q) = %#v, want %#v", tt.src, got, tt.want)
		}
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalJSON(x[k], y[k]) {
				return false
			}
		}
		return true
	case int:
		switch y := b.(type) {
		case int:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	}
	return a == b
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		src     string
		offset  int // -1: any
		message string
	}{
		{".a | ", -1, "syntax error"},
		{"{a: }", 4, "syntax error"},
		{"nosuchfn(1)", -1, "nosuchfn"},
		{"   ", 0, "empty program"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.src)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Compile(%q) error = %v, want *Error", tt.src, err)
		}
		if tt.offset >= 0 && e.Offset != tt.offset {
			t.Errorf("Compile(%q) offset = %d, want %d", tt.src, e.Offset, tt.offset)
		}
		if !strings.Contains(e.Error(), tt.message) {
			t.Errorf("Compile(%q) = %q, want it to mention %q", tt.src, e.Error(), tt.message)
		}
	}
}

func TestEnvironmentIsHidden(t *testing.T) {
	t.Setenv("DATABUS_TEST_SECRET", "s3cret")
	for _, src := range []string{"$ENV.DATABUS_TEST_SECRET", "env.DATABUS_TEST_SECRET"} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Run(context.Background(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			t.Errorf("%s = %v: the process environment must not be visible", src, got)
		}
	}
}

func TestRunIsCancelled(t *testing.T) {
	p, err := Compile("def f: f; f")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Run(ctx, nil, nil); err == nil {
		t.Fatal("an endless program must stop with an error when its context ends")
	}
}

func TestEmptyOutput(t *testing.T) {
	p, _ := Compile("empty")
	if _, err := p.Run(context.Background(), nil, nil); !errors.Is(err, ErrNoOutput) {
		t.Fatalf("err = %v, want ErrNoOutput", err)
	}
}

func TestTruthy(t *testing.T) {
	for v, want := range map[any]bool{nil: false, false: false, true: true, 0: true, "": true} {
		if Truthy(v) != want {
			t.Errorf("Truthy(%#v) = %v", v, !want)
		}
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		in, want string
		literal  bool
	}{
		{"http://orders/${.request.body.orderNo}", "http://orders/A-1", false},
		{"plain text", "plain text", true},
		{"${.request.body.qty}x${.steps.price.total}", "3x12.5", false},
		{"${.missing}|", "|", false},
		{"${.request.body.tags}", `["x","y"]`, false},
		{"${ {a: 1} | .a }", "1", false},
		{`${"}" + .traceId}`, "}t-123", false},
		{`${"a\("b" + "}")c"}`, "ab}c", false},
		{"cost: $${not.jq}", "cost: ${not.jq}", true},
		{"$", "$", true},
	}
	for _, tt := range tests {
		tp, err := ParseTemplate(tt.in)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.in, err)
		}
		if tp.IsLiteral() != tt.literal {
			t.Errorf("IsLiteral(%q) = %v", tt.in, !tt.literal)
		}
		got, err := tp.Render(context.Background(), doc(), nil)
		if err != nil {
			t.Fatalf("Render(%q): %v", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	tests := []struct {
		in      string
		offset  int
		message string
	}{
		{"http://x/${.a", 9, "unclosed ${"},
		{"a${.a | }b", 8, "syntax error"},
		{"${nosuch(1)}", 2, "nosuch"},
		{`${"abc}`, 2, "unterminated string"},
	}
	for _, tt := range tests {
		_, err := ParseTemplate(tt.in)
		var te *TemplateError
		if !errors.As(err, &te) {
			t.Fatalf("ParseTemplate(%q) = %v, want *TemplateError", tt.in, err)
		}
		if te.Offset != tt.offset || !strings.Contains(te.Msg, tt.message) {
			t.Errorf("ParseTemplate(%q) = offset %d %q, want offset %d and %q", tt.in, te.Offset, te.Msg, tt.offset, tt.message)
		}
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"http://x/${.a}", "${", "$${}", `${"}"}`, `${"\(1)"}`, "${.a | {b:1}}", "}${}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTemplate(s)
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not a *TemplateError", err)
			}
			if te.Offset < 0 || te.Offset > len(s) {
				t.Fatalf("offset %d outside the template of %d bytes", te.Offset, len(s))
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _ = tp.Render(ctx, doc(), nil)
		// The same text as a URL: positions are followed without panics.
		if up, err := ParseURLTemplate(s); err == nil {
			_ = up.AuthorityTemplated()
			_, _ = up.Render(ctx, doc(), nil)
		}
	})
}

func BenchmarkTemplateRender(b *testing.B) {
	tp, err := ParseTemplate("http://orders/${.request.body.orderNo}?trace=${.traceId}")
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

func TestVariables(t *testing.T) {
	p, err := Compile(`{id: .body.id, no: $request.body.orderNo, total: $steps.price.total, trace: $traceId}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Run(context.Background(), map[string]any{"body": map[string]any{"id": "x"}}, doc())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "x", "no": "A-1", "total": 12.5, "trace": "t-123"}
	if !equalJSON(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestURLTemplateEscapes(t *testing.T) {
	d := map[string]any{
		"base": "http://10.0.0.1:9001/api",
		"id":   "../admin?x=1#frag",
		"q":    "a&b=c d",
	}
	tests := []struct{ in, want string }{
		{"http://orders/${.id}", "http://orders/..%2Fadmin%3Fx=1%23frag"},
		{"http://orders/${.id}?q=${.q}", "http://orders/..%2Fadmin%3Fx=1%23frag?q=a%26b%3Dc+d"},
		{"${.base}/orders", "http://10.0.0.1:9001/api/orders"},
		{"http://orders/list?q=${.q}&page=1", "http://orders/list?q=a%26b%3Dc+d&page=1"},
	}
	for _, tt := range tests {
		tp, err := ParseURLTemplate(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tp.Render(context.Background(), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s = %s, want %s", tt.in, got, tt.want)
		}
	}
}
