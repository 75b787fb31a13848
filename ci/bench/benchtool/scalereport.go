package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// spread is the median, least and most of a few samples.
type spread struct {
	Median float64 `json:"medianMs"`
	Min    float64 `json:"minMs"`
	Max    float64 `json:"maxMs"`
	N      int     `json:"samples"`
}

// reloadFigures are one kind of reload: as observed from outside (from the
// write to the outcome being served, the watcher's debounce included) and
// as the gateway measured its own build (lastReload.durationNs).
type reloadFigures struct {
	Observed spread `json:"observed"`
	Gateway  spread `json:"gateway"`
	Changed  bool   `json:"changed"` // whether the reloads built a new Snapshot
}

// loadFigures compare load on one API during back-to-back edit reloads of
// another with a control run without reloads.
type loadFigures struct {
	ControlRPS   float64 `json:"controlRps"`
	DuringRPS    float64 `json:"duringRps"`
	RPSRatio     float64 `json:"rpsRatio"`
	ControlP99   float64 `json:"controlP99Ms"`
	DuringP99    float64 `json:"duringP99Ms"`
	P99Ratio     float64 `json:"p99Ratio"`
	Errors       int64   `json:"errors"` // of both runs
	Reloads      int     `json:"reloads"`
	ReloadBusyMs float64 `json:"reloadBusyMs"` // sum of the reloads' own durations
	WindowMs     float64 `json:"windowMs"`
}

// scaleRow is one repository size.
type scaleRow struct {
	N              int            `json:"apis"`
	ValidateMs     float64        `json:"validateMs"`
	ValidateMiB    float64        `json:"validatePeakRssMiB"`
	ValidateExit   int            `json:"validateExitCode"`
	StartMs        float64        `json:"startToReadyMs"`
	Edit           *reloadFigures `json:"editReload,omitempty"`
	Same           *reloadFigures `json:"sameBytesReload,omitempty"`
	Refresh        *reloadFigures `json:"refreshReload,omitempty"`
	RSSStartMiB    float64        `json:"rssAfterStartMiB"`
	RSSReloadedMiB float64        `json:"rssAfterReloadsMiB"`
	PeakMiB        float64        `json:"peakRssMiB"`
	Load           *loadFigures   `json:"loadDuringReload,omitempty"`
}

type scaleReport struct {
	Meta map[string]string `json:"meta"`
	Rows []*scaleRow       `json:"rows"`
}

var sizeDir = regexp.MustCompile(`^n(\d+)$`)

// scaleReportDir reads the sizes measured under dir (folders n100,
// n1000, ...), prints the markdown table and writes dir/scale.json.
func scaleReportDir(dir string, w io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	rep := &scaleReport{Meta: readKV(filepath.Join(dir, "meta.txt"))}
	for _, e := range entries {
		m := sizeDir.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		r, err := readScaleRow(filepath.Join(dir, e.Name()), n)
		if err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		rep.Rows = append(rep.Rows, r)
	}
	if len(rep.Rows) == 0 {
		return fmt.Errorf("no sizes measured in %s (folders n<N>)", dir)
	}
	sort.Slice(rep.Rows, func(i, j int) bool { return rep.Rows[i].N < rep.Rows[j].N })
	writeScaleTable(w, rep)
	return writeReportJSON(w, filepath.Join(dir, "scale.json"), rep)
}

// readScaleRow reads one size's files; validate.json is required, the
// others are shown as "-" when absent (a run cut short).
func readScaleRow(dir string, n int) (*scaleRow, error) {
	r := &scaleRow{N: n}
	var v measured
	if err := readJSONFile(filepath.Join(dir, "validate.json"), &v); err != nil {
		return nil, err
	}
	r.ValidateMs, r.ValidateMiB, r.ValidateExit = v.WallMs, float64(v.MaxRSSKiB)/1024, v.ExitCode
	var start struct {
		Ms float64 `json:"ms"`
	}
	if err := readOptional(filepath.Join(dir, "start.json"), &start); err != nil {
		return nil, err
	}
	r.StartMs = start.Ms
	for name, dst := range map[string]**reloadFigures{"edit.json": &r.Edit, "same.json": &r.Same, "refresh.json": &r.Refresh} {
		var run reloadRun
		if err := readOptional(filepath.Join(dir, name), &run); err != nil {
			return nil, err
		}
		if len(run.Samples) > 0 {
			*dst = figuresOf(run.Samples)
		}
	}
	rss := readKV(filepath.Join(dir, "rss.txt"))
	r.RSSStartMiB, r.RSSReloadedMiB, r.PeakMiB = kibToMiB(rss["start"]), kibToMiB(rss["reloaded"]), kibToMiB(rss["peak"])

	var control, during, loop = filepath.Join(dir, "control.json"), filepath.Join(dir, "during.json"), filepath.Join(dir, "loop.json")
	if _, err := os.Stat(during); err == nil {
		c, err := readBenchRound(control)
		if err != nil {
			return nil, err
		}
		d, err := readBenchRound(during)
		if err != nil {
			return nil, err
		}
		var run reloadRun
		if err := readOptional(loop, &run); err != nil {
			return nil, err
		}
		l := &loadFigures{ControlRPS: c.RPS, DuringRPS: d.RPS, ControlP99: c.P99, DuringP99: d.P99,
			Errors: c.Errors + d.Errors, Reloads: len(run.Samples), WindowMs: run.WindowMs}
		if c.RPS > 0 {
			l.RPSRatio = d.RPS / c.RPS
		}
		if c.P99 > 0 {
			l.P99Ratio = d.P99 / c.P99
		}
		for _, s := range run.Samples {
			l.ReloadBusyMs += s.GatewayMs
		}
		r.Load = l
	}
	return r, nil
}

