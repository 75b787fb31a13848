package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, body := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSalvageFindings checks the findings of files the schema refuses:
// the semantic checks run on what the schema accepted, never on what it
// refused (no second finding for one fault), and a policy or credential
// whose file does not decode is not reported missing by the APIs naming it.
func TestSalvageFindings(t *testing.T) {
	const head = "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\n"
	dir := writeFiles(t, map[string]string{
		"databus.yaml": "apiVersion: databus/v1\nkind: Settings\n",
		// limt: misspelled, so the policy does not decode.
		"policies/p.yaml":    "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\nlimt: 5\nkeyTemplate: '${nope}'\n",
		"credentials/c.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: c\nenabled: maybe\n",
		"apis/a.yaml": head + "auth: {credentials: [c, ghost, 7]}\npolicies: {rateLimit: p}\n" +
			"colour: red\n" + // an unknown key with no suggestion
			"transforms: {response: 5, request: '.x |'}\n" +
			"steps:\n  - {id: start, type: start}\n  - id: s\n    type: script\n    script: {source: 'function f() {}'}\n  - {id: end, type: end}\n",
		// A valid API naming the broken policy and credential.
		"apis/b.yaml": "apiVersion: databus/v1\nkind: Api\ncode: b\nversion: v1\nstatus: online\nmethods: [GET]\nauth: {credentials: [c]}\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n",
	})
	_, diags, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{
		`policies/p.yaml:4:1: error: limt: unknown key "limt" (did you mean "limit"?)`,
		`policies/p.yaml:5:14: error: keyTemplate: unknown variable ${nope}`,
		`credentials/c.yaml:4:10: error: enabled:`,
		`apis/a.yaml:7:25: error: auth.credentials[1]: credential "ghost" not found in credentials/`,
		`apis/a.yaml:7:32: error: auth.credentials[2]:`,
		`apis/a.yaml:9:1: error: colour: unknown key "colour"`,
		`apis/a.yaml:10:24: error: transforms.response:`,
		`apis/a.yaml:10:41: error: transforms.request: jq program does not compile`,
		`apis/a.yaml:15:22: error: steps[1].script.source: script must define a function main(ctx)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing finding %q in:\n%s", want, text)
		}
	}
	for _, not := range []string{
		`"p" not found`,      // the policy's own file has its error
		`credential "c" not`, // the credential's too
		`credential "7"`,     // a refused entry is not a reference
		`jq program does not compile: 5`,
	} {
		if strings.Contains(text, not) {
			t.Errorf("cascading finding %q in:\n%s", not, text)
		}
	}
	// One finding per fault: no line:column carries two findings.
	seen := map[string]bool{}
	for _, d := range diags {
		k := d.File + ":" + d.Path
		if seen[k] {
			t.Errorf("two findings for %s:\n%s", k, text)
		}
		seen[k] = true
	}
}
