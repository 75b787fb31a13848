package portal

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

// records is an AccessLog that keeps what it is given.
type records struct {
	mu   sync.Mutex
	list []*store.Record
}

func (r *records) Append(rec *store.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
}

func (r *records) last() *store.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.list) == 0 {
		return nil
	}
	return r.list[len(r.list)-1]
}

// counterSum adds up every series of c.
func counterSum(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	sum := 0.0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetCounter().GetValue() + d.GetGauge().GetValue()
	}
	return sum
}

// TestRefusalReasons: each refusal is counted under the reason its site
// names, and the access-log record carries the same reason as errorCode;
// headers too large are not a body fault.
func TestRefusalReasons(t *testing.T) {
	dir := testRepo(t, map[string]string{
		"databus.yaml":    openSettings,
		"policies/p.yaml": policy,
		"apis/a.yaml":     api("demo.r", "online", "[GET, POST]", scriptStep(`function main(c) { return 1 }`)),
		"apis/f.yaml":     api("demo.fail", "online", "[GET]", scriptStep(`function main(c) { throw new Error("boom") }`)),
	})
	_, snap := newPortal(t, dir)
	var cur atomic.Pointer[snapshot.Snapshot]
	cur.Store(snap)
	m := metrics.New()
	acc := &records{}
	h := New(cur.Load, Options{Metrics: m, AccessLog: acc})

	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
		status                   int
		reason                   string // the refusal's metric label; "" for none
		errorCode                string
	}{
		{"headers too large", "GET", "/api/demo.r/v1", "", map[string]string{"X-Big": strings.Repeat("a", MaxHeaderBytes)}, 431, ReasonHeader, "header"},
		{"body too large", "POST", "/api/demo.r/v1", strings.Repeat("b", 2000), nil, 413, ReasonBody, "body"},
		{"no such API", "GET", "/api/demo.none/v1", "", nil, 404, ReasonRoute, "route"},
		{"method", "PUT", "/api/demo.r/v1", "", nil, 405, ReasonMethod, "method"},
		{"flow failed", "GET", "/api/demo.fail/v1", "", nil, 500, "", "flow"},
		{"answered", "GET", "/api/demo.r/v1", "", nil, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counterSum(t, m.Refusals)
			w, _ := do(t, h, tc.method, tc.path, tc.body, tc.header)
			if w.Code != tc.status {
				t.Fatalf("HTTP %d, want %d", w.Code, tc.status)
			}
			want := before
			if tc.reason != "" {
				want++
				if got := counterSum(t, m.Refusals.WithLabelValues(tc.reason)); got != 1 {
					t.Errorf("databus_portal_refusals_total{reason=%q} = %v, want 1", tc.reason, got)
				}
			}
			if got := counterSum(t, m.Refusals); got != want {
				t.Errorf("databus_portal_refusals_total, all reasons: %v, want %v", got, want)
			}
			rec := acc.last()
			if rec == nil || rec.HTTPStatus != tc.status || rec.ErrorCode != tc.errorCode {
				t.Errorf("record %+v; want HTTP %d, errorCode %q", rec, tc.status, tc.errorCode)
			}
		})
	}

	// Without a configuration, the refusal names that too.
	empty := New(func() *snapshot.Snapshot { return nil }, Options{Metrics: m})
	if w, _ := do(t, empty, "GET", "/api/demo.r/v1", "", nil); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("no configuration: HTTP %d", w.Code)
	}
	if got := counterSum(t, m.Refusals.WithLabelValues(ReasonNoConfig)); got != 1 {
		t.Errorf(`databus_portal_refusals_total{reason=%q} = %v, want 1`, ReasonNoConfig, got)
	}
}
