package gateway

// The access log and the metrics, end to end: portal calls over loopback
// HTTP, records read back through the admin API from a real bbolt file,
// /metrics parsed as Prometheus text.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// echoAPI answers the request body and a padding, so that both bodies of
// its record are longer than a small maxBodyChars.
const echoAPI = `apiVersion: databus/v1
kind: Api
code: t.echo
version: v1
status: online
methods: [GET, POST]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {lang: javascript, timeout: 10s, source: 'function main(ctx) { return {echo: ctx.request.body, pad: "0123456789abcdefghij"} }'}
  - {id: end, type: end}
`

// limitedAPI allows one call a minute.
const limitedAPI = `apiVersion: databus/v1
kind: Api
code: t.lim
version: v1
status: online
methods: [GET]
policies: {rateLimit: tight}
steps:
  - {id: start, type: start}
  - {id: end, type: end}
`

const tightPolicy = `apiVersion: databus/v1
kind: RateLimitPolicy
name: tight
algorithm: fixed-window
limit: 1
windowSeconds: 600
`

// accessRecord is an access-log record as the admin API answers it.
type accessRecord struct {
	ID             string            `json:"id"`
	TraceID        string            `json:"traceId"`
	APICode        string            `json:"apiCode"`
	Version        string            `json:"version"`
	AppID          string            `json:"appId"`
	ClientIP       string            `json:"clientIp"`
	Method         string            `json:"method"`
	Path           string            `json:"path"`
	RequestHeaders map[string]string `json:"requestHeaders"`
	RequestBody    string            `json:"requestBody"`
	ResponseBody   string            `json:"responseBody"`
	HTTPStatus     int               `json:"httpStatus"`
	Status         int               `json:"status"`
	ErrorCode      string            `json:"errorCode"`
	ErrorMessage   string            `json:"errorMessage"`
	DurationMs     float64           `json:"durationMs"`
	StepResults    []struct {
		ID    string `json:"id"`
		Type  string `json:"type"`
		Error string `json:"error"`
	} `json:"stepResults"`
	Extra map[string]any `json:"extra"`
}

