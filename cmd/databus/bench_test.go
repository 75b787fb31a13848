package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/bench"
)

// benchRepo is a repository with one signed, encrypted API.
func benchRepo(t *testing.T) string {
	return writeRepo(t, map[string]string{
		"credentials/a.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: shop\nencryptionType: AES\nencryptionKey: {secretRef: 'file:keys/shop.key'}\n",
		"keys/shop.key":      "0123456789abcdef\n",
		"apis/hello.yaml": "apiVersion: databus/v1\nkind: Api\ncode: hello\nversion: v1\nstatus: online\nmethods: [POST]\nsteps:\n" +
			"  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {source: 'function main(c) { return {hi: c.request.body.name} }'}\n  - {id: end, type: end}\n",
	})
}

// TestBenchSigned drives a real gateway with signed, encrypted requests: a
// reused nonce would be refused as a replay, so zero errors means every
// request was signed afresh; --verify decrypts every answer.
func TestBenchSigned(t *testing.T) {
	dir := benchRepo(t)
	base := startGateway(t, dir)
	out, errOut, code := runCLI("bench", "hello", "--dir", dir, "--url", base, "--app", "shop",
		"--body", `{"name":"Ada"}`, "--max", "--concurrency", "4", "--duration", "400ms", "--verify", "--format", "json")
	if code != exitOK {
		t.Fatalf("bench: exit %d\n%s%s", code, out, errOut)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench --format json printed %q: %v", out, err)
	}
	if res.Requests < 10 || res.Errors != 0 || res.Status["200"] != res.Requests {
		t.Fatalf("bench: %+v", res)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency percentiles out of order: %+v", res.Latency)
	}
	if !strings.HasSuffix(res.Target, "/hello/v1") || res.Mode != "max" || res.Concurrency != 4 {
		t.Errorf("bench: target %q mode %q concurrency %d", res.Target, res.Mode, res.Concurrency)
	}

	// A wrong signature key: every request is refused; the text report counts them
	// by status and reason, and bench exits 1.
	out, _, code = runCLI("bench", "hello", "--dir", dir, "--url", base, "--app", "shop", "--sign-key", "wrong",
		"--body", `{"name":"Ada"}`, "--rate", "50", "--concurrency", "2", "--duration", "200ms")
	if code != exitInvalid {
		t.Fatalf("bench with a wrong key: exit %d\n%s", code, out)
	}
	for _, want := range []string{"mode         rate 50/s, concurrency 2", "(100.00%)", "HTTP 401"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench report lacks %q:\n%s", want, out)
		}
	}
	// A paced run sends about 10 requests in 200 ms, fewer on a loaded
	// machine: every one of them is an error, and a 401.
	errs := regexp.MustCompile(`errors (\d+) \(100\.00%\)`).FindStringSubmatch(out)
	if errs == nil || errs[1] == "0" || !strings.Contains(out, "status       401: "+errs[1]+"\n") {
		t.Errorf("bench report does not count every request as a 401:\n%s", out)
	}
}
