package portal

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// shedRig is a real portal on loopback whose one API calls an upstream
// that holds every request until released, and whose settings a test can
// reload.
type shedRig struct {
	t       *testing.T
	dir     string
	cur     atomic.Pointer[snapshot.Snapshot]
	h       *Handler
	m       *metrics.Metrics
	gw      *httptest.Server
	arrived chan struct{} // one value per request the upstream got
	release chan struct{} // closed: the upstream answers
}

func newShedRig(t *testing.T, portal string) *shedRig {
	t.Helper()
	r := &shedRig{t: t, arrived: make(chan struct{}, 64), release: make(chan struct{}), m: metrics.New()}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.arrived <- struct{}{}
		<-r.release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	r.dir = testRepo(t, map[string]string{
		"databus.yaml":    r.settings(portal),
		"policies/p.yaml": policy,
		"apis/slow.yaml": api("slow.call", "online", "[POST]",
			"  - id: call\n    type: http\n    http: {method: POST, url: '"+up.URL+"/slow', timeout: 1h}\n"),
	})
	r.reload(portal)
	r.h = New(r.cur.Load, Options{Metrics: r.m})
	r.gw = httptest.NewServer(r.h)
	t.Cleanup(r.gw.Close)
	t.Cleanup(r.free) // first: the servers' handlers must return before they close
	return r
}

func (r *shedRig) settings(portal string) string {
	return "apiPortal:\n  basePath: /api\n  security: {enabled: false}\n" + portal
}

// reload builds a Snapshot with these portal settings and swaps it in.
func (r *shedRig) reload(portal string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "databus.yaml"), []byte(r.settings(portal)), 0o644); err != nil {
		r.t.Fatal(err)
	}
	repo, diags, err := config.Load(r.dir)
	if err != nil || diags.HasErrors() {
		r.t.Fatalf("load: %v %s", err, diags.Error())
	}
	env := &flow.Env{Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, DefaultTimeout: time.Hour, MaxResponseBytes: 1 << 20}
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: env})
	if err != nil {
		r.t.Fatal(err)
	}
	r.cur.Store(snap)
}

// metric reads a counter's, gauge's or histogram's count from the
// registry; reason is the series' reason label ("" for none).
func (r *shedRig) metric(name, reason string) float64 {
	r.t.Helper()
	mfs, err := r.m.Registry.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					got = l.GetValue()
				}
			}
			if got != reason {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func (r *shedRig) free() {
	select {
	case <-r.release:
	default:
		close(r.release)
	}
}

// recv waits for an answer within a deadline that only a hung request reaches.
func (r *shedRig) recv(ch <-chan answer) answer {
	r.t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		r.t.Fatal("no answer within 10s")
		return answer{}
	}
}

type answer struct {
	status     int
	env        envelope
	retryAfter string
	err        error
}

// send posts one request and returns its answer on the channel.
func (r *shedRig) send() <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		resp, err := http.Post(r.gw.URL+"/api/slow.call/v1", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
		a.err = json.NewDecoder(resp.Body).Decode(&a.env)
		ch <- a
	}()
	return ch
}

// upstream waits until n more requests reached the upstream.
func (r *shedRig) upstream(n int) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-r.arrived:
		case <-time.After(10 * time.Second):
			r.t.Fatalf("only %d of %d requests reached the upstream", i, n)
		}
	}
}

func (r *shedRig) waitState(what string, inFlight, queued int) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := r.h.admission.State()
		if s.InFlight == inFlight && s.Queued == queued {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %d in flight and %d queued, want %d and %d", what, s.InFlight, s.Queued, inFlight, queued)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantBusy(t *testing.T, what string, a answer) {
	t.Helper()
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.env.Code != 503 || a.env.Message != MsgBusy || a.retryAfter != "1" {
		t.Fatalf("%s: status %d envelope %+v Retry-After %q err %v; want 503 %q with Retry-After 1", what, a.status, a.env, a.retryAfter, a.err, MsgBusy)
	}
}

func wantOK(t *testing.T, what string, a answer) {
	t.Helper()
	if a.err != nil || a.status != http.StatusOK || a.env.Code != 200 {
		t.Fatalf("%s: status %d envelope %+v err %v; want 200", what, a.status, a.env, a.err)
	}
}

