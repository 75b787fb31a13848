package apitest

import (
	"context"
	"github.com/databus-gateway/databus/internal/jsonvalue"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// repo writes a config repository: a credential whose key is an
// environment variable (unset unless a test sets it) and one with an
// in-repository key, a policy of two a minute, the APIs and tests given.
func repo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\n",
		"keys/app.key": "0123456789abcdef",
		"credentials/app.yaml": `apiVersion: databus/v1
kind: Credential
appId: app
encryptionKey: {secretRef: 'file:keys/app.key'}
`,
		"credentials/envapp.yaml": `apiVersion: databus/v1
kind: Credential
appId: envapp
encryptionKey: {secretRef: 'env:DATABUS_APITEST_UNSET_KEY'}
`,
		"policies/two.yaml": "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: two\nlimit: 2\nwindowSeconds: 60\n",
		"apis/calc.yaml": `apiVersion: databus/v1
kind: Api
code: calc
version: v1
status: online
methods: [POST]
policies: {rateLimit: two}
steps:
  - {id: start, type: start}
  - id: price
    type: http
    http:
      method: POST
      url: 'http://upstream.example:8080/price'
      timeout: 300ms
    transforms:
      response: '.body'
  - id: audit
    type: http
    when: '.steps.price.total > 100'
    http:
      service: {server: ledger, name: record}
      method: PUT
      timeout: 300ms
    onError: continue
  - {id: end, type: end}
`,
	}
	for k, v := range files {
		all[k] = v
	}
	for name, body := range all {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, dir string, o Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Refused {
		t.Fatalf("refused:\n%v", rep.Diagnostics)
	}
	return rep
}

func byName(t *testing.T, rep *Report) map[string]*CaseResult {
	t.Helper()
	out := map[string]*CaseResult{}
	for _, c := range rep.Cases {
		out[c.Case] = c
	}
	return out
}

func failures(c *CaseResult) string {
	var b strings.Builder
	for _, f := range c.Failures {
		b.WriteString(f.What + ": " + f.Message + "\n" + Diff(f.Expected, f.Actual))
	}
	return b.String()
}

// TestSessionsAreIsolated: every case has its own rate-limit store, so a
// case that exhausts the limit (two a minute) leaves the others their
// own two calls, however the cases interleave.
func TestSessionsAreIsolated(t *testing.T) {
	var cases strings.Builder
	for i := 0; i < 6; i++ {
		cases.WriteString(`
  - name: limited ` + string(rune('a'+i)) + `
    repeat: 3
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}, expect: {calls: 2}}]
    expect: {code: 429}
  - name: fresh ` + string(rune('a'+i)) + `
    repeat: 2
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}, expect: {calls: 2}}]
    expect: {code: 200, response: {total: 1}, ran: [start, price, end], skipped: [audit]}
`)
	}
	dir := repo(t, map[string]string{"tests/calc.yaml": "apiVersion: databus/v1\nkind: ApiTest\napi: calc:v1\ncredential: app\ncases:" + cases.String()})
	rep := run(t, dir, Options{Parallel: 8})
	if len(rep.Cases) != 12 {
		t.Fatalf("%d cases", len(rep.Cases))
	}
	for _, c := range rep.Cases {
		if c.Outcome != Pass {
			t.Errorf("%s: %s\n%s", c.Name, c.Outcome, failures(c))
		}
	}
	if !rep.OK() || rep.Passed != 12 {
		t.Errorf("report: %+v", rep)
	}
}

