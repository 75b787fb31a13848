package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
	"github.com/databus-gateway/databus/engine/replay"
)

var traceRE = regexp.MustCompile(`trace [0-9a-zA-Z-]+`)

// replayOrderAPI's response transform is what the tests change: total is
// price × qty, read from the http step's raw result.
func replayOrderAPI(upstream, total string) string {
	return `apiVersion: databus/v1
kind: Api
code: t.order
version: v1
status: online
methods: [POST]
transforms:
  response: '{id: .steps.create.id, total: ` + total + `, region: .request.query.region}'
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http: {method: POST, url: '` + upstream + `/orders', timeout: 10s}
    transforms:
      request: '{orderNo: .request.body.orderNo, qty: .request.body.qty}'
  - {id: end, type: end}
`
}

// TestReplay: a gateway with capture on serves a git config repository
// whose http step calls a real loopback upstream; signed, encrypted traffic
// goes through it. databus replay reads its export file and its admin API:
// against the same config every record is identical; against a revision
// whose jq transform changed, exactly the records it changes differ, with
// the JSON diff; a step the record lacks is reported as not recorded.
func TestReplay(t *testing.T) {
	const encKey, signKey = "ReplayKey-ABCDE!", "ReplaySign-Secret"
	t.Setenv("DATABUS_T_RP_ENC", encKey)
	t.Setenv("DATABUS_T_RP_SIGN", signKey)
	t.Setenv("DATABUS_T_RP_VIEWER", "replay-viewer-token")
	t.Setenv("DATABUS_ADMIN_TOKEN", "")
	var upstreamCalls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		var in struct {
			OrderNo string `json:"orderNo"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"ord-`+in.OrderNo+`","price":7}`)
	}))
	defer upstream.Close()

	b := gitopstest.New(t, "")
	export := filepath.Join(t.TempDir(), "access.jsonl")
	b.Write("databus.yaml", `apiVersion: databus/v1
kind: Settings
storage:
  accessLog:
    maxBodyChars: 16
    export: 'file:`+export+`'
    capture: {sampleRatio: 1}
admin:
  tokens:
    - {name: ci, role: viewer, secret: {secretRef: 'env:DATABUS_T_RP_VIEWER'}}
`)
	b.Write("credentials/shop.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: shop\nencryptionKey: {secretRef: 'env:DATABUS_T_RP_ENC'}\nsignatureKey: {secretRef: 'env:DATABUS_T_RP_SIGN'}\n")
	b.Write("apis/order.yaml", replayOrderAPI(upstream.URL, ".steps.create.price * .request.body.qty"))
	recorded := b.Commit("orders")

	s, stop := serveRepo(t, b.Dir, filepath.Join(t.TempDir(), "databus.db"))
	c := &client.Client{BaseURL: s.portal, HTTP: &http.Client{Timeout: 10 * time.Second},
		Credential: client.Credential{AppID: "shop", EncryptionKey: []byte(encKey), SignatureKey: []byte(signKey)}}
	const m = 12
	for qty := 1; qty <= m; qty++ {
		body := `{"orderNo":"N-` + strconv.Itoa(qty) + `","qty":` + strconv.Itoa(qty) + `,"note":"longer than maxBodyChars"}`
		req, err := c.Prepare(http.MethodPost, "t.order", url.Values{"region": {"eu"}}, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Send(context.Background(), req)
		if err != nil || resp.Envelope.Code != 200 {
			t.Fatalf("call %d: %v %+v", qty, err, resp)
		}
	}
	// A forged call: refused, recorded, not replayable.
	forged := &client.Client{BaseURL: c.BaseURL, HTTP: c.HTTP, Credential: client.Credential{AppID: "shop", EncryptionKey: []byte(encKey), SignatureKey: []byte("wrong")}}
	if resp, err := forged.Call(context.Background(), "t.order", []byte(`{"qty":1}`)); err != nil || resp.Envelope.Code != 401 {
		t.Fatalf("forged call: %v %+v", err, resp)
	}
	// Every record is in the export (and so in the file).
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(export)
		if strings.Count(string(b), "\n") == m+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export holds %d lines, want %d", strings.Count(string(b), "\n"), m+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	calls := upstreamCalls.Load()

	// Same config, from the export: every replayed record identical.
	out, errOut, code := runCLI("replay", "--from", export, "--dir", b.Dir)
	if code != exitOK || !strings.Contains(out, "13 records: 12 identical, 0 differ, 1 not replayable (100.0% of replayed records identical)") ||
		!strings.Contains(out, "refused before the flow (signature)") {
		t.Fatalf("replay of the export against the same config: exit %d\n%s\n%s", code, out, errOut)
	}
	// The same, from the admin API (captured records only), filtered; the
	// token from the environment, as databus logs takes it.
	if _, errOut, code := runCLI("replay", "--from", s.admin, "--dir", b.Dir); code != exitUsage || !strings.Contains(errOut, "HTTP 401") {
		t.Errorf("replay from the admin API without a token: exit %d %s", code, errOut)
	}
	t.Setenv("DATABUS_ADMIN_TOKEN", "replay-viewer-token")
	out, errOut, code = runCLI("replay", "--from", s.admin, "--since", "1h", "--api", "t.order", "--dir", b.Dir, "--format", "json")
	var rep replay.Report
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || rep.Records != m || rep.Identical != m || len(rep.APIs) != 1 || rep.APIs[0].API != "t.order:v1" {
		t.Fatalf("replay from the admin API: exit %d %v\n%s\n%s", code, err, out, errOut)
	}
	if out, _, code := runCLI("replay", "--from", s.admin, "--limit", "5", "--dir", b.Dir); code != exitOK || !strings.Contains(out, "5 records: 5 identical") {
		t.Errorf("replay --limit 5: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI("replay", "--from", s.admin, "--api", "t.other", "--dir", b.Dir); code != exitOK || !strings.Contains(out, "0 records") {
		t.Errorf("replay --api of an API without records: exit %d\n%s", code, out)
	}

	// A changed transform: orders of 10 or more get 5 off. Three of twelve differ.
	b.Write("apis/order.yaml", replayOrderAPI(upstream.URL, "(.steps.create.price * .request.body.qty - (if .request.body.qty >= 10 then 5 else 0 end))"))
	discount := b.Commit("discount")

	// diff --traffic replays the captured records of the changed API
	// against the new revision: the answers that changed break callers.
	for _, from := range []string{export, s.admin} {
		out, errOut, code = runCLI("diff", recorded, discount, "--dir", b.Dir, "--traffic", from, "--fail-on", "breaking")
		if code != exitInvalid || !strings.Contains(out, "BREAKING api t.order:v1 [response-changed]: responses differ: 3 of 12 replayed (first: trace ") ||
			!strings.Contains(out, "response check: 12 captured records replayed against "+discount[:7]+": 3 differ, 0 not replayable") {
			t.Fatalf("diff --traffic %s with a changed response transform: exit %d\n%s\n%s", from, code, out, errOut)
		}
		if from == export {
			out = strings.NewReplacer(export, "EXPORT", recorded, "<C1>", recorded[:7], "<C1>", discount, "<C2>", discount[:7], "<C2>").Replace(out)
			out = traceRE.ReplaceAllString(stampRE.ReplaceAllString(out, "<TIME>"), "trace <TRACE>")
			gitopsGolden(t, "diff-traffic-responses.txt", out)
		}
	}
	// --replay-limit bounds the records replayed per changed API; 0 turns the check off.
	out, _, _ = runCLI("diff", recorded, discount, "--dir", b.Dir, "--traffic", export, "--replay-limit", "9")
	if !strings.Contains(out, "response check: 9 captured records replayed against "+discount[:7]+": 0 differ") || strings.Contains(out, "response-changed") {
		t.Errorf("diff --traffic --replay-limit 9:\n%s", out)
	}
	out, _, code = runCLI("diff", recorded, discount, "--dir", b.Dir, "--traffic", export, "--replay-limit", "0", "--fail-on", "breaking")
	if code != exitOK || !strings.Contains(out, "response check: not asked (--replay-limit 0)") {
		t.Errorf("diff --traffic --replay-limit 0: exit %d\n%s", code, out)
	}
	// The same revision: every replayed answer identical, nothing breaks.
	out, _, code = runCLI("diff", recorded, recorded, "--dir", b.Dir, "--traffic", export, "--fail-on", "breaking")
	if code != exitOK || !strings.Contains(out, "response check: no API changed") {
		t.Errorf("diff --traffic of one revision: exit %d\n%s", code, out)
	}
	stop()
	out, errOut, code = runCLI("replay", "--from", export, "--rev", "HEAD", "--dir", b.Dir)
	if code != exitInvalid || !strings.Contains(out, "13 records: 9 identical, 3 differ, 1 not replayable (75.0% of replayed records identical)") ||
		!strings.Contains(out, "response:\n    .total changed: 70 → 65") || !strings.Contains(out, ".total changed: 84 → 79") {
		t.Fatalf("replay against a changed transform: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, "path") || strings.Contains(out, "status:") {
		t.Errorf("only the response differs, the report says more:\n%s", out)
	}
	out, _, code = runCLI("replay", "--from", export, "--rev", recorded, "--dir", b.Dir)
	if code != exitOK || !strings.Contains(out, "12 identical") {
		t.Errorf("replay against the recorded revision: exit %d\n%s", code, out)
	}
	out, _, code = runCLI("replay", "--from", export, "--rev", "HEAD", "--dir", b.Dir, "--format", "markdown")
	if code != exitInvalid || !strings.HasPrefix(out, replay.MarkdownMarker+"\n") || !strings.Contains(out, "| `t.order:v1` | 9 | 3 | 1 |") || !strings.Contains(out, "<details>") || !strings.Contains(out, ".total changed: 77 → 72") {
		t.Errorf("replay --format markdown: exit %d\n%s", code, out)
	}

	// A step the records do not have: reported, with the path that differs.
	b.Write("apis/order.yaml", strings.Replace(replayOrderAPI(upstream.URL, ".steps.create.price * .request.body.qty"),
		"  - {id: end, type: end}", "  - id: audit\n    type: http\n    http: {method: POST, url: '"+upstream.URL+"/audit', timeout: 10s}\n  - {id: end, type: end}", 1))
	out, _, code = runCLI("replay", "--from", export, "--dir", b.Dir, "--limit", "3")
	if code != exitInvalid || !strings.Contains(out, "step audit not recorded: the candidate calls it") ||
		!strings.Contains(out, `path: first difference at step end: recorded "end ran", candidate "audit failed"`) || !strings.Contains(out, "status: 200 → 502") {
		t.Errorf("replay against a new step: exit %d\n%s", code, out)
	}
	// What a step sends upstream changed, its answer did not: the step request differs.
	b.Write("apis/order.yaml", strings.Replace(replayOrderAPI(upstream.URL, ".steps.create.price * .request.body.qty"),
		"qty: .request.body.qty}", `qty: .request.body.qty, currency: "EUR"}`, 1))
	out, _, code = runCLI("replay", "--from", export, "--dir", b.Dir, "--limit", "2")
	if code != exitInvalid || !strings.Contains(out, "2 records: 0 identical, 2 differ") ||
		!strings.Contains(out, "step create request body:\n    .currency added: \"EUR\"") || strings.Contains(out, "response:") {
		t.Errorf("replay against a changed step request: exit %d\n%s", code, out)
	}
	if n := upstreamCalls.Load(); n != calls {
		t.Errorf("replay called the upstream %d times", n-calls)
	}

	// Usage and unreadable input.
	for _, args := range [][]string{
		{"replay", "--dir", b.Dir},
		{"replay", "--from", filepath.Join(t.TempDir(), "missing.jsonl"), "--dir", b.Dir},
		{"replay", "--from", export, "--format", "yaml"},
		{"replay", "--from", export, "--limit", "0"},
		{"replay", "--from", export, "--rev", "no-such-rev", "--dir", b.Dir},
		{"replay", "--from", s.admin, "--dir", b.Dir}, // stopped
	} {
		if _, errOut, code := runCLI(args...); code != exitUsage || errOut == "" {
			t.Errorf("%v: exit %d %q, want %d", args, code, errOut, exitUsage)
		}
	}

	// A candidate the gate refuses: its findings, exit 1.
	b.Write("apis/order.yaml", strings.Replace(replayOrderAPI(upstream.URL, "1"), "total: 1", "total: (", 1))
	if _, errOut, code := runCLI("replay", "--from", export, "--dir", b.Dir); code != exitInvalid || !strings.Contains(errOut, "refused by the gate") || !strings.Contains(errOut, "apis/order.yaml:") {
		t.Errorf("replay against a broken config: exit %d\n%s", code, errOut)
	}
	if out, _, code := runCLI("diff", recorded, "--dir", b.Dir, "--traffic", export); code != exitOK ||
		!strings.Contains(out, "[revision-invalid]") || !strings.Contains(out, "response check: the gate refuses the new revision: no response check") {
		t.Errorf("diff --traffic against a broken working tree: exit %d\n%s", code, out)
	}
}
