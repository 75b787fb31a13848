package main

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

func scrape(counts ...int) string {
	bounds := []string{"0.001", "0.01", "0.1", "+Inf"}
	var b strings.Builder
	b.WriteString("# TYPE h histogram\n")
	for i, c := range counts {
		b.WriteString("h_bucket{le=\"" + bounds[i] + "\"} " + strconv.Itoa(c) + "\n")
	}
	b.WriteString("h_sum 0\nh_count " + strconv.Itoa(counts[len(counts)-1]) + "\n")
	return b.String()
}

// The quantile is over what was observed between the scrapes, interpolated
// inside its bucket as histogram_quantile does.
func TestHistQuantile(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after []int
		q             float64
		want, count   float64
	}{
		// 100 new observations: 50 under 1 ms, 40 in (1, 10] ms, 10 in (10, 100] ms.
		{"p50 at the first bound", []int{0, 0, 0, 0}, []int{50, 90, 100, 100}, 0.5, 0.001, 100},
		{"p90 at the second bound", []int{0, 0, 0, 0}, []int{50, 90, 100, 100}, 0.9, 0.01, 100},
		{"p95 halfway into the third", []int{0, 0, 0, 0}, []int{50, 90, 100, 100}, 0.95, 0.055, 100},
		// The observations before the first scrape do not count.
		{"only the delta", []int{1000, 1000, 1000, 1000}, []int{1050, 1090, 1100, 1100}, 0.95, 0.055, 100},
		{"in +Inf: the highest bound", []int{0, 0, 0, 0}, []int{0, 0, 0, 10}, 0.99, 0.1, 10},
		{"nothing observed", []int{5, 5, 5, 5}, []int{5, 5, 5, 5}, 0.99, 0, 0},
	} {
		got, n, err := histQuantile(strings.NewReader(scrape(tc.before...)), strings.NewReader(scrape(tc.after...)), "h", tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if math.Abs(got-tc.want) > 1e-9 || n != tc.count {
			t.Errorf("%s: q%.2f = %v over %v, want %v over %v", tc.name, tc.q, got, n, tc.want, tc.count)
		}
	}
}
