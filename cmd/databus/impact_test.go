package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

const (
	impactOrder = `apiVersion: databus/v1
kind: Api
code: order.create
version: v1
status: online
methods: [POST]
policies: {rateLimit: std}
input:
  type: object
  required: [orderNo]
  properties:
    orderNo: {type: string}
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {source: 'function main(c) { return {ok: true} }'}
  - {id: end, type: end}
`
	impactStock = `apiVersion: databus/v1
kind: Api
code: stock.query
version: v1
status: online
methods: [GET]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {source: 'function main(c) { return {n: 1} }'}
  - {id: end, type: end}
`
	impactPolicy = "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: std\nlimit: 100\nwindowSeconds: 60\n"
	impactShop   = "apiVersion: databus/v1\nkind: Credential\nappId: shop\nsignatureType: MD5\nencryptionType: NONE\n"
	impactMall   = "apiVersion: databus/v1\nkind: Credential\nappId: mall\nsignatureType: MD5\nencryptionType: NONE\n"
)

// impactRepo is a git repository whose first commit a real gateway serves
// and records traffic for, and whose second commit breaks those callers.
type impactRepo struct {
	b          *gitopstest.Builder
	c1, c2     string
	admin      string
	exportFile string
}

func newImpactRepo(t *testing.T) *impactRepo {
	b := gitopstest.New(t, "")
	export := filepath.Join(t.TempDir(), "access.jsonl")
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\nstorage:\n  accessLog: {export: 'file:"+export+"'}\n")
	b.Write("apis/order.yaml", impactOrder)
	b.Write("apis/stock.yaml", impactStock)
	b.Write("policies/std.yaml", impactPolicy)
	b.Write("credentials/shop.yaml", impactShop)
	b.Write("credentials/mall.yaml", impactMall)
	r := &impactRepo{b: b, exportFile: export}
	r.c1 = b.Commit("Order and stock APIs")

	s, _ := serveRepo(t, b.Dir, filepath.Join(t.TempDir(), "databus.db"))
	r.admin = s.admin
	call := func(method, code, app, body string) {
		req, _ := http.NewRequest(method, s.portal+"/"+code+"/v1", strings.NewReader(body))
		req.Header.Set("ZT-App-Id", app)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s as %s: %d", method, code, app, resp.StatusCode)
		}
	}
	for range 3 {
		call("POST", "order.create", "shop", `{"orderNo":"A1"}`)
	}
	call("POST", "order.create", "mall", `{"orderNo":"B7","note":"gift"}`)
	call("GET", "stock.query", "mall", "")
	call("GET", "stock.query", "mall", "")
	// Wait until the six records are exported (written off the request path).
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(export)
		if bytes.Count(data, []byte("\n")) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the export file holds %d lines, want 6", bytes.Count(data, []byte("\n")))
		}
		time.Sleep(5 * time.Millisecond)
	}

	b.Write("apis/order.yaml", strings.Replace(impactOrder, "required: [orderNo]", "required: [orderNo, qty]", 1))
	b.Write("apis/stock.yaml", strings.Replace(impactStock, "methods: [GET]", "methods: [POST]", 1))
	b.Write("policies/std.yaml", strings.Replace(impactPolicy, "limit: 100", "limit: 1", 1))
	b.Write("credentials/mall.yaml", impactMall+"allowedIps: [10.0.0.0/8]\n")
	r.c2 = b.Commit("Tighten order input, stock by POST, std limit 1, mall from 10/8 only")
	return r
}

