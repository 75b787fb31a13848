package config

// Fixture-driven tests of the loader (STYLE.md, "Tests").
//
//	testdata/base/            a small valid repository: no errors, no warnings
//	testdata/bad/*.bad.yaml   one deliberate mistake each; the prefix names the
//	                          folder it is added to (api- apis/, cred- credentials/,
//	                          policy- policies/, settings- replaces databus.yaml)
//	testdata/bad-repos/NAME/  mistakes that span files, laid over base
//	testdata/good/*.good.yaml documents that must load without errors
//
// The expected positions are where the mistake stands in the fixture, counted
// by hand: a finding about a key points at the key, one about a value at the
// value (the opening quote of a quoted scalar), one inside a jq program or
// script at the offending token, one about a whole block mapping at the key
// that owns it, a missing top-level key at 1:1.

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// badFixture is the expected error of one testdata/bad fixture.
type badFixture struct {
	name string // file name in testdata/bad
	line int
	col  int    // 0: not checked
	path string // "": not checked
	msg  string // fragment of the message
}

var badFixtures = []badFixture{
	// YAML syntax and document structure.
	{"api-yaml-bad-indent.bad.yaml", 13, 0, "", "YAML syntax error"},
	{"api-yaml-tab.bad.yaml", 14, 0, "", "tab"},
	{"api-yaml-unclosed-quote.bad.yaml", 14, 0, "", "quote"},
	{"api-yaml-unknown-anchor.bad.yaml", 13, 0, "", "call"},
	{"api-two-documents.bad.yaml", 16, 1, "", "one document"},
	{"api-empty.bad.yaml", 1, 0, "", "empty"},
	{"api-top-level-list.bad.yaml", 1, 1, "", "mapping"},
	{"api-wrong-apiversion.bad.yaml", 1, 13, "apiVersion", "databus/v1"},
	{"api-kind-credential.bad.yaml", 2, 7, "kind", "credentials/"},
	{"api-duplicate-yaml-key.bad.yaml", 7, 1, "status", "first at line 5"},

	// Api: schema.
	{"api-missing-code.bad.yaml", 1, 1, "", `"code"`},
	{"api-missing-version.bad.yaml", 1, 1, "", `"version"`},
	{"api-missing-steps.bad.yaml", 1, 1, "", `"steps"`},
	{"api-unknown-key-typo.bad.yaml", 6, 1, "descripton", `did you mean "description"`},
	{"api-unknown-key-nested.bad.yaml", 15, 7, "steps[1].http.timout", `did you mean "timeout"`},
	{"api-unknown-key-step.bad.yaml", 15, 5, "steps[1].tranforms", `did you mean "transforms"`},
	{"api-wrong-type-methods.bad.yaml", 6, 10, "methods", "array"},
	{"api-bad-code-pattern.bad.yaml", 3, 7, "code", "lower-case"},
	{"api-bad-version-pattern.bad.yaml", 4, 10, "version", "digits"},
	{"api-bad-status.bad.yaml", 5, 9, "status", `"online"`},
	{"api-bad-method.bad.yaml", 6, 17, "methods[1]", `"PATCH"`},
	{"api-multipart-bad-jq.bad.yaml", 16, 51, "steps[1].http.multipart.content", "jq program does not compile"},
	{"api-multipart-get.bad.yaml", 17, 9, "steps[1].http.multipart", "needs method POST, PUT or PATCH, not GET"},
	{"api-multipart-with-request-transform.bad.yaml", 16, 9, "steps[1].http.multipart", "both build the request body"},
	{"api-multipart-no-content.bad.yaml", 16, 9, "steps[1].http.multipart", `missing required key "content"`},
	{"api-no-methods.bad.yaml", 6, 10, "methods", "minimum 1"},
	{"api-duplicate-method.bad.yaml", 6, 22, "methods[2]", `duplicate item "GET" (also at index 0)`},
	{"api-step-bad-id.bad.yaml", 11, 9, "steps[1].id", "does not match"},
	{"api-step-bad-type.bad.yaml", 12, 11, "steps[1].type", `"rpc"`},
	{"api-step-missing-http.bad.yaml", 11, 0, "steps[1]", `"http"`},
	{"api-bad-onerror.bad.yaml", 14, 14, "steps[1].onError", `"continue"`},
	{"api-http-retry-too-many.bad.yaml", 16, 25, "steps[1].http.retry.attempts", "10"},
	{"api-bad-duration.bad.yaml", 15, 16, "steps[1].http.timeout", "duration"},
	{"api-script-bad-lang.bad.yaml", 14, 13, "steps[1].script.lang", "javascript"},
	{"api-rpc-bad-method.bad.yaml", 15, 15, "steps[1].rpc.method", "Service/Method"},
	{"api-input-not-object.bad.yaml", 9, 8, "input", "object"},

	// Api: transforms and steps.
	{"api-transform-twice-api.bad.yaml", 12, 3, "transforms.request", "first at line 10"},
	{"api-transform-twice-step.bad.yaml", 18, 7, "steps[1].transforms.response", "first at line 16"},
	{"api-start-not-first.bad.yaml", 13, 0, "", "first"},
	{"api-end-not-last.bad.yaml", 11, 0, "", "last"},
	{"api-two-starts.bad.yaml", 14, 0, "", "start"},
	{"api-two-ends.bad.yaml", 11, 0, "steps[1].type", "exactly one end step"},
	{"api-missing-end.bad.yaml", 12, 0, "", "end"},
	{"api-duplicate-step-id.bad.yaml", 14, 9, "steps[2].id", "line 11"},
	{"api-http-on-script.bad.yaml", 15, 5, "steps[1].http", "type script"},
	{"api-when-on-start.bad.yaml", 12, 11, "steps[0].when", "always run"},

	// Api: http steps.
	{"api-http-no-url.bad.yaml", 13, 5, "steps[1].http", "url or service"},
	{"api-http-url-and-service.bad.yaml", 15, 0, "steps[1].http.service", "url and service"},
	{"api-http-url-not-http.bad.yaml", 14, 12, "steps[1].http.url", "http://"},
	{"api-http-bad-header-name.bad.yaml", 17, 9, `steps[1].http.headers["X Client"]`, "header name"},
	{"api-poll-interval-over-timeout.bad.yaml", 17, 19, "steps[1].http.poll.interval", "timeout"},
	{"api-zero-duration.bad.yaml", 15, 16, "steps[1].http.timeout", "greater than 0"},
	{"api-zero-poll-interval.bad.yaml", 15, 45, "steps[1].http.poll.interval", "greater than 0"},

	// Api: jq programs. An undefined function is checked by line only: the
	// message names it.
	{"api-jq-syntax-api-transform.bad.yaml", 10, 82, "transforms.response", "jq"},
	{"api-jq-undefined-step-transform.bad.yaml", 15, 0, "steps[1].transforms.response", "frobnicate"},
	{"api-jq-syntax-block.bad.yaml", 18, 54, "steps[1].transforms.request", "jq"},
	{"api-jq-syntax-when.bad.yaml", 13, 33, "steps[1].when", "jq"},
	{"api-jq-undefined-when.bad.yaml", 13, 0, "steps[1].when", "is_big"},
	{"api-jq-syntax-poll.bad.yaml", 16, 42, "steps[1].http.poll.until", "jq"},
	{"api-jq-undefined-poll.bad.yaml", 16, 0, "steps[1].http.poll.until", "finished"},

	// Api: ${...} interpolation.
	{"api-interp-unclosed-url.bad.yaml", 14, 42, "steps[1].http.url", "unclosed"},
	{"api-http-url-templated-host.bad.yaml", 14, 12, "steps[1].http.url", "gateway.webClient.allowedHosts"},
	{"api-interp-bad-jq-url.bad.yaml", 14, 64, "steps[1].http.url", "jq"},
	{"api-interp-unclosed-header.bad.yaml", 16, 28, `steps[1].http.headers["X-Trace-Id"]`, "unclosed"},
	{"api-interp-bad-jq-header.bad.yaml", 16, 42, `steps[1].http.headers["X-Tenant"]`, "jq"},
	{"api-interp-unclosed-query.bad.yaml", 15, 22, "steps[1].http.query.page", "unclosed"},
	{"api-interp-undefined-query.bad.yaml", 16, 0, "steps[1].http.query.since", "days_ago"},

	// Api: scripts, rpc, input schema, references.
	{"api-script-parse.bad.yaml", 17, 38, "steps[1].script.source", "JavaScript"},
	{"api-script-no-main.bad.yaml", 14, 0, "steps[1].script.source", "main"},
	{"api-rpc-bad-target.bad.yaml", 14, 15, "steps[1].rpc.target", "host:port"},
	{"api-rpc-descriptor-missing.bad.yaml", 16, 22, "steps[1].rpc.descriptorSet", "protos/missing.binpb"},
	{"api-rpc-descriptor-folder.bad.yaml", 16, 22, "steps[1].rpc.descriptorSet", "descriptor set protos is a folder"},
	{"api-rpc-descriptor-outside.bad.yaml", 16, 22, "steps[1].rpc.descriptorSet", "must be a path inside the repository"},
	{"api-rpc-descriptor-not-a-set.bad.yaml", 16, 22, "steps[1].rpc.descriptorSet", "descriptor set databus.yaml: not a FileDescriptorSet"},
	{"api-rpc-descriptor-no-imports.bad.yaml", 16, 22, "steps[1].rpc.descriptorSet", `could not resolve import "google/protobuf/timestamp.proto"`},
	{"api-rpc-bad-metadata-key.bad.yaml", 18, 9, `steps[1].rpc.metadata["x/app"]`, "not a valid gRPC metadata key"},
	{"api-rpc-reserved-metadata-key.bad.yaml", 18, 9, `steps[1].rpc.metadata["grpc-timeout"]`, "reserved by gRPC"},
	{"api-rpc-service-missing.bad.yaml", 15, 15, "steps[1].rpc.method", "no service fixture.v1.Stock (it has fixture.v1.Inventory)"},
	{"api-rpc-method-missing.bad.yaml", 15, 15, "steps[1].rpc.method", "service fixture.v1.Inventory has no method Release (it has Reserve)"},
	{"api-rpc-server-streaming.bad.yaml", 15, 15, "steps[1].rpc.method", "fixture.v1.Ticker/Watch is a server-streaming method: rpc steps call unary methods only"},
	{"api-rpc-client-streaming.bad.yaml", 15, 15, "steps[1].rpc.method", "client-streaming method"},
	{"api-rpc-bidi-streaming.bad.yaml", 15, 15, "steps[1].rpc.method", "bidirectional-streaming method"},
	{"api-input-type-number.bad.yaml", 11, 9, "input.type", "JSON Schema"},
	{"api-input-negative-minlength.bad.yaml", 13, 37, "input.properties.name.minLength", "JSON Schema"},
	{"api-unknown-ratelimit.bad.yaml", 8, 14, "policies.rateLimit", "base-standard"},
	{"api-unknown-credential.bad.yaml", 10, 27, "auth.credentials[1]", "fx-gamma"},

	// Credential.
	{"cred-missing-appid.bad.yaml", 1, 1, "", `"appId"`},
	{"cred-kind-unknown.bad.yaml", 2, 7, "kind", "Credential"},
	{"cred-kind-policy.bad.yaml", 2, 7, "kind", "policies/"},
	{"cred-unknown-key-typo.bad.yaml", 5, 1, "signatureTyp", `did you mean "signatureType"`},
	{"cred-wrong-type-enabled.bad.yaml", 4, 10, "enabled", "boolean"},
	{"cred-wrong-type-tenant.bad.yaml", 5, 11, "tenantId", "string"},
	{"cred-bad-signature-type.bad.yaml", 4, 16, "signatureType", "HMAC-SHA256"},
	{"cred-bad-secretref.bad.yaml", 4, 28, "encryptionKey.secretRef", "env:"},
	{"cred-secret-file-missing.bad.yaml", 4, 28, "encryptionKey.secretRef", "secrets/fx-bad.key"},
	{"cred-aes-no-key.bad.yaml", 5, 0, "", "encryptionKey"},
	{"cred-hmac-no-key.bad.yaml", 4, 0, "", "signatureKey"},
	{"cred-bad-ip.bad.yaml", 7, 5, "allowedIps[1]", "10.0.0.300"},
	{"cred-bad-cidr.bad.yaml", 5, 30, "allowedIps[1]", "10.0.0.0/33"},
	{"cred-anonymous-no-user.bad.yaml", 5, 17, "allowAnonymous", "anonymousUser"},
	{"cred-anonymous-user-no-id.bad.yaml", 6, 16, "anonymousUser", `"id"`},

	// RateLimitPolicy.
	{"policy-missing-name.bad.yaml", 1, 1, "", `"name"`},
	{"policy-unknown-key-typo.bad.yaml", 5, 1, "windowSecond", `did you mean "windowSeconds"`},
	{"policy-wrong-type-limit.bad.yaml", 4, 8, "limit", "integer"},
	{"policy-limit-zero.bad.yaml", 5, 8, "limit", ">= 1"},
	{"policy-window-too-long.bad.yaml", 5, 16, "windowSeconds", "86400"},
	{"policy-bad-algorithm.bad.yaml", 4, 12, "algorithm", "token-bucket"},
	{"policy-keytemplate-unknown-var.bad.yaml", 5, 0, "keyTemplate", "${user}"},
	{"policy-keytemplate-unclosed.bad.yaml", 5, 0, "keyTemplate", "unclosed"},

	// ApiTest.
	{"test-unknown-api.bad.yaml", 5, 10, "cases[0].api", "API base.nope:v1 not found in apis/ (known: base.calc:v1, base.echo:v1)"},
	{"test-unknown-api-file.bad.yaml", 3, 6, "api", `case "echoes": API base.echo:v9 not found`},
	{"test-unknown-credential.bad.yaml", 6, 17, "cases[0].credential", `credential "fx-gamma" not found in credentials/ (known: fx-alpha, fx-beta)`},
	{"test-bad-jq.bad.yaml", 7, 0, "cases[0].expect.assert[0]", "jq program does not compile"},
	{"test-stub-bad-jq.bad.yaml", 9, 0, "cases[0].stubs[0].expect.assert[0]", "jq program does not compile"},
	{"test-stub-unknown-step.bad.yaml", 7, 15, "cases[0].stubs[0].step", `API base.echo:v1 has no step "ehco" (steps: start, echo, end)`},
	{"test-stub-script-step.bad.yaml", 7, 15, "cases[0].stubs[0].step", "stubs answer http and rpc steps"},
	{"test-duplicate-case.bad.yaml", 7, 11, "cases[2].name", `duplicate case name "echoes" (first at cases[0], line 5)`},
	{"test-no-api.bad.yaml", 4, 0, "cases[0]", "the case names no API"},
	{"test-stub-two-targets.bad.yaml", 7, 0, "cases[0].stubs[0]", "exclude each other"},
	{"test-stub-no-target.bad.yaml", 7, 0, "cases[0].stubs[0]", "a stub needs step"},
	{"test-expect-unknown-step.bad.yaml", 7, 26, "cases[0].expect.ran[2]", `has no step "ned"`},
	{"test-unknown-key.bad.yaml", 6, 5, "cases[0].expcet", `did you mean "expect"`},
	{"test-bad-api-ref.bad.yaml", 3, 6, "api", "code:version"},

	// Settings (databus.yaml).
	{"settings-bad-basepath.bad.yaml", 4, 13, "apiPortal.basePath", "absolute URL path"},
	{"settings-legacy-same-as-base.bad.yaml", 7, 7, "apiPortal.legacyBasePaths[1]", "basePath"},
	{"settings-legacy-duplicate.bad.yaml", 5, 50, "apiPortal.legacyBasePaths[2]", `duplicate item "/legacy/portal" (also at index 0)`},
	{"settings-bad-denied-cidr.bad.yaml", 7, 7, "apiPortal.deniedIps[1]", "192.168.0.0/40"},
	{"settings-negative-refusals.bad.yaml", 5, 24, "storage.accessLog.refusalsPerSecond", "must be >= 0"},
	{"settings-bad-allowed-ip.bad.yaml", 4, 28, "apiPortal.allowedIps[1]", "localhost"},
	{"settings-bad-allowed-host.bad.yaml", 4, 61, "gateway.webClient.allowedHosts[2]", "no scheme, port or path"},
	{"settings-bad-redis-addr.bad.yaml", 4, 9, "redis.addr", "host:port"},
	{"settings-body-budget-below-body.bad.yaml", 5, 25, "apiPortal.maxBodyBytesInFlight", "at least maxBodyBytes"},
	{"settings-duplicate-token-name.bad.yaml", 7, 14, "admin.tokens[2].name", `"ops"`},
	{"settings-bad-token-role.bad.yaml", 5, 25, "admin.tokens[0].role", "operator"},
	{"settings-hooks-no-server.bad.yaml", 3, 1, "hooks", "hooks.server"},
	{"settings-telemetry-bad-endpoint.bad.yaml", 5, 15, "telemetry.otlp.endpoint", "expected host:port or an http:// or https:// URL"},
	{"settings-telemetry-traceurl-no-id.bad.yaml", 4, 13, "telemetry.traceUrl", "{traceId}"},
	{"settings-telemetry-bad-protocol.bad.yaml", 6, 15, "telemetry.otlp.protocol", `"grpc"`},
	{"settings-telemetry-batch-over-queue.bad.yaml", 7, 16, "telemetry.otlp.batchSize", "at most queueSize"},
	{"settings-unknown-key-typo.bad.yaml", 4, 3, "apiPortal.basepath", `did you mean "basePath"`},
	{"settings-wrong-type.bad.yaml", 4, 16, "apiPortal.enableAudit", "boolean"},
	{"settings-zero-timeout.bad.yaml", 4, 53, "gateway.webClient.timeout", "greater than 0"},
	{"settings-wrong-kind.bad.yaml", 2, 7, "kind", "Settings"},
	{"settings-top-level-list.bad.yaml", 1, 1, "", "mapping"},
}

