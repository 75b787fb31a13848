package call

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/store"
)

func TestRecord(t *testing.T) {
	started := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := func() *Exchange {
		return &Exchange{
			TraceID: "t1", APICode: "a.b", Version: "v1", AppID: "shop", ClientIP: "192.0.2.1",
			Method: "POST", Path: "/api/a.b/v1",
			Header: http.Header{"Authorization": {"Bearer x"}, "X-Long": {strings.Repeat("h", 30)}},
			Body:   []byte(strings.Repeat("q", 30)),
			Status: 200, Message: MsgOK, Response: []byte(`{"ok":true}`),
			Steps:   []flow.StepResult{{ID: "s", Type: "script", Elapsed: 1500 * time.Microsecond, Response: strings.Repeat("r", 30)}},
			Started: started, Elapsed: 2 * time.Millisecond,
		}
	}
	for _, tc := range []struct {
		name  string
		edit  func(x *Exchange)
		check func(t *testing.T, r *store.Record)
	}{
		{"answered", func(x *Exchange) {}, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "" || r.ErrorMessage != "" || r.Status != store.StatusSuccess || r.DurationMs != 2 || r.Extra != nil {
				t.Errorf("record %+v", r)
			}
			if r.RequestHeaders["Authorization"] != "***" || r.RequestHeaders["X-Long"] != strings.Repeat("h", 30) {
				t.Errorf("headers %v: redacted, and not cut outside a 431", r.RequestHeaders)
			}
			if !strings.Contains(r.RequestBody, "truncated") || len(r.StepResults) != 1 || r.StepResults[0].ElapsedMs != 1.5 ||
				!strings.Contains(r.StepResults[0].Response.(string), "truncated") {
				t.Errorf("bodies are not cut at maxChars: %+v", r)
			}
		}},
		{"flow failed", func(x *Exchange) { x.Status, x.Message = 502, `step "s" failed` }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != ErrorFlow || r.ErrorMessage != `step "s" failed` || r.Status != store.StatusServerError {
				t.Errorf("record %+v", r)
			}
		}},
		{"refused", func(x *Exchange) { x.Status, x.Message, x.Reason = 429, "limited", "rate_limit" }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "rate_limit" || r.ErrorMessage != "limited" {
				t.Errorf("record %+v", r)
			}
		}},
		{"headers too large", func(x *Exchange) { x.Status, x.Reason = 431, "header" }, func(t *testing.T, r *store.Record) {
			if r.ErrorCode != "header" || !strings.Contains(r.RequestHeaders["X-Long"], "truncated") {
				t.Errorf("record %+v", r)
			}
		}},
		{"streamed", func(x *Exchange) { x.Streamed, x.Extra = true, map[string]any{"user": "u"} }, func(t *testing.T, r *store.Record) {
			if r.ResponseBody != "(streamed)" || r.Extra["streamed"] != true || r.Extra["user"] != "u" {
				t.Errorf("record %+v", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := base()
			tc.edit(x)
			tc.check(t, Record(x, 10, []string{"authorization"}))
		})
	}
}
