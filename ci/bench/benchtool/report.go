package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/bench"
)

// The targets in the order the table shows them; proxy is the baseline.
// proxy-signed is the same proxy driven by the full chain's signing client
// (AES body, signature headers), the baseline of the full chain; jq is the
// passthrough API with one jq response transform.
var targetOrder = []string{"proxy", "proxy-signed", "passthrough", "jq", "full"}

// round is one measurement of one target by one load tool.
type round struct {
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50Ms"`
	P99       float64 `json:"p99Ms"`
	Errors    int64   `json:"errors"`
	Requests  int64   `json:"requests,omitempty"`
	ServerCPU float64 `json:"serverCpuUsPerRequest,omitempty"` // the target process's CPU per request
	ClientCPU float64 `json:"clientCpuUsPerRequest,omitempty"` // the load generator's
}

// row is a target measured by one tool: the median of its rounds.
type row struct {
	Target string   `json:"target"`
	Tool   string   `json:"tool"`
	Rounds []round  `json:"rounds"`
	RPS    float64  `json:"rps"`
	P50    float64  `json:"p50Ms"`
	P99    float64  `json:"p99Ms"`
	Errors int64    `json:"errors"`
	RSSMiB *float64 `json:"peakRssMiB,omitempty"`
	// At the end of the run: the process's own memory and the file pages
	// it maps (for Databus, the bbolt file's).
	AnonMiB *float64 `json:"endRssAnonMiB,omitempty"`
	FileMiB *float64 `json:"endRssFileMiB,omitempty"`
	SrvCPU  float64  `json:"serverCpuUsPerRequest,omitempty"`
	CliCPU  float64  `json:"clientCpuUsPerRequest,omitempty"`
	Ratio   float64  `json:"rpsRatioToProxy"`
	P99Gap  float64  `json:"p99MinusProxyMs"`
	// The full chain against the proxy driven by the same signing client
	// (absent from other rows and from runs without proxy-signed).
	SignedRatio  *float64 `json:"rpsRatioToSignedProxy,omitempty"`
	SignedP99Gap *float64 `json:"p99MinusSignedProxyMs,omitempty"`
}

// check is one target of the issue, met or not; or, with Info, a figure
// shown beside them that has no goal of its own (Goal empty, Met false).
type check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Goal  string  `json:"goal"`
	Met   bool    `json:"met"`
	Info  bool    `json:"info,omitempty"`
}

type benchReport struct {
	Meta   map[string]string `json:"meta"`
	Rows   []*row            `json:"rows"`
	Checks []check           `json:"checks"`
}

var roundFile = regexp.MustCompile(`^r(\d+)-([a-z][a-z-]*)\.(json|wrk)$`)

