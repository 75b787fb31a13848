package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden report")

// TestReport reads a recorded run (one round per target, by databus bench
// and wrk) and compares the table with the golden file.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	entries, err := os.ReadDir("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata/run", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	var out bytes.Buffer
	if err := report(dir, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), dir, "DIR")
	golden := "testdata/report.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (go test -update to accept):\n%s", golden, got)
	}

	var rep benchReport
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var proxy, pass *row
	for _, r := range rep.Rows {
		if r.Tool == "wrk" && r.Target == "proxy" {
			proxy = r
		}
		if r.Tool == "wrk" && r.Target == "passthrough" {
			pass = r
		}
	}
	if proxy == nil || pass == nil || proxy.RPS != 6526.96 || pass.Ratio != pass.RPS/proxy.RPS {
		t.Fatalf("wrk rows: proxy %+v passthrough %+v", proxy, pass)
	}
	if proxy.P50 != 4.54 || proxy.P99 != 15.07 {
		t.Errorf("wrk percentiles: p50 %v p99 %v, want 4.54 and 15.07", proxy.P50, proxy.P99)
	}
	// Server CPU per request: the .cpu file's seconds over the round's
	// requests.
	for _, r := range rep.Rows {
		if r.Tool == "databus bench" && (r.SrvCPU <= 0 || r.CliCPU <= 0) {
			t.Errorf("%s: CPU per request not computed: server %v client %v", r.Target, r.SrvCPU, r.CliCPU)
		}
	}
	if len(rep.Checks) != 5 || rep.Checks[0].Met != (pass.Ratio >= 0.95) {
		t.Errorf("checks: %+v", rep.Checks)
	}
}

func TestMedian(t *testing.T) {
	rs := []round{{RPS: 3}, {RPS: 1}, {RPS: 2}}
	if m := median(rs, func(r round) float64 { return r.RPS }); m != 2 {
		t.Errorf("median of 3,1,2 = %v", m)
	}
	if m := median(rs[:2], func(r round) float64 { return r.RPS }); m != 2 {
		t.Errorf("median of 3,1 = %v", m)
	}
}

func TestReportEmpty(t *testing.T) {
	if err := report(t.TempDir(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no rounds") {
		t.Fatalf("err = %v", err)
	}
}
