// Package apitest runs the contract tests of a config repository
// (tests/**/*.yaml, kind ApiTest; databus test). The gate builds the
// Snapshot once (engine/sandbox); each case runs in a Session of its own,
// with its own nonce and rate-limit stores, so a case that exhausts a rate
// limit disturbs no other. The request is signed and encrypted as the
// case's third party would (engine/client), passes the real portal chain
// and the real flow, and every outbound call the flow makes is answered by
// the case's stubs on loopback. The parsing and the checks of the files
// are engine/config's, like every other document's.
package apitest

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/sandbox"
)

// Outcomes of a case.
const (
	Pass = "pass"
	Fail = "fail"
	// Mistake: the case cannot run as written (an API that is not
	// served, a key that does not resolve, a stub never called): the
	// test's own mistake, not the API's.
	Mistake = "error"
	// Unfinished: the run's timeout expired before the case finished.
	Unfinished = "unfinished"
)

// unfinishedGrace is how long a run whose timeout expired waits for its
// running cases to end before it reports them unfinished.
const unfinishedGrace = 2 * time.Second

// DefaultTimeout bounds a case that sets no timeout, every repeat included.
const DefaultTimeout = 10 * time.Second

// Options configure a run.
type Options struct {
	// Run selects the cases whose full name (<file>/<case>, the file's
	// path below tests/ without .yaml) it matches; nil: every case.
	Run *regexp.Regexp
	// Parallel bounds how many cases run at once; 0: GOMAXPROCS.
	Parallel int
	Logger   *slog.Logger // nil: discard
	// Timeout bounds the whole run; the cases that did not finish by then
	// are reported as such (Report.Unfinished). 0: no bound beyond ctx.
	Timeout time.Duration
}

// Report is the outcome of a run.
type Report struct {
	// Diagnostics are the gate's findings when it refused the repository
	// (Refused); a refused repository runs no case.
	Diagnostics config.Diagnostics `json:"diagnostics,omitempty"`
	Refused     bool               `json:"refused"`
	Cases       []*CaseResult      `json:"cases"`
	Passed      int                `json:"passed"`
	Failed      int                `json:"failed"`
	Mistakes    int                `json:"errors"`
	// Files is how many test files the selected cases come from.
	Files int `json:"files"`
	// NoMatch is the --run pattern when it selected none of the
	// repository's cases (a typo is not a pass); Example is then the
	// name of one case, to show how cases are named.
	NoMatch string `json:"noMatch,omitempty"`
	Example string `json:"-"`
	// Unfinished names the cases the run's timeout stopped or never
	// started; Timeout is that timeout.
	Unfinished []string      `json:"unfinished,omitempty"`
	Timeout    time.Duration `json:"-"`
}

// OK reports whether every selected case passed.
func (r *Report) OK() bool {
	return !r.Refused && r.NoMatch == "" && len(r.Unfinished) == 0 && r.Failed == 0 && r.Mistakes == 0
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Name     string        `json:"name"` // <file>/<case>
	Case     string        `json:"case"`
	File     string        `json:"file"` // repository-relative
	Line     int           `json:"line"`
	API      string        `json:"api"`
	Outcome  string        `json:"outcome"` // pass | fail | error
	Failures []*Failure    `json:"failures,omitempty"`
	Elapsed  time.Duration `json:"-"`

	budget *expr.Budget // what the case's assertions run under
	redact *redactor    // keeps sensitive header values out of the report
}

// Failure is one expectation that did not hold, or one mistake of the
// test.
type Failure struct {
	Line int    `json:"line"` // in the case's file
	What string `json:"what"` // e.g. expect.response, stubs[0] (step approve): expect.body
	// Message says what differs in one line.
	Message string `json:"message"`
	// Expected and Actual are the compared values as indented JSON (with
	// sorted keys) when a diff helps; "" otherwise.
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	Mistake  bool   `json:"mistake,omitempty"`
	// Consequence: a finding that follows from the case's failures (a
	// stub the flow never reached because a when no longer held), listed
	// under them; it would be a mistake in a case that did not fail.
	Consequence bool `json:"consequence,omitempty"`
	// consequential: a mistake that becomes a consequence when an
	// expectation of the case failed.
	consequential bool
}

// FullName is how --run and the output name a case.
func FullName(file, name string) string {
	f := strings.TrimPrefix(file, config.TestsDir+"/")
	f = strings.TrimSuffix(strings.TrimSuffix(f, ".yaml"), ".yml")
	return f + "/" + name
}

