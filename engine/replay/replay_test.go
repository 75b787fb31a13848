package replay

import (
	"strings"
	"testing"

	"context"
	"github.com/databus-gateway/databus/engine/sandbox"
	"github.com/databus-gateway/databus/engine/store"
	"os"
	"path/filepath"
)

func TestDiffJSON(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       []string // path op
		total      int
	}{
		{"same, keys in another order", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil, 0},
		{"numbers by value", `{"n":1.0}`, `{"n":1}`, nil, 0},
		{"changed", `{"a":{"b":1}}`, `{"a":{"b":2}}`, []string{".a.b changed"}, 1},
		{"added and removed", `{"a":1}`, `{"b":1}`, []string{".a removed", ".b added"}, 2},
		{"array", `[1,2,3]`, `[1,5]`, []string{"[1] changed", "[2] removed"}, 2},
		{"type", `{"a":[1]}`, `{"a":{"0":1}}`, []string{".a changed"}, 1},
		{"odd key", `{"x-y":1}`, `{"x-y":2}`, []string{`["x-y"] changed`}, 1},
		{"whole", `{"a":1}`, `null`, []string{". changed"}, 1},
		{"empty is null", ``, `null`, nil, 0},
		{"not JSON", `abc`, `abd`, []string{". changed"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			changes, total := DiffJSON([]byte(tc.a), []byte(tc.b))
			var got []string
			for _, c := range changes {
				got = append(got, c.Path+" "+c.Op)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || total != tc.total {
				t.Errorf("got %v (%d), want %v (%d)", got, total, tc.want, tc.total)
			}
		})
	}
	// Bounded: many changes are counted, a few listed, long values cut.
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		a.WriteString(`"` + strings.Repeat("x", 500) + `"`)
		b.WriteString("1")
	}
	changes, total := DiffJSON([]byte(a.String()+"]"), []byte(b.String()+"]"))
	if total != 100 || len(changes) != maxChanges || len(changes[0].Recorded) > maxValue+10 {
		t.Errorf("%d changes listed of %d, first value %d bytes", len(changes), total, len(changes[0].Recorded))
	}
}

func TestReplayableReasons(t *testing.T) {
	kept := &store.Capture{Bytes: 10}
	for _, tc := range []struct {
		name string
		r    store.Record
		want string
	}{
		{"captured", store.Record{APICode: "a", Capture: kept}, ""},
		{"captured flow failure", store.Record{APICode: "a", ErrorCode: "flow", Capture: kept}, ""},
		{"not captured", store.Record{APICode: "a"}, "not captured"},
		{"truncated", store.Record{APICode: "a", RequestBody: "abc…(truncated, 9 chars in all)"}, "body truncated"},
		{"encrypted", store.Record{APICode: "a", RequestBody: "abc…(truncated, 9 chars in all)", Extra: map[string]any{"encrypted": true}}, "encrypted payload not kept"},
		{"over budget", store.Record{APICode: "a", Capture: &store.Capture{Skipped: "over budget: x"}}, "not captured: over budget"},
		{"refused", store.Record{APICode: "a", ErrorCode: "signature"}, "refused before the flow (signature)"},
		{"no API", store.Record{Capture: kept}, "matched no API"},
		{"no upstream answer", store.Record{APICode: "a", Capture: kept, StepResults: []store.StepRecord{{ID: "up", Type: "http", Attempts: 2, Error: "step \"up\" timed out"}}}, `step "up" got no upstream answer`},
		{"refused connection", store.Record{APICode: "a", Capture: kept, StepResults: []store.StepRecord{{ID: "up", Type: "http", Attempts: 1, Error: "step \"up\" failed: upstream refused the connection"}}}, ""},
		{"streamed step", store.Record{APICode: "a", Capture: kept, StepResults: []store.StepRecord{{ID: "dl", Response: map[string]any{"body": "(streamed)"}}}}, `step "dl" streamed`},
	} {
		if got := replayable(&tc.r); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReplayRecordsThatAreOdd: a record whose method or path cannot make
// a request is not replayable (it never stops the run); an http step that
// got no answer and was continued (onError: continue) replays identical,
// its refused connection reproduced by the stub.
func TestReplayRecordsThatAreOdd(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n",
		"apis/up.yaml": `apiVersion: databus/v1
kind: Api
code: t.up
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: up
    type: http
    http: {method: GET, url: 'http://down.example/x', timeout: 300ms}
    onError: continue
  - {id: end, type: end}
`} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sb, res, err := sandbox.Open(context.Background(), dir, sandbox.Options{})
	if err != nil || sb == nil {
		t.Fatalf("%v %v", err, res.Diagnostics)
	}
	defer sb.Close()
	rp := New(sb)
	kept := &store.Capture{Bytes: 10}
	base := "/admin-api/databus/api/portal/t.up/v1"
	for _, bad := range []store.Record{
		{APICode: "t.up", Version: "v1", Method: "GET X", Path: base, Capture: kept},
		{APICode: "t.up", Version: "v1", Method: "GET", Path: "%zz", Capture: kept},
	} {
		if got := rp.Replay(context.Background(), &bad); got.Outcome != NotReplayable || !strings.Contains(got.Reason, "cannot be made again") {
			t.Errorf("method %q path %q: %+v", bad.Method, bad.Path, got)
		}
	}
	rec := store.Record{APICode: "t.up", Version: "v1", Method: "GET", Path: base, Capture: kept, HTTPStatus: 200, ResponseBody: "null",
		StepResults: []store.StepRecord{{ID: "start", Type: "start"},
			{ID: "up", Type: "http", Attempts: 1, Request: map[string]any{"method": "GET", "url": "http://down.example/x", "body": ""}, Error: `step "up" failed: upstream refused the connection`},
			{ID: "end", Type: "end"}}}
	if got := rp.Replay(context.Background(), &rec); got.Outcome != Identical {
		t.Fatalf("a continued step without an answer: %+v", got)
	}
}

// What a record holds goes into a pull-request comment: it cannot add
// table cells, lines or markup there.
func TestMarkdownEscapesRecordValues(t *testing.T) {
	if got := mdCode("a|b`c\n# d"); got != `a\|b'c # d` {
		t.Errorf("mdCode: %q", got)
	}
	if got := htmlEscape("x\n- <b>y</b>"); got != "x - &lt;b&gt;y&lt;/b&gt;" {
		t.Errorf("htmlEscape: %q", got)
	}
}