// With the slots and the queue taken, a request is answered 503 MsgBusy
// while the admitted ones still wait on the upstream; the admitted ones
// complete, and once they are done a new request is admitted at once.
func TestShedWhenSlotsAndQueueAreFull(t *testing.T) {
	rig := newShedRig(t, "  maxInFlight: 2\n  queue: {length: 1, timeout: 1h}\n")
	a, b := rig.send(), rig.send()
	rig.upstream(2)
	queued := rig.send()
	rig.waitState("third request", 2, 1)

	// Shed at once: the upstream still holds the admitted requests.
	shed := rig.send()
	select {
	case got := <-shed:
		wantBusy(t, "fourth request", got)
	case got := <-a:
		t.Fatalf("an admitted request finished (%+v) before the shed one was answered", got)
	}
	if n := rig.metric("databus_portal_shed_total", "queue_full"); n != 1 {
		t.Fatalf("databus_portal_shed_total{reason=queue_full} = %v, want 1", n)
	}
	if n := rig.metric("databus_portal_refusals_total", ReasonOverload); n != 1 {
		t.Fatalf("databus_portal_refusals_total{reason=overload} = %v, want 1", n)
	}
	if in, q := rig.metric("databus_portal_in_flight", ""), rig.metric("databus_portal_queued", ""); in != 2 || q != 1 {
		t.Fatalf("gauges: in flight %v, queued %v; want 2 and 1", in, q)
	}

	rig.free()
	wantOK(t, "first", rig.recv(a))
	wantOK(t, "second", rig.recv(b))
	wantOK(t, "queued", rig.recv(queued))
	rig.waitState("after the load", 0, 0)
	if n := rig.metric("databus_portal_queue_wait_seconds", ""); n != 1 {
		t.Fatalf("databus_portal_queue_wait_seconds counted %v waits, want 1", n)
	}
	wantOK(t, "after the load", rig.recv(rig.send()))
	// The admitted requests' durations are counted, the shed one's not.
	admitted := func() float64 { return rig.metric("databus_portal_admitted_duration_seconds", "") }
	for deadline := time.Now().Add(5 * time.Second); admitted() < 4 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := admitted(); n != 4 {
		t.Fatalf("databus_portal_admitted_duration_seconds counted %v requests, want the 4 admitted", n)
	}
}

// A reload that raises the cap admits the waiting request and new ones;
// one that lowers it sheds new requests without touching those in flight.
func TestShedLimitsReload(t *testing.T) {
	rig := newShedRig(t, "  maxInFlight: 1\n  queue: {length: 1, timeout: 1h}\n")
	first := rig.send()
	rig.upstream(1)
	waiting := rig.send()
	rig.waitState("second request", 1, 1)
	wantBusy(t, "over cap and queue", rig.recv(rig.send()))

	rig.reload("  maxInFlight: 3\n  queue: {length: 0, timeout: 1h}\n")
	third := rig.send()
	rig.upstream(2) // the waiting one and the new one
	rig.waitState("after raising the cap", 3, 0)
	wantBusy(t, "at the raised cap with no queue", rig.recv(rig.send()))

	rig.reload("  maxInFlight: 1\n  queue: {length: 0, timeout: 1h}\n")
	wantBusy(t, "over the lowered cap", rig.recv(rig.send()))
	rig.waitState("after lowering the cap", 3, 0)
	rig.free()
	for _, ch := range []<-chan answer{first, waiting, third} {
		wantOK(t, "admitted", rig.recv(ch))
	}
	rig.waitState("after the load", 0, 0)
	wantOK(t, "after the load", rig.recv(rig.send()))
}

// A request that waits its bound is shed as queue_timeout.
func TestShedQueueTimeout(t *testing.T) {
	rig := newShedRig(t, "  maxInFlight: 1\n  queue: {length: 4, timeout: 1ms}\n")
	first := rig.send()
	rig.upstream(1)
	wantBusy(t, "waited its bound", rig.recv(rig.send()))
	if n := rig.metric("databus_portal_shed_total", "queue_timeout"); n != 1 {
		t.Fatalf("databus_portal_shed_total{reason=queue_timeout} = %v, want 1", n)
	}
	rig.free()
	wantOK(t, "admitted", rig.recv(first))
}
