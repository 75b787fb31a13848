package expr

import "testing"

// TestReadsRequest: a program that never touches the document's request
// part says so; every way of reaching it (or the whole document) counts as
// a read.
func TestReadsRequest(t *testing.T) {
	for _, c := range []struct {
		src   string
		reads bool
	}{
		{`.steps.call.orderNo`, false},
		{`{orderNo: .steps.call.orderNo, status: .steps.call.status, lines: (.steps.call.items | length)}`, false},
		{`.steps | .call`, false},
		{`.steps.a | {x: ., k: keys, j: tojson, all: [..]}`, false},
		{`[.steps[]] | length`, false},
		{`reduce .steps.call.items[] as $i (0; . + $i.qty)`, false},
		{`.traceId + "-" + .vars.x`, false},
		{`$steps.call.id, $traceId, $vars`, false},
		{`if .steps.a then .steps.b else null end`, false},
		{`try .steps.a catch .`, false},
		{`select(.steps.a) | .steps.b`, false},
		{`first(.steps.a[]), limit(2; .steps.b[])`, false},
		{`.vars as $v | .steps.a`, false},
		{`"\(.steps.a.id)"`, false},
		{`.steps.a[.traceId]`, false},
		{`{(.traceId): 1, "k\(.steps.a)": 2, steps}`, false},
		{`@base64 "x\(.steps.a)"`, false},
		{`.steps.a // empty`, false},

		{`.request.body`, true},
		{`$request.body`, true},
		{`.steps.a | $request`, true},
		{`.`, true},
		{`keys`, true},
		{`tojson`, true},
		{`length`, true},
		{`to_entries`, true},
		{`..`, true},
		{`.[]`, true},
		{`.["request"]`, true},
		{`.["req" + "uest"]`, true},
		{`. as $d | $d.request`, true},
		{`. as {request: $r} | $r`, true},
		{`{request}`, true},
		{`{$request}`, true},
		{`{"request"}`, true},
		{`{d: .} | .d.request`, true},
		{`[.] | .[0].request`, true},
		{`"\(.)"`, true},
		{`@json`, true},
		{`@base64 "x\(.)"`, true},
		{`def f: .request; f`, true},
		{`def f: .; f | .steps`, true},
		{`if .steps.a then . else 1 end`, true},
		{`if .steps.a then 1 end`, true},
		{`.steps.x = 1`, true},
		{`.steps.a // .request.b`, true},
		{`.steps.a, .`, true},
		{`getpath(["request"])`, true},
		{`path(..)`, true},
		{`select(.steps.a)`, true},
		{`first(.)`, true},
		{`first`, true},
		{`error(.)`, true},
		{`error`, true},
		{`try error(.) catch .request`, true},
		{`reduce . as $d (0; $d.request)`, true},
		{`.steps[.request.x]`, true},
		{`.steps.a[.request.k]`, true},
		{`(. + {}) | .request`, true},
		{`. == {}`, true},
		{`label $out | .`, true},
		{`.steps.a as $x | .`, true},
	} {
		p, err := Compile(c.src)
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		if got := p.ReadsRequest(); got != c.reads {
			t.Errorf("%s: ReadsRequest = %v, want %v", c.src, got, c.reads)
		}
	}
}
