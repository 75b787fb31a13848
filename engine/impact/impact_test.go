package impact

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/traffic"
)

const (
	settings = "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n"
	orderAPI = `apiVersion: databus/v1
kind: Api
code: order.create
version: v1
status: online
methods: [GET, POST]
auth: {credentials: [shop, mall]}
policies: {rateLimit: std}
input:
  type: object
  properties:
    orderNo: {type: string}
    qty: {type: integer}
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {source: 'function main(c) { return {ok: true} }'}
  - {id: end, type: end}
`
	stdPolicy = "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: std\nlimit: 100\nwindowSeconds: 60\nkeyTemplate: '${appId}'\n"
	shopCred  = "apiVersion: databus/v1\nkind: Credential\nappId: shop\nsignatureType: MD5\nencryptionType: NONE\n"
	mallCred  = "apiVersion: databus/v1\nkind: Credential\nappId: mall\nsignatureType: MD5\nencryptionType: NONE\n"
)

func baseFiles() map[string]string {
	return map[string]string{
		"databus.yaml":          settings,
		"apis/order.yaml":       orderAPI,
		"policies/std.yaml":     stdPolicy,
		"credentials/shop.yaml": shopCred,
		"credentials/mall.yaml": mallCred,
	}
}

// side writes files to a folder and builds it through the gate.
func side(t *testing.T, rev string, files map[string]string) *Side {
	t.Helper()
	dir := t.TempDir()
	for rel, body := range files {
		if body == "" {
			continue // removed
		}
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Build(context.Background(), rev, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// rec is an accepted call of order.create:v1.
func rec(app, method, body, ip, tenant string, at time.Duration) *store.Record {
	return &store.Record{APICode: "order.create", Version: "v1", AppID: app, Method: method, RequestBody: body, ClientIP: ip,
		TenantID: tenant, HTTPStatus: 200, StartedAt: t0.Add(at)}
}

func baseTraffic() []*store.Record {
	var rs []*store.Record
	for i := range 3 {
		rs = append(rs, rec("shop", "POST", `{"orderNo":"A1","qty":2}`, "10.0.0.1", "t1", time.Duration(i)*time.Second))
	}
	rs = append(rs, rec("shop", "POST", `{"orderNo":"A2","qty":"3"}`, "10.0.0.1", "t1", 5*time.Second)) // refused by the old schema
	rs = append(rs, rec("mall", "GET", "", "192.168.1.7", "", 10*time.Second))
	refused := rec("intruder", "POST", `{}`, "6.6.6.6", "", 11*time.Second)
	refused.HTTPStatus, refused.ErrorCode = 401, "credential"
	return append(rs, refused)
}

func analyze(t *testing.T, oldFiles, newFiles map[string]string, recs []*store.Record, rc ResponseCheck) []Finding {
	t.Helper()
	old, nw := side(t, "old", oldFiles), side(t, "new", newFiles)
	if len(old.Errors) > 0 {
		t.Fatalf("the old revision is invalid: %v", old.Errors)
	}
	meters := Meters(old, nw)
	g := traffic.New("test", traffic.Options{Meters: meters})
	for _, r := range recs {
		g.Add(r)
	}
	g.Finish()
	return Analyze(Input{Old: old, New: nw, Traffic: g, Meters: meters, Responses: rc})
}

func with(edits map[string]string) map[string]string {
	f := baseFiles()
	for k, v := range edits {
		f[k] = v
	}
	return f
}

func breaking(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Severity == Breaking {
			out = append(out, f.Kind+" "+f.Subject.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestAnalyzeBreaking(t *testing.T) {
	api := func(old, new string) map[string]string {
		return with(map[string]string{"apis/order.yaml": strings.Replace(orderAPI, old, new, 1)})
	}
	tests := []struct {
		name    string
		new     map[string]string
		recs    []*store.Record
		want    []string
		message string // in the first breaking finding's message
	}{
		{"unchanged", baseFiles(), nil, nil, ""},
		{"description only", api("status: online", "description: hi\nstatus: online"), nil, nil, ""},
		{"api removed", with(map[string]string{"apis/order.yaml": ""}), nil,
			[]string{"api-removed api order.create:v1"}, "removed while called: 5 accepted requests from 2 callers"},
		{"api offline", api("status: online", "status: offline"), nil,
			[]string{"api-not-online api order.create:v1"}, "status online → offline"},
		{"api deprecated", api("status: online", "status: deprecated"), nil,
			[]string{"api-not-online api order.create:v1"}, "status online → deprecated"},
		{"method removed", api("methods: [GET, POST]", "methods: [POST]"), nil,
			[]string{"method-removed api order.create:v1"}, "method GET removed: 1 accepted requests used it"},
		{"unused method removed", api("methods: [GET, POST]", "methods: [GET, POST]"), nil, nil, ""},
		{"input now requires a field", api("  properties:", "  required: [orderNo]\n  properties:"),
			append(baseTraffic(), rec("mall", "POST", `{"qty":1}`, "192.168.1.7", "", 20*time.Second)),
			[]string{"input-refused api order.create:v1"}, "refuses 1 of 4 recorded bodies the old one accepted; first: invalid request body: missing required field 'orderNo'"},
		{"input narrowed", api("orderNo: {type: string}", "orderNo: {type: string, pattern: '^A1$'}"),
			nil, nil, ""}, // A2's body was refused by the old schema too (qty "3")
		{"input narrowed for accepted", api("orderNo: {type: string}", "orderNo: {type: string, maxLength: 1}"),
			nil, []string{"input-refused api order.create:v1"}, "refuses 3 of 3 recorded bodies"},
		{"caller dropped", api("credentials: [shop, mall]", "credentials: [shop]"), nil,
			[]string{"caller-refused api order.create:v1"}, "no longer lists mall (1 accepted requests)"},
		{"policy lowered below peak", with(map[string]string{"policies/std.yaml": strings.Replace(stdPolicy, "limit: 100", "limit: 3", 1)}), nil,
			[]string{"rate-limit policy std"}, "limit 3 per 1m0s (fixed-window) is below the observed peak of 4 accepted requests in one window for key shop"},
		{"policy lowered above peak", with(map[string]string{"policies/std.yaml": strings.Replace(stdPolicy, "limit: 100", "limit: 4", 1)}), nil, nil, ""},
		{"api switched to a stricter policy", with(map[string]string{
			"policies/tight.yaml": "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: tight\nlimit: 2\nwindowSeconds: 10\nkeyTemplate: '${clientIp}'\n",
			"apis/order.yaml":     strings.Replace(orderAPI, "rateLimit: std", "rateLimit: tight", 1)}), nil,
			[]string{"rate-limit api order.create:v1"}, "order.create:v1 now use policy tight: limit 2 per 10s (fixed-window) is below the observed peak of 4 accepted requests in one window for key 10.0.0.1"},
		{"credential removed", with(map[string]string{"credentials/mall.yaml": "", "apis/order.yaml": strings.Replace(orderAPI, "[shop, mall]", "[shop]", 1)}), nil,
			[]string{"caller-refused api order.create:v1", "credential-removed credential mall"}, ""},
		{"credential disabled", with(map[string]string{"credentials/shop.yaml": shopCred + "enabled: false\n"}), nil,
			[]string{"credential-disabled credential shop"}, "disabled while in use (4 accepted requests to order.create:v1)"},
		{"allowedIps narrowed", with(map[string]string{"credentials/mall.yaml": mallCred + "allowedIps: [10.0.0.0/8]\n"}), nil,
			[]string{"credential-ips credential mall"}, "exclude 192.168.1.7 callers came from (1 accepted requests)"},
		{"allowedIps keep callers", with(map[string]string{"credentials/shop.yaml": shopCred + "allowedIps: [10.0.0.0/8]\n"}), nil, nil, ""},
		{"tenant pinned", with(map[string]string{"credentials/shop.yaml": shopCred + "tenantId: t2\n"}), nil,
			[]string{"credential-tenant credential shop"}, `tenantId pinned to "t2": 4 accepted requests ran as t1`},
		{"tenant pinned as used", with(map[string]string{"credentials/shop.yaml": shopCred + "tenantId: t1\n"}), nil, nil, ""},
		{"signature type changed", with(map[string]string{"credentials/mall.yaml": strings.Replace(mallCred, "MD5", "SHA256", 1)}), nil,
			[]string{"credential-crypto credential mall"}, "signatureType MD5 → SHA256"},
		{"truncated bodies are not judged", api("  properties:", "  required: [orderNo]\n  properties:"),
			[]*store.Record{rec("shop", "POST", `{"qty":1`+store.Truncate(strings.Repeat("x", 50), 10)[10:], "10.0.0.1", "", 0)}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := tt.recs
			if recs == nil {
				recs = baseTraffic()
			}
			fs := analyze(t, baseFiles(), tt.new, recs, nil)
			got := breaking(fs)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("breaking findings %v, want %v\n%v", got, tt.want, fs)
			}
			if tt.message != "" && !strings.Contains(fs[0].Message, tt.message) {
				t.Errorf("message %q lacks %q", fs[0].Message, tt.message)
			}
			for _, f := range fs {
				if f.Severity == Breaking && len(f.Callers) == 0 {
					t.Errorf("%s has no callers", f.Kind)
				}
			}
		})
	}
}

// The seam for databus replay: an API whose replayed responses differ is
// breaking.
func TestAnalyzeResponses(t *testing.T) {
	rc := func(id string) (ResponseResult, bool) {
		if id != "order.create:v1" {
			return ResponseResult{}, false
		}
		return ResponseResult{Compared: 5, Differ: 2, First: "/orderNo: missing"}, true
	}
	fs := analyze(t, baseFiles(), baseFiles(), baseTraffic(), rc)
	if got := breaking(fs); fmt.Sprint(got) != "[response-changed api order.create:v1]" || !strings.Contains(fs[0].Message, "responses differ: 2 of 5 replayed (first: /orderNo: missing)") {
		t.Fatalf("%v", fs)
	}
	same := func(string) (ResponseResult, bool) { return ResponseResult{Compared: 5}, true }
	if got := breaking(analyze(t, baseFiles(), baseFiles(), baseTraffic(), same)); got != nil {
		t.Fatalf("identical responses: %v", got)
	}
}

// Only traffic the old revision accepted counts: calls refused by the
// security chain (any appId a client made up) break nothing.
func TestAnalyzeIgnoresRefusedTraffic(t *testing.T) {
	var recs []*store.Record
	for _, r := range baseTraffic() {
		r.HTTPStatus, r.ErrorCode = 401, "signature"
		recs = append(recs, r)
	}
	if got := breaking(analyze(t, baseFiles(), with(map[string]string{"apis/order.yaml": ""}), recs, nil)); got != nil {
		t.Fatalf("%v", got)
	}
}

// An invalid new revision is a warning (the gateway keeps the old one), and
// what loaded is still judged.
func TestAnalyzeInvalidRevision(t *testing.T) {
	bad := with(map[string]string{"apis/order.yaml": strings.Replace(orderAPI, "rateLimit: std", "rateLimit: nosuch", 1) + "\n"})
	fs := analyze(t, baseFiles(), bad, baseTraffic(), nil)
	if len(fs) == 0 || fs[0].Kind != KindRevisionInvalid || fs[0].Severity != Warning {
		t.Fatalf("%v", fs)
	}
}

// A body the access log cut cannot be judged: it is counted as unchecked,
// never as refused or accepted.
func TestAnalyzeTruncatedBodies(t *testing.T) {
	cut := rec("shop", "POST", store.Truncate(`{"orderNo":"A9","qty":1,"note":"`+strings.Repeat("x", 100)+`"}`, 40), "10.0.0.1", "", 30*time.Second)
	newAPI := with(map[string]string{"apis/order.yaml": strings.Replace(orderAPI, "  properties:", "  required: [orderNo]\n  properties:", 1)})
	fs := analyze(t, baseFiles(), newAPI, append(baseTraffic()[:3], cut), nil)
	if len(fs) == 0 || fs[0].Kind != KindUnknownBodies || fs[0].Severity != Warning ||
		!strings.Contains(fs[0].Message, "3 recorded bodies pass it, 1 could not be checked (1 truncated by storage.accessLog.maxBodyChars, 0 outside the sample)") {
		t.Fatalf("%v", fs)
	}
}