// report reads the rounds in dir, prints the table and writes bench.json.
func report(dir string, w io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	rep := &benchReport{Meta: readKV(filepath.Join(dir, "meta.txt"))}
	rss := readKV(filepath.Join(dir, "rss.txt"))
	rows := map[string]*row{}
	for _, e := range entries {
		m := roundFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		target, tool := m[2], "databus bench"
		if m[3] == "wrk" {
			tool = "wrk"
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		var r round
		if tool == "wrk" {
			r, err = parseWrk(string(b))
		} else {
			r, err = parseBench(b)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		// The server's CPU seconds over a databus bench round, from /proc.
		if cpu, err := os.ReadFile(filepath.Join(dir, strings.TrimSuffix(e.Name(), ".json")+".cpu")); err == nil && tool != "wrk" && r.Requests > 0 {
			if secs, err := strconv.ParseFloat(strings.TrimSpace(string(cpu)), 64); err == nil {
				r.ServerCPU = secs * 1e6 / float64(r.Requests)
			}
		}
		key := tool + "/" + target
		if rows[key] == nil {
			rows[key] = &row{Target: target, Tool: tool}
		}
		rows[key].Rounds = append(rows[key].Rounds, r)
	}
	if len(rows) == 0 {
		return fmt.Errorf("no rounds in %s", dir)
	}
	for _, r := range rows {
		r.RPS = median(r.Rounds, func(x round) float64 { return x.RPS })
		r.P50 = median(r.Rounds, func(x round) float64 { return x.P50 })
		r.P99 = median(r.Rounds, func(x round) float64 { return x.P99 })
		r.SrvCPU = median(r.Rounds, func(x round) float64 { return x.ServerCPU })
		r.CliCPU = median(r.Rounds, func(x round) float64 { return x.ClientCPU })
		for _, x := range r.Rounds {
			r.Errors += x.Errors
		}
		r.RSSMiB = mibOf(rss, r.Target)
		r.AnonMiB = mibOf(rss, r.Target+".anon")
		r.FileMiB = mibOf(rss, r.Target+".file")
	}
	for _, tool := range []string{"databus bench", "wrk"} {
		base := rows[tool+"/proxy"]
		for _, t := range targetOrder {
			r := rows[tool+"/"+t]
			if r == nil {
				continue
			}
			if base != nil && base.RPS > 0 {
				r.Ratio = r.RPS / base.RPS
				r.P99Gap = r.P99 - base.P99
			}
			rep.Rows = append(rep.Rows, r)
		}
	}

	// The full chain against the proxy under the same signing client.
	full, signed := rows["databus bench/full"], rows["databus bench/proxy-signed"]
	if full != nil && signed != nil && signed.RPS > 0 {
		ratio, gap := full.RPS/signed.RPS, full.P99-signed.P99
		full.SignedRatio, full.SignedP99Gap = &ratio, &gap
	}

	// The targets: passthrough and jq throughput and p99 from wrk when it
	// ran (the lighter load tool leaves more of the CPU to the targets), the
	// full chain from databus bench (only it can sign).
	pick := func(target string) *row {
		if r := rows["wrk/"+target]; r != nil && rows["wrk/proxy"] != nil {
			return r
		}
		return rows["databus bench/"+target]
	}
	if r := pick("passthrough"); r != nil {
		rep.Checks = append(rep.Checks,
			check{Name: "passthrough req/s ÷ proxy (" + r.Tool + ")", Value: r.Ratio, Goal: "≥ 0.95", Met: r.Ratio >= 0.95},
			check{Name: "passthrough p99 − proxy p99, ms (" + r.Tool + ")", Value: r.P99Gap, Goal: "≤ 1", Met: r.P99Gap <= 1})
	}
	if r := pick("jq"); r != nil {
		rep.Checks = append(rep.Checks, check{Name: "jq transform req/s ÷ proxy (" + r.Tool + ")", Value: r.Ratio, Goal: "≥ 1.0", Met: r.Ratio >= 1.0})
	}
	if full != nil && full.SignedRatio != nil {
		rep.Checks = append(rep.Checks,
			check{Name: "full chain req/s ÷ proxy driven by the same signing client", Value: *full.SignedRatio, Goal: "≥ 0.95", Met: *full.SignedRatio >= 0.95},
			check{Name: "full chain p99 − signed proxy p99, ms", Value: *full.SignedP99Gap, Goal: "≤ 2", Met: *full.SignedP99Gap <= 2})
	}
	if full != nil {
		rep.Checks = append(rep.Checks, check{Name: "full chain req/s ÷ proxy (databus bench)", Value: full.Ratio, Info: true})
	}
	for _, t := range []string{"passthrough", "jq", "full"} {
		if r := rows["databus bench/"+t]; r != nil && r.RSSMiB != nil {
			rep.Checks = append(rep.Checks, check{Name: t + " peak RSS, MiB", Value: *r.RSSMiB, Goal: "< 60", Met: *r.RSSMiB < 60})
		}
	}

	writeTable(w, rep)
	return writeReportJSON(w, filepath.Join(dir, "bench.json"), rep)
}

// writeReportJSON writes a report as indented JSON to out and says where.
func writeReportJSON(w io.Writer, out string, rep any) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nJSON: %s\n", out)
	return nil
}

func writeTable(w io.Writer, rep *benchReport) {
	m := rep.Meta
	fmt.Fprintf(w, "Databus bench: %s rounds of %s per target, interleaved; concurrency %s; %s CPUs; %s\n",
		m["rounds"], m["duration"], m["concurrency"], m["cpus"], m["go"])
	tool := ""
	for _, r := range rep.Rows {
		if r.Tool != tool {
			tool = r.Tool
			fmt.Fprintf(w, "\nload: %s\n", tool)
			fmt.Fprintf(w, "%-12s %10s %9s %9s %10s %8s %9s %7s %12s %12s\n", "target", "req/s", "p50", "p99", "peak RSS", "÷ proxy", "p99 Δ", "errors", "server CPU", "client CPU")
		}
		rssText := "-"
		if r.RSSMiB != nil {
			rssText = strconv.FormatFloat(*r.RSSMiB, 'f', 1, 64) + " MiB"
		}
		fmt.Fprintf(w, "%-12s %10.0f %9s %9s %10s %8.2f %9s %7d %12s %12s\n", r.Target, r.RPS, ms(r.P50), ms(r.P99), rssText, r.Ratio, signedMs(r.P99Gap), r.Errors, perReq(r.SrvCPU), perReq(r.CliCPU))
	}
	memory := false
	for _, r := range rep.Rows {
		if r.Tool != "databus bench" || r.AnonMiB == nil || r.FileMiB == nil {
			continue
		}
		if !memory {
			fmt.Fprintln(w, "\nmemory at the end: the process's own (RssAnon) + mapped file pages (RssFile; for Databus the bbolt file's, reclaimable)")
			memory = true
		}
		fmt.Fprintf(w, "  %-12s %7.1f MiB + %7.1f MiB\n", r.Target, *r.AnonMiB, *r.FileMiB)
	}
	if len(rep.Checks) > 0 {
		fmt.Fprintln(w, "\ntargets")
		for _, c := range rep.Checks {
			if c.Info {
				fmt.Fprintf(w, "  %-60s %8.2f  (information)\n", c.Name, c.Value)
				continue
			}
			state := "met"
			if !c.Met {
				state = "NOT MET"
			}
			fmt.Fprintf(w, "  %-60s %8.2f  (goal %s)  %s\n", c.Name, c.Value, c.Goal, state)
		}
	}
}

// mibOf reads a KiB figure of rss.txt as MiB (nil when absent).
func mibOf(rss map[string]string, key string) *float64 {
	v, ok := rss[key]
	if !ok {
		return nil
	}
	kib, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return nil
	}
	mib := kib / 1024
	return &mib
}

// perReq prints CPU microseconds per request ("-" when not measured).
func perReq(us float64) string {
	if us <= 0 {
		return "-"
	}
	return strconv.FormatFloat(us, 'f', 0, 64) + " µs/req"
}

func ms(v float64) string { return bench.FormatLatency(time.Duration(v * float64(time.Millisecond))) }

func signedMs(v float64) string {
	if v >= 0 {
		return "+" + strconv.FormatFloat(v, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

func median(rs []round, f func(round) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func parseBench(b []byte) (round, error) {
	var res bench.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return round{}, err
	}
	toMs := func(d bench.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return round{RPS: res.RPS, P50: toMs(res.Latency.P50), P99: toMs(res.Latency.P99), Errors: res.Errors,
		Requests: res.Requests, ClientCPU: float64(res.ClientCPU) / float64(time.Microsecond)}, nil
}

var (
	wrkRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`(?m)^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk's --latency output.
func parseWrk(s string) (round, error) {
	var r round
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec line in wrk's output")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		switch p[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if p[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(s); m != nil {
		r.Errors, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSockErr.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

// readKV reads "key value" or "key=value" lines; a missing file is empty.
func readKV(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, " ")
		}
		if ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
