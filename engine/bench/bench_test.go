package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream counts requests and answers 500 to every tenth.
type upstream struct {
	n, failed atomic.Int64
	nonces    sync.Map
	dupNonce  atomic.Int64
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := u.n.Add(1)
	if nonce := r.Header.Get("X-Nonce"); nonce != "" {
		if _, dup := u.nonces.LoadOrStore(nonce, true); dup {
			u.dupNonce.Add(1)
		}
	}
	if n%10 == 0 {
		u.failed.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	w.Write([]byte(`{"ok":true}`))
}

func builder(url string) Builder {
	var seq atomic.Int64
	return func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err == nil {
			req.Header.Set("X-Nonce", strconv.FormatInt(seq.Add(1), 10))
		}
		return req, err
	}
}

// TestRunMaxCounts checks that every request the upstream saw is counted
// once, under its status, and that the builder ran once per request.
func TestRunMaxCounts(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	res, err := Run(context.Background(), Options{Concurrency: 4, Duration: 300 * time.Millisecond, Build: builder(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	seen := up.n.Load() // the first request, sent alone, is counted too
	if res.Requests != seen || res.Requests < 10 {
		t.Fatalf("counted %d requests, the upstream saw %d", res.Requests, seen)
	}
	if up.dupNonce.Load() != 0 {
		t.Errorf("%d requests reused a request built for another", up.dupNonce.Load())
	}
	if res.Status["200"]+res.Status["500"] != res.Requests {
		t.Errorf("status counts %v do not add up to %d", res.Status, res.Requests)
	}
	if res.Status["500"] != up.failed.Load() {
		t.Errorf("500s: counted %d, the upstream answered %d", res.Status["500"], up.failed.Load())
	}
	if res.Errors != res.Status["500"] || res.Failures["HTTP 500"] != res.Errors {
		t.Errorf("errors %d, failures %v, status %v", res.Errors, res.Failures, res.Status)
	}
	if res.RPS <= 0 || time.Duration(res.Elapsed) < 300*time.Millisecond {
		t.Errorf("rps %v over %v", res.RPS, time.Duration(res.Elapsed))
	}
	if res.BytesIn == 0 {
		t.Error("no response bytes counted")
	}
	if processCPU() > 0 && res.ClientCPU <= 0 {
		t.Errorf("client CPU per request not measured: %v", res.ClientCPU)
	}
}

// TestRunRate checks the open-loop schedule: exactly rate×duration
// requests are due, each either sent or reported missed.
func TestRunRate(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	res, err := Run(context.Background(), Options{Rate: 200, Concurrency: 2, Duration: 500 * time.Millisecond, Build: builder(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests+res.Missed != 100 {
		t.Fatalf("rate 200/s for 500ms: %d sent + %d missed, want 100 due", res.Requests, res.Missed)
	}
	if res.Mode != "rate 200/s" {
		t.Errorf("mode %q", res.Mode)
	}
	// Every request the target saw is one the report counts: no uncounted
	// probe spends a rate-limit slot or writes an access-log record.
	if up.n.Load() != res.Requests {
		t.Errorf("the upstream saw %d requests, the report counts %d", up.n.Load(), res.Requests)
	}
}

// TestRefusalWarning checks that a run whose answers are mostly refusals
// says so, in the result and in the text report, and that a healthy run
// says nothing.
func TestRefusalWarning(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%20 == 0 {
			w.Write([]byte(`{"ok":true}`))
			return
		}
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Rate: 200, Concurrency: 2, Duration: 500 * time.Millisecond, Build: builder(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.HasPrefix(res.Warnings[0], "95% of answers were 429 (rate limited): this measures the rate limiter") {
		t.Fatalf("warnings %q (status %v)", res.Warnings, res.Status)
	}
	var b strings.Builder
	WriteText(&b, res)
	if !strings.Contains(b.String(), "\nwarning      95% of answers were 429 (rate limited)") {
		t.Errorf("the text report has no warning line:\n%s", b.String())
	}

	for _, c := range []struct {
		status map[string]int64
		want   string // prefix; "" = no warning
	}{
		{map[string]int64{"200": 100}, ""},
		{map[string]int64{"200": 51, "429": 49}, ""},
		{map[string]int64{"200": 30, "429": 35, "500": 35}, ""},
		{map[string]int64{"429": 100}, "100% of answers were 429 (rate limited)"},
		{map[string]int64{"401": 60, "200": 40}, "60% of answers were 401 (refused by the security chain"},
		{map[string]int64{"error": 50, "200": 50}, "50% of answers were transport errors"},
		{map[string]int64{"502": 9, "200": 1}, "90% of answers were 502: this measures that answer"},
	} {
		r := &Result{Status: c.status}
		for _, v := range c.status {
			r.Requests += v
		}
		got := RefusalWarning(r)
		if (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("RefusalWarning(%v) = %q, want %q...", c.status, got, c.want)
		}
	}
}

// TestRunCoordinatedOmission stalls the upstream once: the requests that
// were due during the stall are charged the time they waited, as a user
// of the gateway would have seen it.
func TestRunCoordinatedOmission(t *testing.T) {
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 { // the first request after the probe
			time.Sleep(stall)
		}
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Rate: 100, Concurrency: 1, Duration: time.Second, Build: builder(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	// The ten requests due in the first 100ms waited at least 200ms each:
	// they are the top 10%, so p90 is at least that.
	if time.Duration(res.Latency.P90) < stall-100*time.Millisecond {
		t.Fatalf("p90 %v after a %v stall at concurrency 1: the queued requests were not charged their wait", res.Latency.P90, stall)
	}
	if time.Duration(res.Latency.Max) < stall {
		t.Fatalf("max %v < stall %v", res.Latency.Max, stall)
	}
}

// TestRunCheck counts answers the Check refuses, by reason.
func TestRunCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("nope")) }))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Concurrency: 2, Duration: 100 * time.Millisecond, Build: builder(srv.URL),
		Check: func(status int, _ http.Header, body []byte) error {
			if string(body) != "ok" {
				return errors.New("body " + string(body))
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || res.Failures["body nope"] != res.Requests || res.Status["200"] != res.Requests {
		t.Fatalf("%+v", res)
	}
}

// TestRunUnreachable reports a target that does not answer at once.
func TestRunUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := Run(context.Background(), Options{Duration: time.Hour, Build: builder(url)})
	if err == nil || !strings.Contains(err.Error(), "the target does not answer") {
		t.Fatalf("err = %v", err)
	}
}

func TestStatusKeys(t *testing.T) {
	got := StatusKeys(map[string]int64{"error": 1, "500": 1, "200": 1, "429": 1})
	if strings.Join(got, ",") != "200,429,500,error" {
		t.Fatalf("%v", got)
	}
}

func TestFormatLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		420 * time.Microsecond:   "420µs",
		1234 * time.Microsecond:  "1.23ms",
		45600 * time.Microsecond: "45.6ms",
		2500 * time.Millisecond:  "2.50s",
	} {
		if got := FormatLatency(d); got != want {
			t.Errorf("FormatLatency(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestSucceededLatency checks that the latency of successes leaves out the
// failures: every success here takes at least 20ms, every failure none.
func TestSucceededLatency(t *testing.T) {
	const slow = 20 * time.Millisecond
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(slow)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{Concurrency: 2, Duration: 200 * time.Millisecond, Build: builder(srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.Errors == res.Requests {
		t.Fatalf("%d errors of %d requests: want both kinds", res.Errors, res.Requests)
	}
	if p := time.Duration(res.Succeeded.P50); p < slow {
		t.Fatalf("p50 of successes %v < %v: failures were counted in it", p, slow)
	}
	if p := time.Duration(res.Succeeded.Max); p > time.Duration(res.Latency.Max) {
		t.Fatalf("max of successes %v above the max of all %v", p, time.Duration(res.Latency.Max))
	}
}