var (
	stampRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ`)
	// The four calls may straddle a window boundary: the peak is 2 to 4,
	// above the limit of 1 whichever.
	peakRE = regexp.MustCompile(`observed peak of [234] `)
)

func (r *impactRepo) normalize(out, source string) string {
	out = strings.ReplaceAll(out, source, "SOURCE")
	out = strings.NewReplacer(r.c1, "<C1>", r.c1[:7], "<C1>", r.c2, "<C2>", r.c2[:7], "<C2>").Replace(out)
	out = peakRE.ReplaceAllString(out, "observed peak of <PEAK> ")
	return stampRE.ReplaceAllString(out, "<TIME>")
}

// databus diff --traffic against a real gateway's admin API and its export
// file: every change here breaks a recorded caller; --fail-on breaking
// exits 1, and without breaking changes 0.
func TestDiffTraffic(t *testing.T) {
	r := newImpactRepo(t)
	out, errOut, code := runCLI("diff", r.c1, r.c2, "--dir", r.b.Dir, "--traffic", r.admin, "--fail-on", "breaking")
	if code != exitInvalid || errOut != "databus diff: 4 breaking changes for recorded callers (--fail-on breaking)\n" {
		t.Fatalf("exit %d, stderr %s\n%s", code, errOut, out)
	}
	gitopsGolden(t, "diff-traffic.txt", r.normalize(out, r.admin))

	// The export file says the same.
	fromFile, _, code := runCLI("diff", r.c1, r.c2, "--dir", r.b.Dir, "--traffic", r.exportFile, "--fail-on", "breaking")
	if code != exitInvalid || r.normalize(fromFile, r.exportFile) != r.normalize(out, r.admin) {
		t.Errorf("from the export file: exit %d\n%s", code, fromFile)
	}

	md, errOut, code := runCLI("diff", r.c1, r.c2, "--dir", r.b.Dir, "--traffic", r.exportFile, "--format", "markdown")
	if code != exitOK || errOut != "" {
		t.Fatalf("markdown: exit %d %s", code, errOut)
	}
	gitopsGolden(t, "diff-traffic.md", r.normalize(md, r.exportFile))
	if i, j := strings.Index(md, "**breaking**"), strings.Index(md, "| info |"); i < 0 || j < i {
		t.Errorf("markdown does not lead with the breaking changes:\n%s", md)
	}

	js, _, code := runCLI("diff", r.c1, r.c2, "--dir", r.b.Dir, "--traffic", r.exportFile, "--format", "json")
	var rep struct {
		Breaking int `json:"breaking"`
		Traffic  struct {
			Records int `json:"records"`
		} `json:"traffic"`
		Findings []struct {
			Severity, Kind string
			Callers        []struct {
				AppID    string `json:"appId"`
				Requests int    `json:"requests"`
			}
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil || code != exitOK || rep.Breaking != 4 || rep.Traffic.Records != 6 {
		t.Fatalf("json: exit %d %v\n%s", code, err, js)
	}

	// The same revision twice: nothing breaks.
	_, errOut, code = runCLI("diff", r.c1, r.c1, "--dir", r.b.Dir, "--traffic", r.exportFile, "--fail-on", "breaking")
	if code != exitOK || errOut != "" {
		t.Errorf("no change: exit %d %s", code, errOut)
	}
	// --since excludes everything older: nothing breaks either.
	_, _, code = runCLI("diff", r.c1, r.c2, "--dir", r.b.Dir, "--traffic", r.admin, "--since", "1ns", "--fail-on", "breaking")
	if code != exitOK {
		t.Errorf("--since 1ns: exit %d", code)
	}
}

func TestDiffTrafficUsage(t *testing.T) {
	s := gitopstest.Sample(t, "")
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"apiCode\":\"a\"}\nnot json\n"), 0o644)
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--fail-on", "breaking"}, "--fail-on needs --traffic"},
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--traffic", bad, "--fail-on", "warning"}, `--fail-on "warning": expected breaking`},
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--traffic", bad}, bad + ":2: not an access-log record"},
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--traffic", filepath.Join(s.Dir, "nosuch.jsonl")}, "nosuch.jsonl: no such file"},
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--traffic", bad, "--limit", "0"}, "--limit, --max-bodies and --window must be positive"},
		{[]string{"diff", "HEAD", "--dir", s.Dir, "--traffic", "http://127.0.0.1:1"}, "--traffic: http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(tt.args...)
		if code != exitUsage || !strings.Contains(errOut, tt.err) {
			t.Errorf("databus %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.err)
		}
	}
}
