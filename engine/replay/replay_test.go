package replay

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

func TestFileSource(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(id, api string, at time.Time) string {
		b, _ := json.Marshal(store.Record{ID: id, APICode: api, StartedAt: at})
		return string(b) + "\n"
	}
	data := line("1", "a", t0) + "not json\n\n" + line("2", "b", t0.Add(time.Hour)) +
		`{"id":"3","requestBody":"` + strings.Repeat("z", MaxLine) + `"}` + "\n" +
		line("4", "a", t0.Add(2*time.Hour)) + line("5", "a", t0.Add(3*time.Hour))
	for _, tc := range []struct {
		f       Filter
		ids     string
		badSeen int
	}{
		{Filter{}, "1 2 4 5", 2},
		{Filter{API: "a"}, "1 4 5", 2},
		{Filter{API: "a", Limit: 2}, "1 4", 2},
		{Filter{Since: t0.Add(90 * time.Minute)}, "4 5", 2},
		{Filter{Limit: 1}, "1", 0},
	} {
		var ids []string
		bad, err := eachLine(context.Background(), strings.NewReader(data), tc.f, func(r *store.Record) error {
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil || strings.Join(ids, " ") != tc.ids || bad != tc.badSeen {
			t.Errorf("%+v: %v (bad %d, %v), want %s (bad %d)", tc.f, ids, bad, err, tc.ids, tc.badSeen)
		}
	}
}
