package expr

import (
	"context"
	"testing"
	"time"
)

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
			for b.Loop() {
				if _, err := p.Run(ctx, d, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