// loaderBugs are fixtures whose rows are commented out above with a BUG note:
// the loader reports them wrongly today. Re-enable the row and remove the
// name here once the loader is fixed.
var loaderBugs = []string{}

// fixtureTarget returns where a fixture goes in a repository, by its prefix.
func fixtureTarget(t *testing.T, name string) string {
	t.Helper()
	switch {
	case strings.HasPrefix(name, "api-"):
		return APIsDir + "/" + name
	case strings.HasPrefix(name, "cred-"):
		return CredentialsDir + "/" + name
	case strings.HasPrefix(name, "policy-"):
		return PoliciesDir + "/" + name
	case strings.HasPrefix(name, "settings-"):
		return SettingsFile
	case strings.HasPrefix(name, "test-"):
		return TestsDir + "/" + name
	}
	t.Fatalf("fixture %s: name must start with api-, cred-, policy-, settings- or test-", name)
	return ""
}

// copyTree copies the files under src into dst, creating folders.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// baseRepo copies testdata/base into a fresh temporary folder.
func baseRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	copyTree(t, filepath.Join("testdata", "base"), dir)
	return dir
}

// withFixture returns a copy of base with the fixture file of folder
// (testdata/bad or testdata/good) added where its prefix says, and the
// repository-relative path it was written to.
func withFixture(t *testing.T, folder, name string) (dir, rel string) {
	t.Helper()
	dir = baseRepo(t)
	rel = fixtureTarget(t, name)
	if err := copyFile(filepath.Join("testdata", folder, name), filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
	return dir, rel
}

func mustLoad(t *testing.T, dir string) (*Repository, Diagnostics) {
	t.Helper()
	repo, diags, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return repo, diags
}

// hasError reports whether diags hold the expected error.
func hasError(diags Diagnostics, file string, line, col int, path, msg string) bool {
	for _, d := range diags {
		if d.Severity == SevError && d.File == file && d.Line == line &&
			(col == 0 || d.Column == col) && (path == "" || d.Path == path) &&
			strings.Contains(d.Message, msg) {
			return true
		}
	}
	return false
}

func dump(diags Diagnostics) string {
	if len(diags) == 0 {
		return "\t(no diagnostics)"
	}
	var b strings.Builder
	for _, d := range diags {
		b.WriteString("\t" + d.String() + "\n")
	}
	return b.String()
}

// wantAt formats an expectation like a Diagnostic.
func wantAt(file string, line, col int, path, msg string) string {
	pos := fmt.Sprintf("%s:%d", file, line)
	if col != 0 {
		pos += fmt.Sprintf(":%d", col)
	}
	if path != "" {
		pos += ": " + path
	}
	return fmt.Sprintf("%s: ...%q...", pos, msg)
}

// checkOnlyIn fails when an error stands outside the file(s) the mistake is
// in: a fixture must not make base look broken.
func checkOnlyIn(t *testing.T, diags Diagnostics, files ...string) {
	t.Helper()
	for _, d := range diags.Errors() {
		ok := false
		for _, f := range files {
			ok = ok || d.File == f
		}
		if !ok {
			t.Errorf("error outside %v: %s", files, d)
		}
	}
}

func TestFixtureBaseIsClean(t *testing.T) {
	repo, diags := mustLoad(t, baseRepo(t))
	if len(diags) != 0 {
		t.Fatalf("base repository must load without findings, got:\n%s", dump(diags))
	}
	if got := repo.String(); got != "2 APIs, 2 credentials, 2 policies" {
		t.Fatalf("base repository: %s", got)
	}
}

func TestFixtureBad(t *testing.T) {
	for _, c := range badFixtures {
		t.Run(strings.TrimSuffix(c.name, ".bad.yaml"), func(t *testing.T) {
			t.Parallel()
			dir, rel := withFixture(t, "bad", c.name)
			_, diags := mustLoad(t, dir)
			if !hasError(diags, rel, c.line, c.col, c.path, c.msg) {
				t.Errorf("want error %s\ngot:\n%s", wantAt(rel, c.line, c.col, c.path, c.msg), dump(diags))
			}
			checkOnlyIn(t, diags, rel)
		})
	}
}

// TestFixtureBadAllCovered keeps every fixture under test: each *.bad.yaml
// has exactly one row (or is a known loader bug), and each row a file.
func TestFixtureBadAllCovered(t *testing.T) {
	files, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	for _, c := range badFixtures {
		rows[c.name]++
	}
	bugs := map[string]bool{}
	for _, b := range loaderBugs {
		bugs[b] = true
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".bad.yaml") {
			t.Errorf("testdata/bad/%s: fixtures are named <kind>-<what>.bad.yaml", name)
			continue
		}
		onDisk[name] = true
		switch {
		case rows[name] == 0 && !bugs[name]:
			t.Errorf("testdata/bad/%s has no row in badFixtures", name)
		case rows[name] > 1:
			t.Errorf("testdata/bad/%s has %d rows in badFixtures", name, rows[name])
		case rows[name] == 1 && bugs[name]:
			t.Errorf("testdata/bad/%s has a row and is listed in loaderBugs: remove it from loaderBugs", name)
		}
	}
	for name := range rows {
		if !onDisk[name] {
			t.Errorf("badFixtures row %s: no such file in testdata/bad", name)
		}
	}
	for name := range bugs {
		if !onDisk[name] {
			t.Errorf("loaderBugs entry %s: no such file in testdata/bad", name)
		}
	}
	if n := len(onDisk); n < 45 {
		t.Errorf("only %d bad fixtures", n)
	}
}