// Run builds dir through the gate and runs its selected cases. The error
// is for a folder that cannot be read or a sandbox that cannot start; a
// refused repository is a Report with Refused set.
func Run(ctx context.Context, dir string, o Options) (*Report, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sb, res, err := sandbox.Open(ctx, dir, sandbox.Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	rep := &Report{Cases: []*CaseResult{}}
	if sb == nil {
		rep.Refused = true
		rep.Diagnostics = res.Diagnostics
		return rep, nil
	}
	defer sb.Close()

	type job struct {
		t *config.ApiTest
		c *config.TestCase
		r *CaseResult
	}
	var jobs []job
	files := map[string]bool{}
	budget := newAssertBudget()
	for _, t := range sb.Snapshot().Repo.Tests {
		for i := range t.Cases {
			c := &t.Cases[i]
			name := FullName(t.Source.File, c.Name)
			if rep.Example == "" {
				rep.Example = name
			}
			if o.Run != nil && !o.Run.MatchString(name) {
				continue
			}
			r := &CaseResult{Name: name, Case: c.Name, File: t.Source.File, Line: c.Places.Case, API: t.APIRef(c), budget: budget}
			jobs = append(jobs, job{t, c, r})
			rep.Cases = append(rep.Cases, r)
			files[t.Source.File] = true
		}
	}
	rep.Files = len(files)
	if o.Run != nil && len(jobs) == 0 && rep.Example != "" {
		rep.NoMatch = o.Run.String()
	}
	n := o.Parallel
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	runCtx, cancel := context.WithCancel(ctx) // cancelled when every case finished
	if o.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		rep.Timeout = o.Timeout
	}
	defer cancel()
	// A worker publishes a case's result only when the case finished; a
	// case still running when the run's time is up keeps its own result
	// to itself, and the report shows it unfinished.
	var mu sync.Mutex
	done := make([]bool, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(n, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				r := *j.r
				start := time.Now()
				runCase(runCtx, sb, j.t, j.c, &r)
				r.Elapsed = time.Since(start)
				mu.Lock()
				if runCtx.Err() == nil {
					*j.r, done[i] = r, true
				}
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer close(next)
		for i := range jobs {
			select {
			case next <- i:
			case <-runCtx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); <-finished; cancel() }()
	select {
	case <-finished:
	case <-runCtx.Done():
	}
	// Give running cases a moment to end on the cancelled context (their
	// flows, stubs and stores all end on it) before reporting them.
	<-runCtx.Done()
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-time.After(unfinishedGrace):
	}
	mu.Lock()
	for i, j := range jobs {
		if !done[i] {
			r := &CaseResult{Name: j.r.Name, Case: j.r.Case, File: j.r.File, Line: j.r.Line, API: j.r.API, Outcome: Unfinished}
			r.Failures = []*Failure{{Line: r.Line, What: "timeout", Message: fmt.Sprintf("the run's timeout (%s) expired before this case finished", o.Timeout)}}
			rep.Cases[i] = r
			rep.Unfinished = append(rep.Unfinished, r.Name)
		}
	}
	mu.Unlock()
	for _, r := range rep.Cases {
		switch r.Outcome {
		case Pass:
			rep.Passed++
		case Fail:
			rep.Failed++
		case Unfinished:
		default:
			rep.Mistakes++
		}
	}
	return rep, nil
}

// finish sets the outcome from the failures. A failed expectation wins:
// the case FAILs, and what is a mistake only in a case that did not fail
// (a stub never called) is reported as a consequence of the failures,
// listed after them. Only a case whose expectations all held, or could not
// be checked, is the test's own mistake.
func (r *CaseResult) finish() {
	r.redact.apply(r.Failures)
	failed := false
	for _, f := range r.Failures {
		if !f.Mistake {
			failed = true
		}
	}
	for _, f := range r.Failures {
		if failed && f.consequential {
			f.Mistake, f.Consequence = false, true
			f.Message = consequenceMessage
		}
	}
	sort.SliceStable(r.Failures, func(i, j int) bool {
		a, b := r.Failures[i], r.Failures[j]
		if a.Consequence != b.Consequence {
			return b.Consequence
		}
		return a.Line < b.Line
	})
	switch {
	case failed:
		r.Outcome = Fail
	case len(r.Failures) > 0:
		r.Outcome = Mistake
	default:
		r.Outcome = Pass
	}
}

// consequenceMessage replaces "never called" in a case that failed.
const consequenceMessage = "never called: a consequence of the failures above (the flow took another path), not a mistake of the stub"

func (r *CaseResult) fail(line int, what, format string, args ...any) *Failure {
	f := &Failure{Line: line, What: what, Message: fmt.Sprintf(format, args...)}
	r.Failures = append(r.Failures, f)
	return f
}

func (r *CaseResult) mistake(line int, what, format string, args ...any) *Failure {
	f := r.fail(line, what, format, args...)
	f.Mistake = true
	return f
}
