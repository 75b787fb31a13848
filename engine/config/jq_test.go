package config

import (
	"strings"
	"testing"
)

// TestJQWarnings: programs that cannot finish within the jq budget load
// (the budget stops them at run time) with a warning at the program.
func TestJQWarnings(t *testing.T) {
	dir, rel := withFixture(t, "good", "api-jq-unbounded.good.yaml")
	_, diags := mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("want no errors, got:\n%s", dump(diags))
	}
	want := []struct {
		line int
		path string
		msg  string
	}{
		{9, "transforms.response", "def f calls itself on every path"},
		{14, "steps[1].when", "range(1e9) produces 1000000000 values"},
		{16, "steps[1].http.url", "${def f: f; f}: def f calls itself on every path"},
	}
	var got []Diagnostic
	for _, d := range diags {
		if d.File == rel {
			got = append(got, d)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("want %d warnings, got:\n%s", len(want), dump(got))
	}
	for i, w := range want {
		d := got[i]
		if d.Severity != SevWarning || d.Line != w.line || d.Path != w.path || !strings.Contains(d.Message, w.msg) {
			t.Errorf("warning %d: want %d %s %q, got %s", i, w.line, w.path, w.msg, d)
		}
	}
}
