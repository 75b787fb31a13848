package expr

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runaway are programs that never finish on their own: each must be stopped
// by the budget, not by the process running out of memory.
var runaway = map[string]string{
	"range":     `[range(1e9)] | length`,
	"recurse":   `def f: [f]; f`,
	"loop":      `def f: f; f`,
	"recurse2":  `def f: f + 1; f`,
	"repeat":    `[repeat(1)] | length`,
	"until":     `0 | until(false; . + 1)`,
	"limitless": `[limit(1e12; repeat("x"))] | length`,
}

func TestBudgetStopsRunawayProgramsInTime(t *testing.T) {
	// Without a guard a timer of its own stops each evaluation; with one,
	// the guard's watcher does.
	g := NewGuard(nil)
	for name, src := range runaway {
		t.Run(name, func(t *testing.T) {
			testTimeBudget(t, src, &Budget{Timeout: 50 * time.Millisecond})
		})
		t.Run(name+"/guarded", func(t *testing.T) {
			before := g.Kills(ReasonTime)
			testTimeBudget(t, src, &Budget{Timeout: 50 * time.Millisecond, MaxMemoryBytes: 1 << 40, Guard: g})
			if g.Kills(ReasonTime) != before+1 {
				t.Errorf("time kills = %d, want %d", g.Kills(ReasonTime), before+1)
			}
		})
	}
}

