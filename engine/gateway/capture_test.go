package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/store"
)

// TestAccessLogCapture: with storage.accessLog.capture on, a signed and
// encrypted request's record keeps the decrypted body, the query, the
// response and the http step's raw request and result whole (maxBodyChars
// cuts every other record), in the bbolt file as the admin API shows it and
// in the JSON-lines export alike; a request over maxBytes is recorded as
// usual and says why; no signature or key is in any of it.
func TestAccessLogCapture(t *testing.T) {
	const encKey, signKey = "CaptureKey-ABCD!", "CaptureSign-Secret-1"
	t.Setenv("DATABUS_T_CAP_ENC", encKey)
	t.Setenv("DATABUS_T_CAP_SIGN", signKey)
	pad := strings.Repeat("p", 200)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var in struct {
			OrderNo string `json:"orderNo"`
		}
		json.Unmarshal(b, &in)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"id": "ord-" + in.OrderNo, "pad": pad})
	}))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	export := filepath.Join(t.TempDir(), "access.jsonl")
	writeRepo(t, dir, map[string]string{
		"databus.yaml": `apiVersion: databus/v1
kind: Settings
storage:
  accessLog:
    maxBodyChars: 10
    export: 'file:` + export + `'
    capture: {sampleRatio: 1, maxBytes: 2048}
`,
		"credentials/shop.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: shop\nencryptionKey: {secretRef: 'env:DATABUS_T_CAP_ENC'}\nsignatureKey: {secretRef: 'env:DATABUS_T_CAP_SIGN'}\n",
		"apis/order.yaml": `apiVersion: databus/v1
kind: Api
code: t.order
version: v1
status: online
methods: [POST]
transforms:
  response: '{id: .steps.create.id, region: .request.query.region}'
steps:
  - {id: start, type: start}
  - id: create
    type: http
    http: {method: POST, url: '` + upstream.URL + `/orders', timeout: 10s}
    transforms:
      request: '{orderNo: .request.body.orderNo}'
  - {id: end, type: end}
`,
	})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	c := &client.Client{BaseURL: ts.portalURL + basePath, HTTP: ts.client,
		Credential: client.Credential{AppID: "shop", EncryptionKey: []byte(encKey), SignatureKey: []byte(signKey)}}
	send := func(query url.Values, body string) string {
		t.Helper()
		req, err := c.Prepare(http.MethodPost, "t.order", query, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Send(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Envelope.Code != 200 || !resp.Encrypted {
			t.Fatalf("call: %d %s (encrypted %v)", resp.Envelope.Code, resp.Envelope.Message, resp.Encrypted)
		}
		return resp.Envelope.TraceID
	}
	body := `{"orderNo":"A-1001","note":"` + strings.Repeat("n", 40) + `"}`
	kept := send(url.Values{"region": {"eu"}, "signature": {"not-kept"}}, body)
	big := send(nil, `{"orderNo":"B","note":"`+strings.Repeat("b", 3000)+`"}`)

	var page struct {
		Total int             `json:"total"`
		List  []*store.Record `json:"list"`
	}
	waitFor(t, pollTimeout, "both records", func() bool {
		page.List = nil
		ts.adminData(t, "/databus/gateway/access-log/page?apiCode=t.order", &page)
		return page.Total == 2
	})
	page.List = nil // decoding into the old records would merge them
	ts.adminData(t, "/databus/gateway/access-log/page?captured=true", &page)
	if page.Total != 1 || page.List[0].TraceID != kept {
		t.Fatalf("captured=true lists %d records, want only %s", page.Total, kept)
	}
	checkKept := func(where string, r *store.Record) {
		t.Helper()
		if !r.Capture.Kept() || r.Capture.Query != "region=eu" {
			t.Errorf("%s: capture %+v, want kept with query region=eu (no signature)", where, r.Capture)
		}
		if r.RequestBody != body || r.ResponseBody != `{"id":"ord-A-1001","region":"eu"}` {
			t.Errorf("%s: bodies %q / %q, want whole", where, r.RequestBody, r.ResponseBody)
		}
		if r.RequestHeaders["Zt-Signature"] != "***" {
			t.Errorf("%s: signature header %q", where, r.RequestHeaders["Zt-Signature"])
		}
		var create *store.StepRecord
		for i := range r.StepResults {
			if r.StepResults[i].ID == "create" {
				create = &r.StepResults[i]
			}
		}
		if create == nil {
			t.Fatalf("%s: no step create in %+v", where, r.StepResults)
		}
		resp, _ := create.Response.(map[string]any)
		req, _ := create.Request.(map[string]any)
		if resp == nil || !strings.Contains(resp["body"].(string), pad) || resp["status"] != float64(200) ||
			req == nil || req["body"] != `{"orderNo":"A-1001"}` {
			t.Errorf("%s: step create kept %+v", where, create)
		}
	}
	checkKept("admin page", page.List[0])
	var got store.Record
	ts.adminData(t, "/databus/gateway/access-log/get?id="+page.List[0].ID, &got)
	checkKept("admin get", &got)
	page.List = nil
	ts.adminData(t, "/databus/gateway/access-log/page?traceId="+big, &page)
	bigFull := page.List[0]
	if bigFull.Capture == nil || bigFull.Capture.Kept() || !strings.Contains(bigFull.Capture.Skipped, "maxBytes") ||
		!strings.Contains(bigFull.RequestBody, "truncated") {
		t.Errorf("over budget: capture %+v, body %q: want recorded as usual and marked", bigFull.Capture, bigFull.RequestBody)
	}

	// The export carries the same capture.
	var lines []*store.Record
	waitFor(t, pollTimeout, "two exported lines", func() bool {
		lines = nil
		f, err := os.Open(export)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r store.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				lines = append(lines, &r)
			}
		}
		return len(lines) == 2
	})
	for _, r := range lines {
		if r.TraceID == kept {
			checkKept("export", r)
		}
	}
	raw, _ := os.ReadFile(export)
	for _, secret := range []string{encKey, signKey, "not-kept"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("%q is in the export", secret)
		}
	}

	mf := ts.metricFamilies(t)
	for result, want := range map[string]float64{"kept": 1, "over_budget": 1, "streamed": 0} {
		if v := metricValue(mf, "databus_accesslog_captured_total", map[string]string{"result": result}); v != want {
			t.Errorf("databus_accesslog_captured_total{result=%q} = %v, want %v", result, v, want)
		}
	}
}
