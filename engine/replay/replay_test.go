package replay

import (
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/store"
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
		{"streamed step", store.Record{APICode: "a", Capture: kept, StepResults: []store.StepRecord{{ID: "dl", Response: map[string]any{"body": "(streamed)"}}}}, `step "dl" streamed`},
	} {
		if got := replayable(&tc.r); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