// badRepos are mistakes that span files: each testdata/bad-repos/NAME is
// laid over base.
var badRepos = []struct {
	name string // folder in testdata/bad-repos
	file string // repository-relative file of the error
	line int
	col  int    // 0: not checked
	path string // "": not checked
	msg  string
}{
	{"duplicate-api", "apis/dup-b.yaml", 3, 0, "code", "apis/dup-a.yaml:4"},
	{"duplicate-api-subfolder", "apis/orders/echo-copy.yaml", 4, 0, "code", "apis/base.echo.yaml:3"},
	{"duplicate-appid", "credentials/zz-alpha-copy.yaml", 4, 0, "appId", "credentials/fx-alpha.yaml:3"},
	{"duplicate-policy", "policies/b-shared.yaml", 3, 0, "name", "policies/a-shared.yaml:5"},
}

func TestFixtureBadRepos(t *testing.T) {
	for _, c := range badRepos {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := baseRepo(t)
			copyTree(t, filepath.Join("testdata", "bad-repos", c.name), dir)
			_, diags := mustLoad(t, dir)
			if !hasError(diags, c.file, c.line, c.col, c.path, c.msg) {
				t.Errorf("want error %s\ngot:\n%s", wantAt(c.file, c.line, c.col, c.path, c.msg), dump(diags))
			}
			checkOnlyIn(t, diags, c.file)
		})
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "bad-repos"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		found := false
		for _, c := range badRepos {
			found = found || c.name == e.Name()
		}
		if !found {
			t.Errorf("testdata/bad-repos/%s has no row in badRepos", e.Name())
		}
	}
}

