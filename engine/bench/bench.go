// Package bench is the load generator behind `databus bench`: it sends
// requests built fresh for each call (so a signed API gets a new nonce and
// timestamp every time) at a fixed rate or as fast as the workers go, and
// reports throughput, latency percentiles and errors by status.
//
// At a fixed rate the generator is open-loop: each request has an intended
// start time, and its latency is measured from that time, so a gateway that
// stalls is charged for the requests that queued behind the stall
// (coordinated omission is corrected).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Builder makes the request of one call; it is called once per request,
// from several goroutines at once.
type Builder func(ctx context.Context) (*http.Request, error)

// Options configure a run.
type Options struct {
	Rate        float64       // requests per second; 0 = as fast as the workers go
	Concurrency int           // workers (connections); default 16
	Duration    time.Duration // how long to send; default 10s
	Timeout     time.Duration // per request; default 30s
	Client      *http.Client  // nil: a pooled client sized for Concurrency
	Build       Builder
	// Check looks at an answer that came back; a non-nil error counts the
	// request as failed under that error's text. nil: only the status
	// counts (2xx is a success).
	Check func(status int, header http.Header, body []byte) error
}

// Result is what a run measured.
type Result struct {
	Target      string           `json:"target,omitempty"`
	Mode        string           `json:"mode"` // "max" or "rate N/s"
	Concurrency int              `json:"concurrency"`
	Elapsed     Duration         `json:"elapsed"`
	Requests    int64            `json:"requests"`
	RPS         float64          `json:"rps"`
	Errors      int64            `json:"errors"`
	Status      map[string]int64 `json:"status"`   // "200", "429", ... and "error" for transport errors
	Failures    map[string]int64 `json:"failures"` // reasons of failed requests, by text
	Latency     Latency          `json:"latency"`  // of every request, failed ones included
	// Succeeded is the latency of the requests that succeeded only: under
	// overload, what the target's admitted requests cost, apart from the
	// fast refusals that pull Latency down.
	Succeeded Latency `json:"latencySucceeded"`
	BytesIn   int64   `json:"bytesIn"`          // response bodies read
	Missed    int64   `json:"missed,omitempty"` // rate mode: requests not started before the end
	// ClientCPU is the load generator's own CPU time per request (signing,
	// encrypting, reading answers): on a machine it shares with the target,
	// what the target did not get.
	ClientCPU Duration `json:"clientCpuPerRequest"`
	// Warnings say when the figures measure something else than the API,
	// e.g. when most answers were rate-limit refusals.
	Warnings []string `json:"warnings,omitempty"`
}

// Latency summarises the latency histogram.
type Latency struct {
	Mean Duration `json:"mean"`
	P50  Duration `json:"p50"`
	P90  Duration `json:"p90"`
	P99  Duration `json:"p99"`
	Max  Duration `json:"max"`
}

// Duration marshals as fractional milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration in milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON reads milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*d = Duration(f * float64(time.Millisecond))
	return nil
}

func (d Duration) String() string { return FormatLatency(time.Duration(d)) }

func timeDuration(d Duration) time.Duration { return time.Duration(d) }

// FormatLatency prints a latency with three significant digits.
func FormatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
}

// Histogram range: 1 µs to 10 minutes at 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

// worker is one goroutine's tally, merged at the end (no shared state on
// the request path).
type worker struct {
	hist     *hdrhistogram.Histogram
	ok       *hdrhistogram.Histogram // successes only
	status   map[string]int64
	failures map[string]int64
	n, errs  int64
	bytesIn  int64
}

func newWorker() *worker {
	return &worker{hist: hdrhistogram.New(histMin, histMax, histDigits), ok: hdrhistogram.New(histMin, histMax, histDigits), status: map[string]int64{}, failures: map[string]int64{}}
}