func testTimeBudget(t *testing.T, src string, b *Budget) {
	t.Helper()
	p := mustCompile(t, src).Bind("apis/x.yaml:7: transforms.response", b)
	_, err := p.Run(context.Background(), doc(), doc())
	var be *BudgetError
	if !errors.As(err, &be) || be.Reason != ReasonTime {
		t.Fatalf("Run = %v, want a time BudgetError", err)
	}
	want := "apis/x.yaml:7: transforms.response: jq program stopped: it ran past its time budget of 50ms (gateway.jq.timeout)"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestBudgetNeverOutlivesTheCaller(t *testing.T) {
	// The caller's deadline (the step's or the request's) comes first: the
	// program stops with the caller's error, not a budget error.
	p := mustCompile(t, `def f: f; f`).Bind("x", &Budget{Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := p.Run(ctx, nil, nil)
	var be *BudgetError
	if err == nil || errors.As(err, &be) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the caller's deadline", err)
	}
}

func TestBudgetLeavesNormalProgramsAlone(t *testing.T) {
	g := NewGuard(nil)
	p := mustCompile(t, `.request.body.orderNo`).Bind("x", &Budget{Timeout: time.Second, MaxMemoryBytes: 1, Guard: g})
	for range 100 {
		v, err := p.Run(context.Background(), doc(), doc())
		if err != nil || v != "A-1" {
			t.Fatalf("Run = %v, %v", v, err)
		}
	}
	if g.Running() != 0 || g.Kills(ReasonTime)+g.Kills(ReasonMemory) != 0 {
		t.Fatalf("running %d, kills %d/%d", g.Running(), g.Kills(ReasonTime), g.Kills(ReasonMemory))
	}
}

func TestGuardStopsEvaluationsPastTheHeapCeiling(t *testing.T) {
	var kills atomic.Int64
	g := NewGuard(func(reason string) {
		if reason == ReasonMemory {
			kills.Add(1)
		}
	})
	// A ceiling of 64 MiB above today's heap: `[range(1e9)]` passes it
	// long before its hour is up.
	ceiling := heapObjectBytes() + 64<<20
	b := &Budget{Timeout: time.Hour, MaxMemoryBytes: ceiling, Guard: g}
	for _, src := range []string{`[range(1e9)] | length`, `def f: [f]; f`} {
		t.Run(src, func(t *testing.T) {
			before := kills.Load()
			_, err := mustCompile(t, src).Bind("apis/x.yaml: transforms.response", b).Run(context.Background(), nil, nil)
			var be *BudgetError
			if !errors.As(err, &be) || be.Reason != ReasonMemory {
				t.Fatalf("Run = %v, want a memory BudgetError", err)
			}
			if !strings.Contains(err.Error(), "apis/x.yaml: transforms.response: jq program stopped: the gateway's heap passed gateway.jq.maxMemoryBytes") {
				t.Errorf("error = %q", err)
			}
			if kills.Load() != before+1 {
				t.Errorf("kills = %d, want %d", kills.Load(), before+1)
			}
		})
	}
}

func TestGuardSparesYoungEvaluations(t *testing.T) {
	// With the heap above the ceiling, an evaluation that entered during
	// the current interval is not blamed for it; one that has run a full
	// interval is.
	// watching: no watcher goroutine; the test ticks the guard itself.
	g := &Guard{heap: func() uint64 { return 100 }, watching: true}
	var cancelled atomic.Int32
	old := &evaluation{ceiling: 50, cancel: func() { cancelled.Add(1) }}
	g.enter(old)
	g.check()
	g.check()
	young := &evaluation{ceiling: 50, cancel: func() { cancelled.Add(10) }}
	g.enter(young)
	g.check()
	if old.killed.Load() != killedMemory || young.killed.Load() != 0 || cancelled.Load() != 1 {
		t.Fatalf("old killed %v, young killed %v, cancels %d", old.killed.Load(), young.killed.Load(), cancelled.Load())
	}
	g.leave(old)
	g.leave(young)
	if g.head != nil || g.tail != nil || g.Running() != 0 {
		t.Fatal("guard still lists evaluations")
	}
	if g.check() || g.watching {
		t.Fatal("an idle guard keeps watching")
	}
}

func TestGuardWatcherEndsWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	g := NewGuard(nil)
	p := mustCompile(t, `def f: f; f`).Bind("x", &Budget{Timeout: 30 * time.Millisecond, MaxMemoryBytes: 1 << 40, Guard: g})
	if _, err := p.Run(context.Background(), nil, nil); err == nil {
		t.Fatal("want a budget error")
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before: the watcher did not end", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTemplateBind(t *testing.T) {
	tpl, err := ParseTemplate(`http://up/${def f: f; f}`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpl.Bind("apis/x.yaml:9: steps[1].http.url", &Budget{Timeout: 20 * time.Millisecond}).Render(context.Background(), nil, nil)
	var be *BudgetError
	if !errors.As(err, &be) || be.Place != "apis/x.yaml:9: steps[1].http.url" {
		t.Fatalf("Render = %v, want a BudgetError naming the place", err)
	}
	// The unbound template is unchanged.
	if tpl.parts[1].prog.budget != nil {
		t.Fatal("Bind changed the original template")
	}
}

func mustCompile(t testing.TB, src string) *Program {
	t.Helper()
	p, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	return p
}

func TestLint(t *testing.T) {
	tests := []struct {
		src  string
		want string // "" for no finding
	}{
		{`def f: f; f`, "def f calls itself on every path"},
		{`def f: [f]; f`, "def f calls itself on every path"},
		{`def f: f + 1; f`, "def f calls itself on every path"},
		{`{a: (def g($x): g($x + 1); g(0))}`, "def g calls itself on every path"},
		{`[range(1e9)] | length`, "range(1e9) produces 1000000000 values"},
		{`[range(0; 20000000)]`, "range(0; 20000000) produces 20000000 values"},
		{`def f: if . > 3 then . else (. + 1 | f) end; f`, ""},
		{`def f: ., (. + 1 | f); [limit(3; f)]`, ""},
		{`def f: (.[] | f) // .; f`, ""},
		{`def f: select(. < 3) | (. + 1 | f); f`, ""},
		{`def f: .a? | f; f`, ""},
		{`[range(10)]`, ""},
		{`[range(0; 1e9; 1e3)]`, ""},
		{`[range(.n)]`, ""},
		{`.request.body`, ""},
	}
	for _, tt := range tests {
		got := Lint(tt.src)
		switch {
		case tt.want == "" && len(got) > 0:
			t.Errorf("Lint(%q) = %q, want nothing", tt.src, got)
		case tt.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tt.want)):
			t.Errorf("Lint(%q) = %q, want %q...", tt.src, got, tt.want)
		}
	}
	tpl, err := ParseTemplate(`http://up/${[range(1e8)] | length}/x`)
	if err != nil {
		t.Fatal(err)
	}
	if w := tpl.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "${[range(1e8)] | length}: range(1e8) produces") {
		t.Errorf("Template.Warnings = %q", w)
	}
}
