package expr

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRunTransform runs a typical response transform under a request
// context, as the gateway does, without a budget and under the default one
// (time budget and memory guard): their ratio is the budget's overhead.
func BenchmarkRunTransform(b *testing.B) {
	g := NewGuard(nil)
	for _, bc := range []struct {
		name   string
		budget *Budget
	}{
		{"unbounded", nil},
		{"budget", &Budget{Timeout: time.Second, MaxMemoryBytes: 1 << 30, Guard: g}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := mustCompile(b, `{orderNo: .request.body.orderNo, total: .steps.price.total, tags: [.request.body.tags[] | ascii_upcase]}`).Bind("x", bc.budget)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := doc()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := p.Run(ctx, d, d); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time of the process (GC included) per evaluation: on a
			// shared machine it varies less than the wall-clock ns/op.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
