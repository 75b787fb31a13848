package gateway

// The jq budget through a real gateway: runaway programs in transforms are
// stopped (by time, by the heap guard) with the envelope naming the
// program, counted in /metrics, while the process and the other APIs keep
// serving.

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
)

// jqAPI is an API whose response transform is program (on line 11).
func jqAPI(code, program string) string {
	return fmt.Sprintf(`apiVersion: databus/v1
kind: Api
code: %s
version: v1
status: online
methods: [GET, POST]
steps:
  - {id: start, type: start}
  - {id: end, type: end}
transforms:
  response: '%s'
`, code, program)
}

// runawayPrograms never finish on their own: before the budget, the first
// killed the process ("out of memory"), the second grew it by GBs, the
// third ran until the caller went away.
var runawayPrograms = []struct{ code, program string }{
	{"jq.range", `[range(1e9)] | length`},
	{"jq.recurse", `def f: [f]; f`},
	{"jq.loop", `def f: f; f`},
}

func jqRepo(t *testing.T, jq string, extra map[string]string) string {
	t.Helper()
	apis := map[string]string{"ok.yaml": jqAPI("jq.ok", `{v: "ok"}`)}
	for _, p := range runawayPrograms {
		apis[p.code+".yaml"] = jqAPI(p.code, p.program)
	}
	for k, v := range extra {
		apis[k] = v
	}
	dir := newRepo(t, apis)
	writeFile(t, dir+"/databus.yaml", testSettings+"gateway:\n  jq: "+jq+"\n")
	return dir
}

func jqKillCount(t *testing.T, ts *testServer, reason string) float64 {
	t.Helper()
	return metricValue(ts.metricFamilies(t), "databus_jq_budget_kills_total", map[string]string{"reason": reason})
}

func TestJQTimeBudgetStopsRunawayPrograms(t *testing.T) {
	ts := startServer(t, Options{Dir: jqRepo(t, "{timeout: 200ms}", nil)})
	for i, p := range runawayPrograms {
		env, err := ts.call(p.code)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("apis/%s.yaml:11: transforms.response: jq program stopped: it ran past its time budget of 200ms (gateway.jq.timeout)", p.code)
		if env.Code != http.StatusGatewayTimeout || env.Message != want {
			t.Errorf("%s: %d %q, want 504 %q", p.code, env.Code, env.Message, want)
		}
		if n := jqKillCount(t, ts, "time"); n != float64(i+1) {
			t.Errorf("after %s: databus_jq_budget_kills_total{reason=time} = %v, want %d", p.code, n, i+1)
		}
	}
	// The process survived and serves.
	ts.expectValue(t, "jq.ok", "ok")
	if n := jqKillCount(t, ts, "memory"); n != 0 {
		t.Errorf("memory kills = %v, want 0", n)
	}
}

func TestJQMemoryGuardStopsRunawayPrograms(t *testing.T) {
	// A ceiling 64 MiB above the live heap of the test process, and a
	// time budget long enough that only the guard can stop the programs.
	runtime.GC()
	ceiling := heapBytes() + 64<<20
	ts := startServer(t, Options{Dir: jqRepo(t, fmt.Sprintf("{timeout: 10m, maxMemoryBytes: %d}", ceiling), nil)})
	for i, p := range runawayPrograms[:2] {
		env, err := ts.call(p.code)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("apis/%s.yaml:11: transforms.response: jq program stopped: the gateway's heap passed gateway.jq.maxMemoryBytes (%d bytes) while it ran", p.code, ceiling)
		if env.Code != http.StatusInternalServerError || env.Message != want {
			t.Errorf("%s: %d %q, want 500 %q", p.code, env.Code, env.Message, want)
		}
		if n := jqKillCount(t, ts, "memory"); n != float64(i+1) {
			t.Errorf("after %s: databus_jq_budget_kills_total{reason=memory} = %v, want %d", p.code, n, i+1)
		}
	}
	ts.expectValue(t, "jq.ok", "ok")
}

func TestJQRunawayProgramLeavesOtherAPIsServing(t *testing.T) {
	ts := startServer(t, Options{Dir: jqRepo(t, "{timeout: 10m}", nil)})
	guard := ts.Current().Env.JQ.Guard
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killer := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.portalURL+basePath+"/jq.loop/v1", nil)
		resp, err := ts.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		killer <- err
	}()
	waitFor(t, pollTimeout, "the runaway program runs", func() bool { return guard.Running() >= 1 })
	// While it runs, another API (a jq program too) answers.
	env, err := ts.call("jq.ok")
	if err != nil || env.Code != http.StatusOK || env.value() != "ok" {
		t.Fatalf("jq.ok while jq.loop runs: %+v %v", env, err)
	}
	if guard.Running() < 1 {
		t.Fatal("jq.loop ended before jq.ok answered: the test proved nothing")
	}
	// The caller going away stops the program (not counted as a kill).
	cancel()
	if err := <-killer; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("killer call: %v", err)
	}
	waitFor(t, pollTimeout, "the runaway program stops with its caller", func() bool { return guard.Running() == 0 })
	if n := jqKillCount(t, ts, "time") + jqKillCount(t, ts, "memory"); n != 0 {
		t.Errorf("kills = %v, want 0", n)
	}
}

// heapBytes is the memory in heap objects now.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