// adminData GETs path on the admin listener and decodes data into v.
func (ts *testServer) adminData(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := ts.client.Get(ts.adminURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Code int             `json:"code"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode == 200 && v != nil {
		if err := json.Unmarshal(reply.Data, v); err != nil {
			t.Fatalf("GET %s: data: %v", path, err)
		}
	}
	return resp.StatusCode
}

// accessRecordOf waits for the one record of trace and returns it.
func (ts *testServer) accessRecordOf(t *testing.T, trace string) accessRecord {
	t.Helper()
	var page struct {
		Total int            `json:"total"`
		List  []accessRecord `json:"list"`
	}
	waitFor(t, pollTimeout, "the access-log record of "+trace, func() bool {
		ts.adminData(t, "/databus/gateway/access-log/page?traceId="+url.QueryEscape(trace), &page)
		return page.Total > 0
	})
	if page.Total != 1 || len(page.List) != 1 {
		t.Fatalf("trace %s: %d records: %+v", trace, page.Total, page.List)
	}
	return page.List[0]
}

// portalSend makes a portal request and returns its status, checking the trace
// id is echoed.
func (ts *testServer) portalSend(t *testing.T, method, path, trace string, header http.Header, body string) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.portalURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if trace != "" {
		req.Header.Set("X-Trace-Id", trace)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s %s: not an envelope: %v", method, path, err)
	}
	if env.Code != resp.StatusCode || (trace != "" && (env.TraceID != trace || resp.Header.Get("X-Trace-Id") != trace)) {
		t.Errorf("%s %s: HTTP %d, envelope %+v, X-Trace-Id %q", method, path, resp.StatusCode, env, resp.Header.Get("X-Trace-Id"))
	}
	return resp.StatusCode
}

func TestAccessLogThroughThePortal(t *testing.T) {
	dir := newRepo(t, map[string]string{"echo.yaml": echoAPI, "lim.yaml": limitedAPI})
	writeRepo(t, dir, map[string]string{
		"policies/tight.yaml": tightPolicy,
		"databus.yaml": testSettings + `  maxBodyBytes: 64
storage:
  accessLog:
    maxBodyChars: 20
    redactHeaders: [authorization, X-Secret-Token]
`,
	})
	opts := Options{Dir: dir, NoWatch: true}
	ts := startServer(t, opts)

	long := `{"msg":"0123456789012345678901234567890"}` // 41 characters, under maxBodyBytes
	hdr := http.Header{
		"Authorization":  {"Bearer very-secret-token"},
		"X-Secret-Token": {"hush-hush"},
		"X-Visible":      {"yes"},
		"Zt-App-Id":      {"shop"},
		"Content-Type":   {"application/json"},
	}
	type want struct {
		http, status int
		errorCode    string
		apiCode      string
	}
	calls := []struct {
		name, method, path, trace, body string
		header                          http.Header
		want                            want
	}{
		{"ok", "POST", basePath + "/t.echo/v1", "obs-ok", long, hdr, want{200, 0, "", "t.echo"}},
		{"no such API", "GET", basePath + "/t.missing/v1", "obs-404", "", nil, want{404, 1, "route", ""}},
		{"not a route", "GET", basePath + "/T.ECHO/v1/extra", "obs-404b", "", nil, want{404, 1, "route", ""}},
		{"method", "PUT", basePath + "/t.echo/v1", "obs-405", "", nil, want{405, 1, "method", "t.echo"}},
		{"too large", "POST", basePath + "/t.echo/v1", "obs-413", strings.Repeat("x", 100), nil, want{413, 1, "body", "t.echo"}}, // the API is known before the body is read
		{"limit: first", "GET", basePath + "/t.lim/v1", "obs-rl-1", "", nil, want{200, 0, "", "t.lim"}},
		{"limit: second", "GET", basePath + "/t.lim/v1", "obs-rl-2", "", nil, want{429, 1, "rate_limit", "t.lim"}},
		{"headers too large", "GET", basePath + "/t.echo/v1", "obs-431", "", http.Header{"X-Big": {strings.Repeat("b", 70<<10)}}, want{431, 1, "header", ""}},
	}
	for _, c := range calls {
		if st := ts.portalSend(t, c.method, c.path, c.trace, c.header, c.body); st != c.want.http {
			t.Fatalf("%s: HTTP %d, want %d", c.name, st, c.want.http)
		}
	}
	ids := map[string]string{}
	for _, c := range calls {
		r := ts.accessRecordOf(t, c.trace)
		ids[c.trace] = r.ID
		if r.HTTPStatus != c.want.http || r.Status != c.want.status || r.ErrorCode != c.want.errorCode || r.APICode != c.want.apiCode ||
			r.Method != c.method || r.Path != strings.SplitN(c.path, "?", 2)[0] || r.ClientIP != "127.0.0.1" || r.DurationMs < 0 {
			t.Errorf("%s: record %+v; want %+v", c.name, r, c.want)
		}
		if (c.want.http >= 400) != (r.ErrorMessage != "") {
			t.Errorf("%s: errorMessage %q", c.name, r.ErrorMessage)
		}
	}

	ok := ts.accessRecordOf(t, "obs-ok")
	// Redacted headers (any case of the name in redactHeaders), the others as sent.
	if ok.RequestHeaders["Authorization"] != "***" || ok.RequestHeaders["X-Secret-Token"] != "***" ||
		ok.RequestHeaders["X-Visible"] != "yes" || ok.RequestHeaders["X-Trace-Id"] != "obs-ok" || ok.AppID != "shop" {
		t.Errorf("headers of the record: %v (appId %q)", ok.RequestHeaders, ok.AppID)
	}
	// Bodies cut at 20 characters, with the marker.
	if want := long[:20] + "…(truncated, 41 chars in all)"; ok.RequestBody != want {
		t.Errorf("request body %q; want %q", ok.RequestBody, want)
	}
	if !strings.HasSuffix(ok.ResponseBody, " chars in all)") || !strings.Contains(ok.ResponseBody, "…(truncated, ") ||
		len([]rune(strings.SplitN(ok.ResponseBody, "…", 2)[0])) != 20 {
		t.Errorf("response body %q; want 20 characters and the marker", ok.ResponseBody)
	}
	if len(ok.StepResults) != 3 || ok.StepResults[1].ID != "s" {
		t.Errorf("steps %+v", ok.StepResults)
	}
	// The rate-limit decision is among the step results of the refusal.
	limited := ts.accessRecordOf(t, "obs-rl-2")
	found := false
	for _, s := range limited.StepResults {
		if s.ID == "rateLimit" {
			found = true
			if !strings.Contains(s.Error, "tight") || !strings.Contains(s.Error, "limit reached") {
				t.Errorf("rateLimit step %+v", s)
			}
		}
	}
	if !found {
		t.Errorf("429 record has no rateLimit step: %+v", limited.StepResults)
	}
	// The 431 record is bounded too.
	big := ts.accessRecordOf(t, "obs-431")
	if v := big.RequestHeaders["X-Big"]; len(v) > 100 || !strings.Contains(v, "truncated") {
		t.Errorf("431 record keeps a header of %d bytes", len(v))
	}
	// A W3C traceparent names the trace.
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ts.portalSend(t, "GET", basePath+"/t.echo/v1", "", http.Header{"Traceparent": {tp}}, "")
	if r := ts.accessRecordOf(t, "4bf92f3577b34da6a3ce929d0e0e4736"); r.HTTPStatus != 200 {
		t.Errorf("traceparent record %+v", r)
	}

	// Restart on the same file: every record is still there.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	ts2 := startServer(t, opts)
	for _, c := range calls {
		r := ts2.accessRecordOf(t, c.trace)
		if r.ID != ids[c.trace] || r.HTTPStatus != c.want.http {
			t.Errorf("after restart, %s: %+v", c.trace, r)
		}
		var byID accessRecord
		if st := ts2.adminData(t, "/databus/gateway/access-log/get?id="+r.ID, &byID); st != 200 || byID.TraceID != c.trace {
			t.Errorf("after restart, get?id=%s: %d %+v", r.ID, st, byID)
		}
	}
	var all struct {
		Total int `json:"total"`
	}
	ts2.adminData(t, "/databus/gateway/access-log/page", &all)
	if all.Total != len(calls)+1 {
		t.Errorf("after restart: %d records; want %d", all.Total, len(calls)+1)
	}
}

// TestAuditOff: apiPortal.enableAudit false writes no record.
func TestAuditOff(t *testing.T) {
	dir := newRepo(t, map[string]string{"echo.yaml": echoAPI})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"  enableAudit: false\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	for i := 0; i < 5; i++ {
		ts.portalSend(t, "GET", basePath+"/t.echo/v1", fmt.Sprintf("off-%d", i), nil, "")
	}
	ts.portalSend(t, "GET", basePath+"/t.none/v1", "off-404", nil, "")
	// Turning it on by reload makes the next call recorded (a barrier:
	// the earlier calls would have been written before it).
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"  enableAudit: true\n")
	if res := ts.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload: %+v", res)
	}
	ts.portalSend(t, "GET", basePath+"/t.echo/v1", "on-1", nil, "")
	ts.accessRecordOf(t, "on-1")
	var all struct {
		Total int `json:"total"`
	}
	ts.adminData(t, "/databus/gateway/access-log/page", &all)
	if all.Total != 1 {
		t.Errorf("%d records; want only the one made with audit on", all.Total)
	}
}

// TestAccessLogExport: storage.accessLog.export writes every record as one
// JSON line too, relative paths inside the repository, and the file is
// complete once the server is closed.
func TestAccessLogExport(t *testing.T) {
	dir := newRepo(t, map[string]string{"echo.yaml": echoAPI})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"storage:\n  accessLog: {export: 'file:access.jsonl'}\n")
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	want := []string{"exp-1", "exp-2", "exp-3", "exp-404"}
	for _, tr := range want[:3] {
		ts.portalSend(t, "GET", basePath+"/t.echo/v1", tr, nil, "")
	}
	ts.portalSend(t, "GET", basePath+"/t.none/v1", "exp-404", nil, "")
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	data, err := os.ReadFile(filepath.Join(dir, "access.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var r accessRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.ID == "" {
			t.Fatalf("export line %q: %v", line, err)
		}
		got = append(got, r.TraceID)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("exported traces %v; want %v", got, want)
	}
}

// metricFamilies fetches /metrics and parses it.
func (ts *testServer) metricFamilies(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := ts.client.Get(ts.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

// metricSeries returns the metric of family name whose labels are exactly
// labels, or nil.
func metricSeries(mf map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	f := mf[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		return m
	}
	return nil
}

// metricValue is a counter's or gauge's value, or a histogram's sample count;
// -1 when the series is absent.
func metricValue(mf map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	m := metricSeries(mf, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

func TestMetrics(t *testing.T) {
	// A port nobody listens on: the http step fails (502).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer up.Close()

	dir := newRepo(t, map[string]string{
		"one.yaml":  scriptAPI("t.one", "online", "one"),
		"down.yaml": httpAPI("t.down", "http://"+closed+"/x"),
		"up.yaml":   httpAPI("t.up", up.URL+"/y"),
		"lim.yaml":  limitedAPI,
	})
	writeRepo(t, dir, map[string]string{"policies/tight.yaml": tightPolicy, "databus.yaml": testSettings + "  maxBodyBytes: 64\n"})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	// configInfo is the revision label of the one databus_config_info series.
	configInfo := func(mf map[string]*dto.MetricFamily) string {
		t.Helper()
		ms := mf["databus_config_info"].GetMetric()
		if len(ms) != 1 || len(ms[0].GetLabel()) != 1 || ms[0].GetLabel()[0].GetName() != "revision" || ms[0].GetGauge().GetValue() != 1 {
			t.Fatalf("databus_config_info = %v; want one series {revision} = 1", ms)
		}
		return ms[0].GetLabel()[0].GetValue()
	}
	rev1 := configInfo(ts.metricFamilies(t))
	if rev1 == "" {
		t.Fatal("databus_config_info has an empty revision")
	}

	var traces []string
	call := func(method, code string, want int) {
		t.Helper()
		trace := fmt.Sprintf("metrics-trace-%02d", len(traces))
		traces = append(traces, trace)
		if st := ts.portalSend(t, method, basePath+"/"+code+"/v1", trace, nil, ""); st != want {
			t.Fatalf("%s %s: %d, want %d", method, code, st, want)
		}
	}
	for i := 0; i < 3; i++ {
		call("GET", "t.one", 200)
	}
	call("GET", "t.up", 200)
	call("GET", "t.down", 502)
	call("GET", "t.missing", 404)
	call("PUT", "t.one", 405)
	call("GET", "t.lim", 200)
	call("GET", "t.lim", 429)
	if st := ts.portalSend(t, "POST", basePath+"/t.one/v1", "metrics-trace-big", nil, strings.Repeat("x", 65)); st != 413 {
		t.Fatalf("a body over maxBodyBytes: %d", st)
	}
	traces = append(traces, "metrics-trace-big")
	// Headers too large are refused under their own reason, not as a body.
	if st := ts.portalSend(t, "GET", basePath+"/t.one/v1", "metrics-trace-431", http.Header{"X-Big": {strings.Repeat("h", 70<<10)}}, ""); st != 431 {
		t.Fatalf("headers over the portal's limit: %d", st)
	}
	traces = append(traces, "metrics-trace-431")
	// A raw path with a query and odd segments must not become a label.
	ts.portalSend(t, "GET", basePath+"/t.one/v1/../../secret?x=/etc/passwd", "metrics-trace-raw", nil, "")
	traces = append(traces, "metrics-trace-raw")

	// A failed reload, then a good one.
	writeFile(t, filepath.Join(dir, "apis", "one.yaml"), scriptAPI("t.one", "online", "one")+"bogus: 1\n")
	if res := ts.Reload(context.Background(), "test"); res.OK {
		t.Fatalf("invalid reload succeeded: %+v", res)
	}
	mf := ts.metricFamilies(t)
	if v := metricValue(mf, "databus_config_last_reload_success", nil); v != 0 {
		t.Errorf("databus_config_last_reload_success after a failed reload = %v; want 0", v)
	}
	if v := metricValue(mf, "databus_config_reloads_total", map[string]string{"result": "failed"}); v != 1 {
		t.Errorf(`databus_config_reloads_total{result="failed"} = %v; want 1`, v)
	}
	// The revision served is still the first.
	if rev := configInfo(mf); rev != rev1 {
		t.Errorf("databus_config_info{revision=%s} after a failed reload; was %s", rev, rev1)
	}
	ts1 := metricValue(mf, "databus_config_last_reload_timestamp_seconds", nil)
	if at := float64(ts.LastReload().At.UnixNano()) / 1e9; ts1 < at-0.001 || ts1 > at+0.001 {
		t.Errorf("databus_config_last_reload_timestamp_seconds = %v; last reload at %v", ts1, at)
	}

	writeFile(t, filepath.Join(dir, "apis", "one.yaml"), scriptAPI("t.one", "online", "two"))
	if res := ts.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload: %+v", res)
	}

	// Every request has its record: the access log has written.
	for _, tr := range traces {
		ts.accessRecordOf(t, tr)
	}
	waitFor(t, pollTimeout, "the access-log writer's metrics", func() bool {
		mf = ts.metricFamilies(t)
		return metricValue(mf, "databus_accesslog_write_seconds", nil) > 0 && metricValue(mf, "databus_accesslog_queue_depth", nil) == 0
	})

	checks := []struct {
		name   string
		labels map[string]string
		want   float64 // -2: present, any value
	}{
		{"databus_requests_total", map[string]string{"api": "t.one", "version": "v1", "code": "200"}, 3},
		{"databus_requests_total", map[string]string{"api": "t.one", "version": "v1", "code": "405"}, 1},
		{"databus_requests_total", map[string]string{"api": "t.up", "version": "v1", "code": "200"}, 1},
		{"databus_requests_total", map[string]string{"api": "t.down", "version": "v1", "code": "502"}, 1},
		{"databus_requests_total", map[string]string{"api": "t.lim", "version": "v1", "code": "200"}, 1},
		{"databus_requests_total", map[string]string{"api": "t.lim", "version": "v1", "code": "429"}, 1},
		{"databus_requests_total", map[string]string{"api": "", "version": "", "code": "404"}, 2},
		{"databus_request_duration_seconds", map[string]string{"api": "t.one", "version": "v1"}, 5}, // with the 413: the API is known before the body is read
		{"databus_request_duration_seconds", map[string]string{"api": "", "version": ""}, 3},        // two 404s, the 431
		{"databus_step_duration_seconds", map[string]string{"type": "script"}, 3},
		{"databus_step_duration_seconds", map[string]string{"type": "http"}, 2},
		{"databus_step_duration_seconds", map[string]string{"type": "start"}, -2},
		{"databus_portal_refusals_total", map[string]string{"reason": "route"}, 2},
		{"databus_portal_refusals_total", map[string]string{"reason": "method"}, 1},
		{"databus_portal_refusals_total", map[string]string{"reason": "rate_limit"}, 1},
		{"databus_portal_refusals_total", map[string]string{"reason": "body"}, 1},
		{"databus_portal_refusals_total", map[string]string{"reason": "header"}, 1},
		{"databus_requests_total", map[string]string{"api": "", "version": "", "code": "431"}, 1},
		{"databus_requests_total", map[string]string{"api": "t.one", "version": "v1", "code": "413"}, 1},
		{"databus_upstream_errors_total", map[string]string{"api": "t.down", "version": "v1", "step": "up"}, 1},
		{"databus_ratelimit_decisions_total", map[string]string{"policy": "tight", "outcome": "allowed"}, 1},
		{"databus_ratelimit_decisions_total", map[string]string{"policy": "tight", "outcome": "rejected"}, 1},
		{"databus_config_last_reload_success", nil, 1},
		{"databus_config_reloads_total", map[string]string{"result": "changed"}, 2}, // start, then the good reload
		{"databus_config_reloads_total", map[string]string{"result": "failed"}, 1},
		{"databus_accesslog_queue_depth", nil, 0},
		{"databus_accesslog_dropped_total", nil, 0},
		{"databus_accesslog_write_seconds", nil, -2},
		{"databus_config_last_reload_timestamp_seconds", nil, -2},
	}
	for _, c := range checks {
		v := metricValue(mf, c.name, c.labels)
		if v == -1 || (c.want != -2 && v != c.want) {
			t.Errorf("%s%v = %v; want %v", c.name, c.labels, v, c.want)
		}
	}
	// Only the revision served is exported, and it is the new one.
	if rev2 := configInfo(mf); rev2 == rev1 {
		t.Errorf("databus_config_info{revision=%s} did not change with the configuration", rev2)
	}
	if mf["databus_request_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM ||
		mf["databus_step_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM ||
		mf["databus_accesslog_write_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("the duration series are not histograms")
	}
	if ts2 := metricValue(mf, "databus_config_last_reload_timestamp_seconds", nil); ts2 <= ts1 {
		t.Errorf("reload timestamp did not move: %v then %v", ts1, ts2)
	}
	// No store failure happened: the series has no sample (or only zeros).
	for _, m := range mf["databus_store_errors_total"].GetMetric() {
		if m.GetCounter().GetValue() != 0 {
			t.Errorf("databus_store_errors_total %v without a store failure", m)
		}
	}

	// Label values are bounded: never a trace id, never a path.
	for name, f := range mf {
		if !strings.HasPrefix(name, "databus_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "/") || strings.Contains(v, "trace") || strings.Contains(v, "passwd") || len(v) > 64 {
					t.Errorf("%s has label %s=%q", name, l.GetName(), v)
				}
				for _, tr := range traces {
					if v == tr {
						t.Errorf("%s has a trace id as label %s", name, l.GetName())
					}
				}
			}
		}
	}
}

// BenchmarkPortalAudit measures the portal with the access log off and on
// (apiPortal.enableAudit) on the same script API, 16 concurrent requests,
// in-process (the handler alone) and over loopback HTTP. Compare ns/op of
// audit-off with its audit-on sibling; "dropped" counts records the async
// queue (default 10000) had to drop because the writer fell behind, which
// makes auditing look cheaper than it is. "stored" runs in-process with a
// queue large enough for every record and includes the final flush in the
// time: the sustained rate at which every request is recorded.
func BenchmarkPortalAudit(b *testing.B) {
	newServer := func(b *testing.B, audit bool, queue int) *Server {
		dir := b.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "apis"), 0o755); err != nil {
			b.Fatal(err)
		}
		settings := testSettings + fmt.Sprintf("  enableAudit: %v\n", audit)
		if queue > 0 {
			settings += fmt.Sprintf("storage:\n  accessLog: {queueSize: %d}\n", queue)
		}
		for name, content := range map[string]string{
			"databus.yaml":  settings,
			"apis/one.yaml": scriptAPI("t.one", "online", "one"),
		} {
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		s, err := New(Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(b.TempDir(), "databus.db")})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	body := `{"orderNo":"SO20251120001","items":[{"sku":"A","qty":2}]}`
	inProcess := func(b *testing.B, h http.Handler) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := httptest.NewRequest("POST", basePath+"/t.one/v1", strings.NewReader(body))
				r.RemoteAddr = "127.0.0.1:1"
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
	}
	loopback := func(b *testing.B, h http.Handler) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		defer client.CloseIdleConnections()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(srv.URL+basePath+"/t.one/v1", "application/json", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	for _, tc := range []struct {
		name  string
		audit bool
		queue int // 0: the default
		drive func(*testing.B, http.Handler)
	}{
		{"inprocess/audit-off", false, 0, inProcess},
		{"inprocess/audit-on", true, 0, inProcess},
		{"inprocess/audit-on-stored", true, 1 << 22, inProcess},
		{"loopback/audit-off", false, 0, loopback},
		{"loopback/audit-on", true, 0, loopback},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newServer(b, tc.audit, tc.queue)
			defer s.Close()
			b.ReportAllocs()
			b.SetParallelism(8) // 16 concurrent requests on 2 cores, as a loaded gateway has
			b.ResetTimer()
			tc.drive(b, s.Portal())
			if tc.queue > 0 {
				s.Close() // the flush is part of storing every record
			}
			b.StopTimer()
			if s.acc != nil {
				b.ReportMetric(float64(s.acc.Dropped()), "dropped")
			}
		})
	}
}
