package portal

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// TestRefusalRecordBudget: a flood of refusals writes at most
// storage.accessLog.refusalsPerSecond records a second and counts the rest;
// answered requests in the middle of it are all recorded.
func TestRefusalRecordBudget(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings string
		perSec   int
	}{
		{"three a second", "storage: {accessLog: {refusalsPerSecond: 3}}\n", 3},
		{"default", "", 100},
		{"none", "storage: {accessLog: {refusalsPerSecond: 0}}\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testRepo(t, map[string]string{
				"databus.yaml":    openSettings + tc.settings,
				"policies/p.yaml": policy,
				"apis/a.yaml":     api("demo.r", "online", "[GET]", scriptStep(`function main(c) { return 1 }`)),
			})
			_, snap := newPortal(t, dir)
			var cur atomic.Pointer[snapshot.Snapshot]
			cur.Store(snap)
			var clock atomic.Int64
			clock.Store(time.Unix(1_700_000_000, 0).UnixNano())
			m := metrics.New()
			acc := &records{}
			h := New(cur.Load, Options{Metrics: m, AccessLog: acc, Now: func() time.Time { return time.Unix(0, clock.Load()) }})

			count := func() (answered, refused int) {
				acc.mu.Lock()
				defer acc.mu.Unlock()
				for _, r := range acc.list {
					if r.ErrorCode == "" {
						answered++
					} else {
						refused++
					}
				}
				return
			}
			flood := func(n int) {
				for i := 0; i < n; i++ {
					if w, _ := do(t, h, "GET", "/api/demo.none/v1", "", nil); w.Code != 404 {
						t.Fatalf("refusal: HTTP %d", w.Code)
					}
					if i%50 == 0 {
						if w, _ := do(t, h, "GET", "/api/demo.r/v1", "", nil); w.Code != 200 {
							t.Fatalf("answered: HTTP %d", w.Code)
						}
					}
				}
			}
			const n = 1000
			flood(n)
			answered, refused := count()
			if answered != n/50 || refused != tc.perSec {
				t.Fatalf("records after %d refusals in one instant: %d answered, %d refused; want %d and %d", n, answered, refused, n/50, tc.perSec)
			}
			if got := counterSum(t, m.AccessLogRefusalsSkipped.WithLabelValues(ReasonRoute)); got != float64(n-tc.perSec) {
				t.Errorf("databus_accesslog_refusals_skipped_total = %v, want %d", got, n-tc.perSec)
			}
			if got := counterSum(t, m.Refusals.WithLabelValues(ReasonRoute)); got != n {
				t.Errorf("databus_portal_refusals_total = %v, want every refusal (%d)", got, n)
			}
			// Half a second later, half a second's worth more.
			clock.Add(int64(500 * time.Millisecond))
			flood(n)
			if _, refused := count(); refused != tc.perSec+tc.perSec/2 {
				t.Fatalf("half a second later: %d refusal records, want %d", refused, tc.perSec+tc.perSec/2)
			}
		})
	}
}
