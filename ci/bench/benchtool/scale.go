package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// The measuring parts of the scale bench (ci/bench/scale.sh); scalereport.go
// puts their files together.

// measured is what `benchtool measure` records of a child process.
type measured struct {
	WallMs    float64 `json:"wallMs"`
	MaxRSSKiB int64   `json:"maxRssKiB"`
	ExitCode  int     `json:"exitCode"`
}

// measure runs argv with this process's standard streams and writes its
// wall time and peak resident memory (rusage Maxrss) to out. It returns the
// child's exit code.
func measure(out string, argv []string) (int, error) {
	if len(argv) == 0 {
		return 2, errors.New("measure: no command given")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return 2, fmt.Errorf("measure: %s: %w", argv[0], err)
	}
	m := measured{WallMs: ms64(wall), ExitCode: cmd.ProcessState.ExitCode()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.MaxRSSKiB = ru.Maxrss // KiB on Linux
	}
	return m.ExitCode, writeJSONFile(out, m)
}

// readyAt polls u every 10ms until it answers 200 and writes the time since
// sinceNs (Unix nanoseconds, taken before the server was started) to out.
func readyAt(u string, sinceNs int64, limit time.Duration, out string) error {
	since := time.Unix(0, sinceNs)
	deadline := time.Now().Add(limit)
	var last error
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return writeJSONFile(out, map[string]float64{"ms": ms64(time.Since(since))})
			}
			last = fmt.Errorf("answered %s", resp.Status)
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ready: %s did not answer 200 within %v (last: %v)", u, limit, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyState is the part of /readyz the reload measurements read.
type readyState struct {
	Revision   string `json:"revision"`
	LastReload *struct {
		At       time.Time `json:"at"`
		Reason   string    `json:"reason"`
		OK       bool      `json:"ok"`
		Changed  bool      `json:"changed"`
		Revision string    `json:"revision"`
		Duration int64     `json:"durationNs"`
	} `json:"lastReload"`
}

func getReady(admin string) (readyState, error) {
	var st readyState
	resp, err := http.Get(admin + "/readyz")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("GET %s/readyz: %w", admin, err)
	}
	return st, nil
}

// reloadSample is one reload: how long after the write (or the request)
// the gateway served its outcome, and what the gateway itself reports as
// the reload's duration (/readyz lastReload.durationNs, the cache/refresh
// answer's).
type reloadSample struct {
	ObservedMs float64 `json:"observedMs"`
	GatewayMs  float64 `json:"gatewayMs"`
	Changed    bool    `json:"changed"`
}

// reloadRun is the output of `benchtool reload`.
type reloadRun struct {
	Mode     string         `json:"mode"`
	File     string         `json:"file,omitempty"`
	WindowMs float64        `json:"windowMs"`
	Samples  []reloadSample `json:"samples"`
}

var descriptionLine = regexp.MustCompile(`(?m)^description: .*$`)

// reloadOnce makes one reload of the gateway at admin happen and waits
// (up to limit) until it is served:
//
//	edit     rewrites file's description line, waits for a changed revision
//	same     rewrites file with the bytes it has, waits for the next reload
//	refresh  POSTs the admin cache/refresh endpoint (synchronous)
//
// The watcher's debounce is part of what edit and same observe.
func reloadOnce(admin, mode, file string, seq int, limit time.Duration) (reloadSample, error) {
	if mode == "refresh" {
		start := time.Now()
		resp, err := http.Post(admin+"/databus/gateway/cache/refresh", "application/json", nil)
		if err != nil {
			return reloadSample{}, err
		}
		defer resp.Body.Close()
		var reply struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Data    struct {
				OK       bool  `json:"ok"`
				Changed  bool  `json:"changed"`
				Duration int64 `json:"durationNs"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&reply)
		observed := time.Since(start)
		if err != nil || reply.Code != 0 || !reply.Data.OK {
			return reloadSample{}, fmt.Errorf("cache/refresh: %s %q (%v)", resp.Status, reply.Message, err)
		}
		return reloadSample{ObservedMs: ms64(observed), GatewayMs: float64(reply.Data.Duration) / 1e6, Changed: reply.Data.Changed}, nil
	}
	before, err := getReady(admin)
	if err != nil {
		return reloadSample{}, err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return reloadSample{}, err
	}
	switch mode {
	case "edit":
		if !descriptionLine.Match(data) {
			return reloadSample{}, fmt.Errorf("%s has no description line to edit", file)
		}
		data = descriptionLine.ReplaceAll(data, []byte("description: Scale bench edit "+strconv.Itoa(seq)+" at "+strconv.FormatInt(time.Now().UnixNano(), 10)))
	case "same":
	default:
		return reloadSample{}, fmt.Errorf("reload: -mode %q: expected edit, same or refresh", mode)
	}
	start := time.Now()
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return reloadSample{}, err
	}
	deadline := start.Add(limit)
	for {
		st, err := getReady(admin)
		if err == nil && st.LastReload != nil && st.LastReload.At.After(start) && st.LastReload.OK {
			done := mode == "same" || (st.LastReload.Changed && st.LastReload.Revision != before.Revision)
			if done {
				return reloadSample{ObservedMs: ms64(time.Since(start)), GatewayMs: float64(st.LastReload.Duration) / 1e6,
					Changed: st.LastReload.Changed}, nil
			}
		}
		if err == nil && st.LastReload != nil && st.LastReload.At.After(start) && !st.LastReload.OK {
			return reloadSample{}, fmt.Errorf("the reload after writing %s failed (see the gateway's log)", file)
		}
		if time.Now().After(deadline) {
			return reloadSample{}, fmt.Errorf("no reload served within %v of writing %s (last: %v)", limit, file, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reloads takes count samples, or as many as fit in window when window is
// set (at least one): back to back, or one started every every.
func reloads(admin, mode, file string, count int, window, every, limit time.Duration) (reloadRun, error) {
	run := reloadRun{Mode: mode, File: file}
	start := time.Now()
	for i := 0; ; i++ {
		if every > 0 && i > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		}
		if window > 0 && i > 0 && time.Since(start) >= window {
			break
		}
		if window <= 0 && i >= count {
			break
		}
		s, err := reloadOnce(admin, mode, file, i, limit)
		if err != nil {
			return run, err
		}
		run.Samples = append(run.Samples, s)
	}
	run.WindowMs = ms64(time.Since(start))
	return run, nil
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" || path == "-" {
		_, err = io.Copy(os.Stdout, bytes.NewReader(b))
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