// TestStubs: matching by url and method, by registry service, what a stub
// received, a call no stub answers, a stub never called, hang and reset.
func TestStubs(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
api: calc:v1
credential: app
cases:
  - name: by url and service
    request: {body: {n: 2}, query: {k: v}}
    stubs:
      - url: http://upstream.example:8080/price
        method: POST
        body: {total: 150}
        expect:
          path: /price
          assert: ['.headers["Content-Type"] | startswith("application/json")']
      - service: {server: ledger, name: record}
        method: PUT
        status: 201
        body: {ok: true}
        expect: {method: PUT, body: {n: 2}}
    expect:
      code: 200
      ran: [start, price, audit, end]
      assert: ['.steps.audit.status == 201', '.accessLog.appId == "app"']
      accessLog: {httpStatus: 200, apiCode: calc}
  - name: wrong method
    request: {body: {}}
    stubs:
      - url: http://upstream.example:8080/price
        method: GET
        body: {total: 1}
    expect: {code: 200}
  - name: hang
    request: {body: {}}
    stubs: [{step: price, hang: true}]
    expect: {code: 504}
  - name: reset
    request: {body: {}}
    stubs: [{step: price, reset: true}]
    expect: {code: 502}
  - name: received differs
    request: {body: {}}
    stubs:
      - step: price
        body: {total: 500}
      - step: audit
        body: {}
        expect: {method: POST, headers: {X-Missing: "1"}, query: {a: b}}
    expect: {code: 200, response: {total: 5}}
`
	dir := repo(t, map[string]string{"tests/stubs.yaml": tests})
	got := byName(t, run(t, dir, Options{}))
	if c := got["by url and service"]; c.Outcome != Pass {
		t.Errorf("by url and service: %s\n%s", c.Outcome, failures(c))
	}
	for _, name := range []string{"hang", "reset"} {
		if c := got[name]; c.Outcome != Pass {
			t.Errorf("%s: %s\n%s", name, c.Outcome, failures(c))
		}
	}
	// A GET stub does not answer a POST: the call is unmatched (a failure),
	// the stub never called its consequence.
	c := got["wrong method"]
	f := failures(c)
	if c.Outcome != Fail || !strings.Contains(f, "the flow called POST http://upstream.example:8080/price (step price), which no stub answers (it got 599): add a stub with step: price") ||
		!strings.Contains(f, "stubs[0] (GET http://upstream.example:8080/price): never called: a consequence") {
		t.Errorf("wrong method: %s\n%s", c.Outcome, f)
	}
	c = got["received differs"]
	f = failures(c)
	for _, want := range []string{
		"stubs[1] (step audit): expect.method: expected method POST, got PUT",
		`stubs[1] (step audit): expect.headers.X-Missing: expected header X-Missing: "1", got none`,
		`stubs[1] (step audit): expect.query.a: expected query a="b", got none`,
		"expect.response: the response differs",
		`-   "total": 5`, "+ {}",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("received differs: missing %q in\n%s", want, f)
		}
	}
	if c.Outcome != Fail {
		t.Errorf("received differs: outcome %s", c.Outcome)
	}
	// Failures carry the line of the expectation.
	for _, fl := range c.Failures {
		if fl.Line < 44 {
			t.Errorf("failure %s at line %d, before the case", fl.What, fl.Line)
		}
	}
}

// TestMistakes: a credential whose key does not resolve in the sandbox
// (env: is never read there), and an API that is not online, are the
// test's own mistakes; keys given in the case (a value, or a file inside
// the repository) sign instead of the credential's, and the portal
// verifies with them.
func TestMistakes(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
cases:
  - name: key unresolved
    api: calc:v1
    credential: envapp
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect: {code: 200}
  - name: test key
    api: calc:v1
    credential: envapp
    keys: {encryption: {value: fedcba9876543210}}
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect: {code: 200, response: {total: 1}}
  - name: test key file
    api: calc:v1
    credential: envapp
    keys: {encryption: {secretRef: 'file:keys/test.key'}}
    request: {body: {}}
    stubs: [{step: price, body: {total: 2}}]
    expect: {code: 200, response: {total: 2}}
  - name: draft
    api: draft:v1
    credential: app
    expect: {code: 200}
`
	draft := "apiVersion: databus/v1\nkind: Api\ncode: draft\nversion: v1\nstatus: draft\nmethods: [GET]\npolicies: {rateLimit: two}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
	// The environment variable is set: the sandbox reads no environment,
	// so the credential's key still does not resolve.
	t.Setenv("DATABUS_APITEST_UNSET_KEY", "0011223344556677")
	dir := repo(t, map[string]string{"tests/m.yaml": tests, "apis/draft.yaml": draft, "keys/test.key": "aabbccddeeff0011"})
	got := byName(t, run(t, dir, Options{}))
	if c := got["key unresolved"]; c.Outcome != Mistake || !strings.Contains(failures(c), "the credential's encryption key does not resolve") {
		t.Errorf("key unresolved: %s\n%s", c.Outcome, failures(c))
	}
	// The sandbox cannot resolve envapp's key either; the case's keys are
	// the session's keys of envapp, so the portal verifies and decrypts
	// with them.
	for _, name := range []string{"test key", "test key file"} {
		if c := got[name]; c.Outcome != Pass {
			t.Errorf("%s: %s\n%s", name, c.Outcome, failures(c))
		}
	}
	if c := got["draft"]; c.Outcome != Mistake || !strings.Contains(failures(c), "API draft:v1 is draft") {
		t.Errorf("draft: %s\n%s", c.Outcome, failures(c))
	}
}