// goodLoaderBugs are good fixtures the loader refuses today; they are left
// out of TestFixtureGood until the loader is fixed.
var goodLoaderBugs = []string{}

func TestFixtureGood(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("testdata", "good", "*.good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 6 {
		t.Fatalf("only %d good fixtures", len(names))
	}
	sort.Strings(names)
	bugs := map[string]bool{}
	for _, b := range goodLoaderBugs {
		bugs[b] = true
		if _, err := os.Stat(filepath.Join("testdata", "good", b)); err != nil {
			t.Errorf("goodLoaderBugs entry %s: %v", b, err)
		}
	}
	for _, p := range names {
		name := filepath.Base(p)
		if bugs[name] {
			continue
		}
		t.Run(strings.TrimSuffix(name, ".good.yaml"), func(t *testing.T) {
			t.Parallel()
			dir, rel := withFixture(t, "good", name)
			repo, diags := mustLoad(t, dir)
			if diags.HasErrors() {
				t.Fatalf("want no errors, got:\n%s", dump(diags))
			}
			// The fixture was read, not skipped.
			if !strings.HasPrefix(name, "settings-") && repo.String() == "2 APIs, 2 credentials, 2 policies" {
				t.Errorf("%s was not loaded: %s", rel, repo)
			}
			if strings.HasPrefix(name, "settings-") && repo.Settings.Source.File != SettingsFile {
				t.Errorf("%s was not loaded: settings source %q", rel, repo.Settings.Source.File)
			}
		})
	}
}

