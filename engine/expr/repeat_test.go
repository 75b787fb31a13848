package expr

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/itchyny/gojq"
)

// Every `*` of a program still multiplies as jq does, `*=` included, and
// in the same order of outputs; only a string repeated past
// MaxRepeatBytes is refused, before anything is built.
func TestMultiplyAsJQ(t *testing.T) {
	for _, src := range []string{
		`3 * 4`, `1.5 * 2`, `9007199254740993 * 1`, `[(1,2) * (3,4)]`, `"ab" * 3`, `3 * "ab"`, `"ab" * 0`, `"ab" * 0.5`, `"ab" * -1`,
		`{a: {b: 1}} * {a: {c: 2}}`, `null * 2`, `.a *= 2`, `.xs[] *= 10`, `.a *= (.a, 3)`, `[.xs[] * .a]`,
		`def f: . * 2; [.xs[] | f]`, `.a * .a * .a`, `try ("x" * {}) catch "error"`, `.s * 2 | length`,
		`9223372036854775807 * 2`, `-9223372036854775808 * -1`, `5 * -1`, `0 * 7`, `7 * 0`, `2 * 0.25`, `0.5 * 3`, `1e308 * 10`,
	} {
		input := map[string]any{"a": 3, "xs": []any{1, 2}, "s": "xy"}
		want := runGojq(t, src, input)
		p, err := Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var got []any
		iter := p.code.Run(input, nil, nil, nil, nil) // the four Variables
		for {
			v, ok := iter.Next()
			if !ok {
				break
			}
			if e, ok := v.(error); ok {
				v = "error: " + e.Error()
			}
			got = append(got, v)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("%s: %s, gojq gives %s", src, gj, wj)
		}
	}
}

func runGojq(t *testing.T, src string, input any) []any {
	t.Helper()
	q, err := gojq.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gojq.Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	iter := c.Run(input)
	for {
		v, ok := iter.Next()
		if !ok {
			return out
		}
		if e, ok := v.(error); ok {
			v = "error: " + e.Error()
		}
		out = append(out, v)
	}
}

// A string repeated into gigabytes is refused with an error the program
// can catch, without the allocation: one builtin call is more than the
// heap guard can interrupt.
func TestRepeatBound(t *testing.T) {
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, src := range []string{`"x" * 2000000000`, `2000000000 * "xy"`, `{a: "x"} | .a *= 1e9`, `"x" * 1e300`} {
		p, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(context.Background(), nil, nil)
		if err == nil || !strings.Contains(err.Error(), "string repetition too large") {
			t.Errorf("%s: %v, want the repetition refused", src, err)
		}
	}
	p, _ := Compile(`try ("x" * 2000000000) catch "caught"`)
	if v, err := p.Run(context.Background(), nil, nil); err != nil || v != "caught" {
		t.Errorf("try/catch: %v %v", v, err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > MaxRepeatBytes {
		t.Errorf("refusing allocated %d bytes", grew)
	}
	p, _ = Compile(`"ab" * 1000 | length`)
	if v, err := p.Run(context.Background(), nil, nil); err != nil || v != 2000 {
		t.Errorf("a small repetition: %v %v", v, err)
	}
}

// BenchmarkMultiply: what the guarded `*` costs against gojq's own
// (the sample's order.quote kind of arithmetic).
func BenchmarkMultiply(b *testing.B) {
	const src = `[.items[] | .qty * .price] | add`
	input := map[string]any{"items": []any{map[string]any{"qty": 2, "price": 12.5}, map[string]any{"qty": 1, "price": 99.9}}}
	b.Run("guarded", func(b *testing.B) {
		p, _ := Compile(src)
		for b.Loop() {
			p.code.Run(input, nil, nil, nil, nil).Next()
		}
	})
	b.Run("gojq", func(b *testing.B) {
		q, _ := gojq.Parse(src)
		c, _ := gojq.Compile(q)
		for b.Loop() {
			c.Run(input).Next()
		}
	})
}