func TestRunPattern(t *testing.T) {
	tests := "apiVersion: databus/v1\nkind: ApiTest\napi: calc:v1\ncredential: app\ncases:\n  - name: one\n    stubs: [{step: price, body: {}}]\n  - name: two\n    stubs: [{step: price, body: {}}]\n"
	dir := repo(t, map[string]string{"tests/sub/p.yaml": tests})
	rep := run(t, dir, Options{Run: regexp.MustCompile(`^sub/p/two$`)})
	if len(rep.Cases) != 1 || rep.Cases[0].Name != "sub/p/two" || rep.Cases[0].Outcome != Pass {
		t.Fatalf("cases: %+v", rep.Cases)
	}
}

func TestDiff(t *testing.T) {
	got := Diff("{\n  \"a\": 1,\n  \"b\": 2\n}", "{\n  \"a\": 1,\n  \"b\": 3\n}")
	want := "  {\n    \"a\": 1,\n-   \"b\": 2\n+   \"b\": 3\n  }\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestJSONEqual(t *testing.T) {
	if !jsonvalue.Equal(normalize(map[string]any{"a": 1.0, "b": []any{"x"}}), map[string]any{"b": []any{"x"}, "a": 1}) {
		t.Error("1.0 and 1, key order: should be equal")
	}
	if jsonvalue.Equal(map[string]any{"a": 1}, map[string]any{"a": "1"}) {
		t.Error("1 and \"1\" should differ")
	}
}

// TestBrokenWhenIsAFailure: a when that no longer holds fails the case's
// expectations; the stub of the step it skipped is then never called,
// which is a consequence listed under the failures, not the test's own
// mistake. A case whose only finding is a stub never called stays a
// mistake.
func TestBrokenWhenIsAFailure(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
api: calc:v1
credential: app
cases:
  - name: audit skipped
    request: {body: {}}
    stubs:
      - {step: price, body: {total: 50}}
      - {step: audit, body: {}}
    expect:
      code: 200
      ran: [start, price, audit, end]
  - name: only the stub
    request: {body: {}}
    stubs:
      - {step: price, body: {total: 50}}
      - {step: audit, body: {}}
    expect: {code: 200}
`
	dir := repo(t, map[string]string{"tests/w.yaml": tests})
	rep := run(t, dir, Options{})
	got := byName(t, rep)
	c := got["audit skipped"]
	if c.Outcome != Fail || len(c.Failures) != 2 {
		t.Fatalf("audit skipped: %s\n%s", c.Outcome, failures(c))
	}
	if f := c.Failures[0]; f.What != "expect.ran" || f.Mistake || f.Consequence {
		t.Errorf("first failure: %+v", f)
	}
	if f := c.Failures[1]; !f.Consequence || f.Mistake || !strings.HasPrefix(f.What, "stubs[1] (step audit)") || !strings.Contains(f.Message, "a consequence of the failures above") {
		t.Errorf("second failure: %+v", f)
	}
	if c := got["only the stub"]; c.Outcome != Mistake || !c.Failures[0].Mistake || !strings.Contains(c.Failures[0].Message, "never called: the flow made no call") {
		t.Errorf("only the stub: %s\n%s", c.Outcome, failures(c))
	}
	if rep.Failed != 1 || rep.Mistakes != 1 {
		t.Errorf("failed %d, mistakes %d", rep.Failed, rep.Mistakes)
	}
	var out strings.Builder
	if err := rep.Write(&out, "text", "", false); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^FAIL  w/audit skipped .*\n    tests/w.yaml:\d+: expect.ran: .*\n      then tests/w.yaml:\d+: stubs\[1\] \(step audit\): never called: a consequence`).MatchString(out.String()) {
		t.Errorf("text output:\n%s", out.String())
	}
}

