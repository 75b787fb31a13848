package bench

import (
	"fmt"
	"io"
	"sort"
	"strconv"
)

// WriteText prints a result for a terminal.
func WriteText(w io.Writer, r *Result) {
	if r.Target != "" {
		fmt.Fprintf(w, "target       %s\n", r.Target)
	}
	fmt.Fprintf(w, "mode         %s, concurrency %d, %s\n", r.Mode, r.Concurrency, FormatLatency(timeDuration(r.Elapsed)))
	fmt.Fprintf(w, "requests     %d (%s/s), errors %d (%s)\n", r.Requests, strconv.FormatFloat(r.RPS, 'f', 1, 64), r.Errors, percent(r.Errors, r.Requests))
	if r.Missed > 0 {
		fmt.Fprintf(w, "missed       %d requests not started before the end (the target could not keep the rate)\n", r.Missed)
	}
	if r.ClientCPU > 0 {
		fmt.Fprintf(w, "client CPU   %s per request (this load generator's own share)\n", r.ClientCPU)
	}
	l := r.Latency
	fmt.Fprintf(w, "latency      p50 %s  p90 %s  p99 %s  max %s  mean %s\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.Errors > 0 && r.Errors < r.Requests {
		l = r.Succeeded
		fmt.Fprintf(w, "succeeded    p50 %s  p90 %s  p99 %s  max %s  mean %s\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	}
	fmt.Fprint(w, "status      ")
	for _, k := range StatusKeys(r.Status) {
		fmt.Fprintf(w, " %s: %d", k, r.Status[k])
	}
	fmt.Fprintln(w)
	if len(r.Failures) > 0 {
		reasons := make([]string, 0, len(r.Failures))
		for k := range r.Failures {
			reasons = append(reasons, k)
		}
		sort.Slice(reasons, func(i, j int) bool {
			if r.Failures[reasons[i]] != r.Failures[reasons[j]] {
				return r.Failures[reasons[i]] > r.Failures[reasons[j]]
			}
			return reasons[i] < reasons[j]
		})
		fmt.Fprintln(w, "failures")
		for _, k := range reasons {
			fmt.Fprintf(w, "  %8d  %s\n", r.Failures[k], k)
		}
	}
	for _, msg := range r.Warnings {
		fmt.Fprintf(w, "warning      %s\n", msg)
	}
}

func percent(a, b int64) string {
	if b == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*float64(a)/float64(b), 'f', 2, 64) + "%"
}