// Run drives the load until opts.Duration has passed or ctx ends, then
// waits for the requests in flight.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Build == nil {
		return nil, errors.New("bench: no request builder")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Rate < 0 {
		return nil, fmt.Errorf("bench: rate %v is negative", opts.Rate)
	}
	client := opts.Client
	if client == nil {
		client = NewClient(opts.Concurrency, opts.Timeout)
	}
	// The deadline counts from start, so that the run lasts at least its
	// duration as measured (and requests/s divides by that).
	start := time.Now()
	runCtx, cancel := context.WithDeadline(ctx, start.Add(opts.Duration))
	defer cancel()
	cpu0 := processCPU()
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	var missed int64
	// One request first, alone: a target that is down is reported at once
	// instead of after the whole duration. It is the run's first request
	// (due at start, counted like every other), so that N requests sent are
	// N requests reported: a probe apart would spend a rate-limit slot and
	// write an access-log record that no figure accounts for.
	workers[0] = newWorker()
	if status, reason := workers[0].do(ctx, client, opts, start); status == "error" {
		if strings.HasPrefix(reason, "build: ") {
			return nil, fmt.Errorf("bench: building a request: %s", strings.TrimPrefix(reason, "build: "))
		}
		return nil, fmt.Errorf("bench: the target does not answer: %s", reason)
	}
	if opts.Rate == 0 {
		for i := range workers {
			if workers[i] == nil {
				workers[i] = newWorker()
			}
			w := workers[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					w.do(ctx, client, opts, time.Now())
				}
			}()
		}
	} else {
		// The schedule: request i is due at start + i/rate. Workers take
		// due times from the channel; latency counts from the due time.
		due := make(chan time.Time, opts.Concurrency)
		for i := range workers {
			if workers[i] == nil {
				workers[i] = newWorker()
			}
			w := workers[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range due {
					w.do(ctx, client, opts, t)
				}
			}()
		}
		interval := time.Duration(float64(time.Second) / opts.Rate)
		total := int64(opts.Duration / interval)
	schedule:
		for i := int64(1); i < total; i++ { // request 0 was the first, sent above
			t := start.Add(time.Duration(i) * interval)
			if d := time.Until(t); d > 0 {
				timer := time.NewTimer(d)
				select {
				case <-timer.C:
				case <-runCtx.Done():
					timer.Stop()
					missed = total - i
					break schedule
				}
			}
			select {
			case due <- t:
			case <-runCtx.Done():
				missed = total - i
				break schedule
			}
		}
		close(due)
		// The run lasts its duration even when the last request was due
		// earlier, so that requests/s compares with the rate.
		<-runCtx.Done()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0

	res := &Result{Mode: "max", Concurrency: opts.Concurrency, Elapsed: Duration(elapsed),
		Status: map[string]int64{}, Failures: map[string]int64{}, Missed: missed}
	if opts.Rate > 0 {
		res.Mode = "rate " + strconv.FormatFloat(opts.Rate, 'f', -1, 64) + "/s"
	}
	hist := hdrhistogram.New(histMin, histMax, histDigits)
	ok := hdrhistogram.New(histMin, histMax, histDigits)
	for _, w := range workers {
		hist.Merge(w.hist)
		ok.Merge(w.ok)
		res.Requests += w.n
		res.Errors += w.errs
		res.BytesIn += w.bytesIn
		for k, v := range w.status {
			res.Status[k] += v
		}
		for k, v := range w.failures {
			res.Failures[k] += v
		}
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	if res.Requests > 0 {
		res.ClientCPU = Duration(cpu / time.Duration(res.Requests))
	}
	res.Latency = summary(hist)
	res.Succeeded = summary(ok)
	if w := RefusalWarning(res); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
	return res, nil
}

// RefusalWarning returns a warning when at least half of the answers
// share one failing status (a refusal, an error answer or a transport
// error): the run then measures how fast the target says no, not the API.
// It returns "" otherwise.
func RefusalWarning(r *Result) string {
	if r.Requests == 0 {
		return ""
	}
	var top string
	for _, k := range StatusKeys(r.Status) {
		if len(k) == 3 && k[0] == '2' {
			continue
		}
		if top == "" || r.Status[k] > r.Status[top] {
			top = k
		}
	}
	n := r.Status[top]
	if top == "" || 2*n < r.Requests {
		return ""
	}
	share := strconv.FormatFloat(100*float64(n)/float64(r.Requests), 'f', 0, 64) + "%"
	var what string
	switch top {
	case "429":
		what = "429 (rate limited): this measures the rate limiter, not the API; bench an API whose policy the run stays under (see ci/bench/full)"
	case "401", "403":
		what = top + " (refused by the security chain: signature, credential or IP): this measures the refusal, not the API; check --app and the key, or --unsigned only for an API with security off"
	case "error":
		what = "transport errors (no answer): this measures the connection failures, not the API"
	default:
		what = top + ": this measures that answer, not the API"
	}
	return share + " of answers were " + what
}

// summary reads the percentiles of a histogram of microseconds.
func summary(h *hdrhistogram.Histogram) Latency {
	us := func(v int64) Duration { return Duration(time.Duration(v) * time.Microsecond) }
	return Latency{
		Mean: Duration(time.Duration(h.Mean() * float64(time.Microsecond))),
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		Max:  us(h.Max()),
	}
}

// do sends one request due at t, tallies it and returns its status key and
// failure reason.
func (w *worker) do(ctx context.Context, client *http.Client, opts Options, t time.Time) (status, reason string) {
	reason, status = w.send(ctx, client, opts)
	lat := time.Since(t)
	v := int64(lat / time.Microsecond)
	if v < histMin {
		v = histMin
	}
	if v > histMax {
		v = histMax
	}
	w.hist.RecordValue(v)
	if reason == "" {
		w.ok.RecordValue(v)
	}
	w.n++
	w.status[status]++
	if reason != "" {
		w.errs++
		w.failures[reason]++
	}
	return status, reason
}

// send returns the failure reason ("" for a success) and the status key.
func (w *worker) send(ctx context.Context, client *http.Client, opts Options) (reason, status string) {
	req, err := opts.Build(ctx)
	if err != nil {
		return "build: " + err.Error(), "error"
	}
	resp, err := client.Do(req)
	if err != nil {
		return transportReason(err), "error"
	}
	status = strconv.Itoa(resp.StatusCode)
	var body []byte
	if opts.Check != nil {
		body, err = io.ReadAll(resp.Body)
	} else {
		var n int64
		n, err = io.Copy(io.Discard, resp.Body)
		w.bytesIn += n
	}
	resp.Body.Close()
	w.bytesIn += int64(len(body))
	if err != nil {
		return "reading the answer: " + transportReason(err), status
	}
	if opts.Check != nil {
		if err := opts.Check(resp.StatusCode, resp.Header, body); err != nil {
			return err.Error(), status
		}
		return "", status
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "HTTP " + status, status
	}
	return "", status
}

// transportReason shortens a transport error to its kind, so that the
// failure table groups them.
func transportReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// NewClient is an HTTP client whose pool keeps one connection per worker.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency * 2,
		MaxIdleConnsPerHost: concurrency * 2,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// StatusKeys returns the keys of a status map in order: codes ascending,
// "error" last.
func StatusKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "error") != (keys[j] == "error") {
			return keys[j] == "error"
		}
		return keys[i] < keys[j]
	})
	return keys
}