// TestAssertionBudget: an assertion that builds a huge value is stopped
// by the assertion budget (heap or time) with a failure that says so; the
// case's other assertions and the other cases still run.
func TestAssertionBudget(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
api: calc:v1
credential: app
cases:
  - name: greedy
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect:
      code: 200
      assert:
        - '[range(1e9)] | length == 0'
        - '.code == 201'
  - name: modest
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect: {code: 200, assert: ['.response.total == 1']}
`
	dir := repo(t, map[string]string{"tests/b.yaml": tests})
	start := time.Now()
	got := byName(t, run(t, dir, Options{}))
	c := got["greedy"]
	if c.Outcome != Fail || len(c.Failures) != 2 {
		t.Fatalf("greedy: %s\n%s", c.Outcome, failures(c))
	}
	if f := c.Failures[0]; f.What != "expect.assert[0]" || !regexp.MustCompile(`^\[range\(1e9\)\] \| length == 0 stopped: it (grew the heap past the 64 MiB|ran past the 1s) an assertion may`).MatchString(f.Message) {
		t.Errorf("greedy: %+v", f)
	}
	if f := c.Failures[1]; f.What != "expect.assert[1]" || !strings.Contains(f.Message, "produced false") {
		t.Errorf("the assertion after it did not run: %+v", f)
	}
	if c := got["modest"]; c.Outcome != Pass {
		t.Errorf("modest: %s\n%s", c.Outcome, failures(c))
	}
	if d := time.Since(start); d > DefaultTimeout {
		t.Errorf("the run took %s", d)
	}
}

// TestEveryAnswer: expect.answers checks every answer of a repeat (the
// last one alone does not show a limit lowered), .answers lists them for
// assertions, expect.encrypted checks the answer came encrypted, and a
// stub's sequence answers in turn, its last answer repeating.
func TestEveryAnswer(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
api: calc:v1
credential: app
cases:
  - name: limit holds
    repeat: 3
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect:
      answers: [200 x2, 429]
      encrypted: true
      assert: ['.answers == [200, 200, 429]', '.encrypted']
  - name: limit lowered
    repeat: 3
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect: {answers: [200 x3], code: 429}
  - name: plain expected
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
    expect: {encrypted: false}
  - name: sequence
    repeat: 2
    request: {body: {}}
    stubs:
      - step: price
        sequence: [{body: {total: 1}}, {status: 200, body: {total: 7}}]
        expect: {calls: 2}
    expect: {answers: [200 x2], response: {total: 7}}
`
	dir := repo(t, map[string]string{"tests/a.yaml": tests})
	got := byName(t, run(t, dir, Options{}))
	for _, name := range []string{"limit holds", "sequence"} {
		if c := got[name]; c.Outcome != Pass {
			t.Errorf("%s: %s\n%s", name, c.Outcome, failures(c))
		}
	}
	c := got["limit lowered"]
	if c.Outcome != Fail || len(c.Failures) != 1 || c.Failures[0].What != "expect.answers" ||
		c.Failures[0].Message != "expected the 3 answers [200 x3], got [200 x2, 429]" || c.Failures[0].Line != 18 {
		t.Errorf("limit lowered: %s\n%s", c.Outcome, failures(c))
	}
	c = got["plain expected"]
	if c.Outcome != Fail || len(c.Failures) != 1 || !strings.Contains(c.Failures[0].Message, "expected the answer in plain text, it came encrypted") {
		t.Errorf("plain expected: %s\n%s", c.Outcome, failures(c))
	}
	// expect.answers must list one status per answer.
	bad := strings.Replace(tests, "answers: [200 x3]", "answers: [200 x2]", 1)
	rep, err := Run(context.Background(), repo(t, map[string]string{"tests/a.yaml": bad}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Refused || !strings.Contains(rep.Diagnostics.Error(), "tests/a.yaml:18:23: error: cases[1].expect.answers: expect.answers lists 2 answers, the case sends 3 (repeat)") {
		t.Errorf("count mismatch: refused %v\n%v", rep.Refused, rep.Diagnostics)
	}
}

// TestRunTimeout: the run's timeout stops a run whose cases would take
// long; the cases still running and those never started are reported
// unfinished, and the run fails. A case's timeout above 2m is refused.
func TestRunTimeout(t *testing.T) {
	tests := `apiVersion: databus/v1
kind: ApiTest
api: calc:v1
credential: app
cases:
  - name: slow
    repeat: 100
    timeout: 2m
    request: {body: {}}
    stubs: [{step: price, delay: 250ms, body: {total: 1}}]
    expect: {code: 200}
  - name: next
    request: {body: {}}
    stubs: [{step: price, body: {total: 1}}]
`
	dir := repo(t, map[string]string{"tests/t.yaml": tests})
	start := time.Now()
	rep := run(t, dir, Options{Parallel: 1, Timeout: 500 * time.Millisecond})
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the run took %s", d)
	}
	if rep.OK() || strings.Join(rep.Unfinished, ",") != "t/slow,t/next" {
		t.Fatalf("unfinished %q, ok %v", rep.Unfinished, rep.OK())
	}
	for _, c := range rep.Cases {
		if c.Outcome != Unfinished || !strings.Contains(failures(c), "the run's timeout (500ms) expired before this case finished") {
			t.Errorf("%s: %s\n%s", c.Name, c.Outcome, failures(c))
		}
	}
	if s := rep.Summary("."); !strings.Contains(s, "2 did not finish: the run stopped at its --timeout 500ms") {
		t.Errorf("summary: %s", s)
	}
	long := strings.Replace(tests, "timeout: 2m", "timeout: 3m", 1)
	rep, err := Run(context.Background(), repo(t, map[string]string{"tests/t.yaml": long}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Refused || !strings.Contains(rep.Diagnostics.Error(), "timeout 3m0s is longer than 2m0s, the most a case may take") {
		t.Errorf("timeout 3m: refused %v\n%v", rep.Refused, rep.Diagnostics)
	}
}

// TestRedaction: the values of the headers storage.accessLog.redactHeaders
// names, and of Authorization, Site-Signature and ZT-Signature, as the
// stubs received them, never appear in a report, whatever the failure
// that would show them.
func TestRedaction(t *testing.T) {
	api := `apiVersion: databus/v1
kind: Api
code: keyed
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: up
    type: http
    http:
      method: POST
      url: 'http://upstream.example:8080/up'
      headers: {Authorization: 'Bearer tok-5ecret-0001', X-Api-Key: 'key-5ecret-0002', X-Plain: 'plain-value-0003'}
      timeout: 300ms
  - {id: end, type: end}
`
	tests := `apiVersion: databus/v1
kind: ApiTest
api: keyed:v1
credential: app
cases:
  - name: leaky
    request: {body: {}}
    stubs:
      - step: up
        body: {}
        expect:
          headers: {Authorization: Bearer other, X-Api-Key: other, X-Plain: other}
          assert:
            - '.headers.Authorization'
            - '.headers["X-Api-Key"] | ascii_downcase'
            - '.headers'
            - '.headers.Authorization | split(" ")[1]'
    expect: {code: 200}
`
	settings := "apiVersion: databus/v1\nkind: Settings\nstorage:\n  accessLog: {redactHeaders: [X-Api-Key]}\n"
	dir := repo(t, map[string]string{"apis/keyed.yaml": api, "tests/r.yaml": tests, "databus.yaml": settings})
	rep := run(t, dir, Options{})
	c := byName(t, rep)["leaky"]
	if c.Outcome != Fail || len(c.Failures) != 7 {
		t.Fatalf("leaky: %s\n%s", c.Outcome, failures(c))
	}
	var all strings.Builder
	for _, format := range []string{"text", "json", "github"} {
		if err := rep.Write(&all, format, "", false); err != nil {
			t.Fatal(err)
		}
	}
	out := all.String()
	for _, secret := range []string{"tok-5ecret-0001", "key-5ecret-0002"} {
		if strings.Contains(out, secret) {
			t.Errorf("the report shows %s:\n%s", secret, out)
		}
	}
	for _, want := range []string{`expected header Authorization: "Bearer other", got "***"`, `expected header X-Api-Key: "other", got "***"`, "plain-value-0003", `"***"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}