// TestFixtureGoodMergeKeys checks what the anchors fixture means, not only
// that it loads: explicit keys win over merged ones wherever they stand.
func TestFixtureGoodMergeKeys(t *testing.T) {
	dir, _ := withFixture(t, "good", "api-anchors.good.yaml")
	repo, diags := mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("want no errors, got:\n%s", dump(diags))
	}
	a := repo.API("good.anchors", "v1")
	if a == nil {
		t.Fatal("good.anchors:v1 not loaded")
	}
	if len(a.Steps) != 5 {
		t.Fatalf("want 5 steps, got %d", len(a.Steps))
	}
	second, third := a.Steps[2], a.Steps[3]
	if second.HTTP == nil || third.HTTP == nil {
		t.Fatal("second and third steps must have an http block")
	}
	if got := second.HTTP.URL; got != "http://127.0.0.1:9001/b" {
		t.Errorf("second step url = %q, want its own url", got)
	}
	if got := third.HTTP.URL; got != "http://127.0.0.1:9001/c" {
		t.Errorf("third step url = %q, want its own url (explicit key before <<)", got)
	}
	if got := second.HTTP.Timeout.D().String(); got != "2s" {
		t.Errorf("second step timeout = %s, want the merged 2s", got)
	}
	h := third.HTTP.Headers
	if h["X-Extra"] != "yes" || h["X-Trace-Id"] != "${.traceId}" || h["X-App-Id"] != "${.request.appId}" {
		t.Errorf("third step headers = %v, want the merged ones plus X-Extra", h)
	}
	if third.Transforms == nil || third.Transforms.Error != "{reason: .error.message}" {
		t.Errorf("third step transforms = %+v, want the aliased ones", third.Transforms)
	}
}

// TestFixtureSampleRepository loads the repository at the project root, which
// `databus serve` serves out of the box.
func TestFixtureSampleRepository(t *testing.T) {
	repo, diags := mustLoad(t, filepath.Join("..", ".."))
	if diags.HasErrors() {
		t.Fatalf("the sample repository must load without errors, got:\n%s", dump(diags))
	}
	if len(repo.APIs) == 0 || len(repo.Credentials) == 0 || len(repo.Policies) == 0 {
		t.Fatalf("the sample repository looks empty: %s", repo)
	}
}

// TestTemplatedHostAllowedByList: a url whose host comes from an
// interpolation loads once databus.yaml lists the hosts it may reach.
func TestTemplatedHostAllowedByList(t *testing.T) {
	dir, rel := withFixture(t, "bad", "api-http-url-templated-host.bad.yaml")
	settings, err := os.ReadFile(filepath.Join(dir, SettingsFile))
	if err != nil {
		t.Fatal(err)
	}
	settings = append(settings, "gateway:\n  webClient: {allowedHosts: [orders.internal]}\n"...)
	if err := os.WriteFile(filepath.Join(dir, SettingsFile), settings, 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags := mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("%s with an allow-list: want no errors, got:\n%s", rel, dump(diags))
	}
}