func readBenchRound(path string) (round, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return round{}, err
	}
	r, err := parseBench(b)
	if err != nil {
		return round{}, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return r, nil
}

func figuresOf(samples []reloadSample) *reloadFigures {
	f := &reloadFigures{}
	obs := make([]float64, len(samples))
	gw := make([]float64, len(samples))
	for i, s := range samples {
		obs[i], gw[i] = s.ObservedMs, s.GatewayMs
		f.Changed = f.Changed || s.Changed
	}
	f.Observed, f.Gateway = spreadOf(obs), spreadOf(gw)
	return f
}

func spreadOf(v []float64) spread {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	sp := spread{N: len(s)}
	if len(s) == 0 {
		return sp
	}
	sp.Min, sp.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		sp.Median = s[len(s)/2]
	} else {
		sp.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return sp
}

func writeScaleTable(w io.Writer, rep *scaleReport) {
	m := rep.Meta
	fmt.Fprintf(w, "Databus scale bench: %s CPUs; %s; load average %s at the start, %s at the end\n",
		m["cpus"], m["go"], orDash(m["loadavg.start"]), orDash(m["loadavg.end"]))
	fmt.Fprintf(w, "Generated repositories: N APIs (start → http → end, a jq response transform, a rate policy each), N/100 credentials; security %s\n\n",
		orDash(m["security"]))
	fmt.Fprintln(w, "| N | `validate` wall / peak RSS | `serve` start to /readyz | one-file edit reload | same-bytes reload | RSS serving | load during reloads |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rep.Rows {
		validate := fmt.Sprintf("%s / %s", wall(r.ValidateMs), mib(r.ValidateMiB))
		if r.ValidateExit != 0 {
			validate += fmt.Sprintf(" (exit %d)", r.ValidateExit)
		}
		start := "-"
		if r.StartMs > 0 {
			start = wall(r.StartMs)
		}
		same := reloadCell(r.Same)
		if r.Refresh != nil {
			if same == "-" {
				same = ""
			} else {
				same += "; "
			}
			same += "refresh " + wall(r.Refresh.Observed.Median)
		}
		rss := "-"
		if r.RSSStartMiB > 0 {
			rss = mib(r.RSSStartMiB)
			if r.RSSReloadedMiB > 0 {
				rss += fmt.Sprintf(", %s after reloads", mib(r.RSSReloadedMiB))
			}
			if r.PeakMiB > 0 {
				rss += fmt.Sprintf(" (peak %s)", mib(r.PeakMiB))
			}
		}
		load := "-"
		if l := r.Load; l != nil {
			reloads := "reloads"
			if l.Reloads == 1 {
				reloads = "reload"
			}
			load = fmt.Sprintf("req/s ×%.2f, p99 ×%.2f (%.0f → %.0f req/s, p99 %s → %s; %d %s, busy %.0f%%",
				l.RPSRatio, l.P99Ratio, l.ControlRPS, l.DuringRPS, wall(l.ControlP99), wall(l.DuringP99),
				l.Reloads, reloads, 100*min(l.ReloadBusyMs/max(l.WindowMs, 1), 1))
			if l.Errors > 0 {
				load += fmt.Sprintf("; %d errors", l.Errors)
			}
			load += ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", thousands(r.N), validate, start, reloadCell(r.Edit), same, rss, load)
	}
	fmt.Fprintln(w, "\nReloads: the median (and range) from the write to the gateway serving the outcome, the file watcher's")
	fmt.Fprintln(w, "debounce included; \"build\" is the gateway's own figure (/readyz lastReload.durationNs); \"refresh\" is the")
	fmt.Fprintln(w, "round trip of POST /databus/gateway/cache/refresh with nothing changed. Load: `databus bench --max`,")
	edits := "back to back"
	if e := m["reloadEvery"]; e != "" && e != "0" && e != "0s" {
		edits = "once every " + e
	}
	fmt.Fprintf(w, "signed, on one API for %s, alone and then while another API's file is edited %s; during ÷ control.\n",
		orDash(m["loadDuration"]), edits)
}

// reloadCell is "median (min–max), build median".
func reloadCell(f *reloadFigures) string {
	if f == nil {
		return "-"
	}
	s := wall(f.Observed.Median)
	if f.Observed.N > 1 {
		s += fmt.Sprintf(" (%s–%s)", wallBare(f.Observed.Min, f.Observed.Max), wall(f.Observed.Max))
	}
	return s + ", build " + wall(f.Gateway.Median)
}

// wall prints a duration in milliseconds as the issue does: "54 ms",
// "5.3 s", "52.7 s".
func wall(msv float64) string {
	switch {
	case msv < 1:
		return strconv.FormatFloat(msv, 'f', 2, 64) + " ms"
	case msv < 1000:
		return strconv.FormatFloat(msv, 'f', 0, 64) + " ms"
	case msv < 10000:
		return strconv.FormatFloat(msv/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(msv/1000, 'f', 1, 64) + " s"
}

// wallBare prints lo in the unit wall uses for hi, without the unit, so
// that a range reads "7.0–7.9 s".
func wallBare(lo, hi float64) string {
	switch {
	case hi >= 10000:
		return strconv.FormatFloat(lo/1000, 'f', 1, 64)
	case hi >= 1000:
		return strconv.FormatFloat(lo/1000, 'f', 2, 64)
	}
	return strings.TrimSuffix(wall(lo), " ms")
}

func mib(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + " MiB" }

// thousands prints n with a comma every three digits, as the table.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func kibToMiB(v string) float64 {
	kib, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return kib / 1024
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// readOptional is readJSONFile where a missing file leaves v as it is.
func readOptional(path string, v any) error {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	return readJSONFile(path, v)
}
