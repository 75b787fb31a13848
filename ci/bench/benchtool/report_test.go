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

// runReport copies the recorded run in testdata/<run> to a temporary
// folder, compares its table with testdata/<golden> and returns the
// bench.json it wrote.
func runReport(t *testing.T, run, golden string) benchReport {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(filepath.Join("testdata", run))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", run, e.Name()))
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
	golden = filepath.Join("testdata", golden)
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
	return rep
}

// findRow is the row of target measured by tool, or nil.
func findRow(rep benchReport, tool, target string) *row {
	for _, r := range rep.Rows {
		if r.Tool == tool && r.Target == target {
			return r
		}
	}
	return nil
}

// TestReport reads a recorded run of the three original targets (one
// round each, by databus bench and wrk) and compares the table with the
// golden file.
func TestReport(t *testing.T) {
	rep := runReport(t, "run", "report.golden")
	proxy, pass := findRow(rep, "wrk", "proxy"), findRow(rep, "wrk", "passthrough")
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
	// Without a proxy-signed round the full chain has only its ratio to
	// the plain proxy, as information.
	full := findRow(rep, "databus bench", "full")
	if full == nil || full.SignedRatio != nil || full.SignedP99Gap != nil {
		t.Errorf("full row without proxy-signed: %+v", full)
	}
	if c := checkNamed(rep, "full chain req/s ÷ proxy (databus bench)"); c == nil || !c.Info || c.Value != full.Ratio {
		t.Errorf("full chain ÷ proxy: %+v", c)
	}
}

// TestReportJqAndSigned reads a recorded run of all five targets (databus
// bench only, no wrk): the jq transform is checked against the proxy, the
// full chain against the proxy driven by the same signing client.
func TestReportJqAndSigned(t *testing.T) {
	rep := runReport(t, "run5", "report5.golden")
	var order []string
	for _, r := range rep.Rows {
		order = append(order, r.Tool+"/"+r.Target)
	}
	want := "databus bench/proxy databus bench/proxy-signed databus bench/passthrough databus bench/jq databus bench/full"
	if got := strings.Join(order, " "); got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
	proxy, signed := findRow(rep, "databus bench", "proxy"), findRow(rep, "databus bench", "proxy-signed")
	jq, full := findRow(rep, "databus bench", "jq"), findRow(rep, "databus bench", "full")
	if signed.RPS != 5030.942022168147 || signed.Ratio != signed.RPS/proxy.RPS {
		t.Errorf("proxy-signed: rps %v ratio %v", signed.RPS, signed.Ratio)
	}
	// proxy-signed is the proxy process: rss.txt names it too.
	if signed.RSSMiB == nil || *signed.RSSMiB != *proxy.RSSMiB || jq.RSSMiB == nil || jq.AnonMiB == nil || jq.FileMiB == nil {
		t.Errorf("memory: proxy-signed %v, jq %v %v %v", signed.RSSMiB, jq.RSSMiB, jq.AnonMiB, jq.FileMiB)
	}
	if full.SignedRatio == nil || *full.SignedRatio != full.RPS/signed.RPS ||
		full.SignedP99Gap == nil || *full.SignedP99Gap != full.P99-signed.P99 {
		t.Fatalf("full against proxy-signed: ratio %v gap %v", full.SignedRatio, full.SignedP99Gap)
	}
	if r := findRow(rep, "databus bench", "passthrough"); r.SignedRatio != nil {
		t.Errorf("passthrough has a signed ratio %v", *r.SignedRatio)
	}

	for _, c := range []struct {
		name  string
		value float64
		met   bool
		info  bool
	}{
		{"jq transform req/s ÷ proxy (databus bench)", jq.Ratio, jq.Ratio >= 1.0, false},
		{"full chain req/s ÷ proxy driven by the same signing client", *full.SignedRatio, *full.SignedRatio >= 0.95, false},
		{"full chain p99 − signed proxy p99, ms", *full.SignedP99Gap, *full.SignedP99Gap <= 2, false},
		{"full chain req/s ÷ proxy (databus bench)", full.Ratio, false, true},
		{"jq peak RSS, MiB", *jq.RSSMiB, *jq.RSSMiB < 60, false},
	} {
		got := checkNamed(rep, c.name)
		if got == nil || got.Value != c.value || got.Met != c.met || got.Info != c.info {
			t.Errorf("check %q = %+v, want value %v met %v info %v", c.name, got, c.value, c.met, c.info)
		}
	}
	if len(rep.Checks) != 9 {
		t.Errorf("%d checks, want 9: %+v", len(rep.Checks), rep.Checks)
	}
}

// checkNamed is the check called name, or nil.
func checkNamed(rep benchReport, name string) *check {
	for i := range rep.Checks {
		if rep.Checks[i].Name == name {
			return &rep.Checks[i]
		}
	}
	return nil
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
