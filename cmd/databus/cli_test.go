package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func runCLI(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/databus -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cmd/databus -update after checking the change)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestValidateGolden(t *testing.T) {
	for _, format := range []string{"text", "json", "github"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := runCLI("validate", "testdata/invalid", "--format", format)
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; stderr: %s", code, exitInvalid, errOut)
			}
			if errOut != "" {
				t.Errorf("unexpected stderr: %s", errOut)
			}
			golden(t, "validate-invalid."+format, out)
		})
	}
}

// TestValidateOneRound checks that a file with schema errors still gets its
// semantic findings in the same run: a misspelled steps key (whose steps are
// checked under it), a bad duration, an unknown policy, an unclosed ${ and
// a jq program that does not compile, all in one round.
func TestValidateOneRound(t *testing.T) {
	out, errOut, code := runCLI("validate", "testdata/rounds")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitInvalid, errOut)
	}
	golden(t, "validate-rounds.text", out)
}

func TestValidateJSONShape(t *testing.T) {
	out, _, _ := runCLI("validate", "--format=json", "testdata/invalid")
	var diags []map[string]any
	if err := json.Unmarshal([]byte(out), &diags); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, out)
	}
	if len(diags) == 0 {
		t.Fatal("no findings")
	}
	for _, d := range diags {
		for _, k := range []string{"file", "line", "column", "path", "severity", "message"} {
			if _, ok := d[k]; !ok {
				t.Errorf("finding %v lacks %q", d, k)
			}
		}
	}
}

func TestValidateSampleRepository(t *testing.T) {
	out, errOut, code := runCLI("validate", "../..")
	if code != exitOK {
		t.Fatalf("the sample repository must validate: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "../..: valid (3 APIs, 1 credential, 2 policies, 16 test cases; 0 errors, 1 warning)") {
		t.Errorf("summary missing or changed:\n%s", out)
	}
	// The demo key is a committed secret: --strict refuses it.
	if _, _, code := runCLI("validate", "--strict", "../.."); code != exitInvalid {
		t.Errorf("--strict: exit %d, want %d", code, exitInvalid)
	}
}

func TestValidateUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"validate", "testdata/no-such-dir"}, exitUsage, "not a readable config repository"},
		{[]string{"validate", "cli_test.go"}, exitUsage, "not a directory"},
		{[]string{"validate", "--format", "xml", "."}, exitUsage, `unknown format "xml"`},
		{[]string{"validate", "a", "b"}, exitUsage, "one repository at a time"},
		{[]string{"validate", "--no-such-flag"}, exitUsage, "flag provided but not defined"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{}, exitUsage, "Usage: databus COMMAND"},
		{[]string{"bench", "--dir", "."}, exitUsage, "name one API"},
		{[]string{"bench", "x", "--rate", "10", "--max"}, exitUsage, "either --rate N (N > 0) or --max"},
		{[]string{"bench", "x"}, exitUsage, "either --rate N (N > 0) or --max"},
		{[]string{"bench", "x", "--max", "--concurrency", "0"}, exitUsage, "--concurrency must be at least 1"},
		{[]string{"bench", "x", "--max", "--format", "csv"}, exitUsage, `--format "csv"`},
		{[]string{"bench", "x", "--max", "--unsigned", "--verify"}, exitUsage, "does not go with --unsigned"},
		{[]string{"bench", "x", "--max", "--dir", "testdata/no-such-dir"}, exitUsage, "--app is required"},
		{[]string{"bench", "x", "--max", "--unsigned", "--url", "http://127.0.0.1:1"}, exitInvalid, "the target does not answer"},
		{[]string{"serve", "--log-format", "xml"}, exitUsage, `unknown log format "xml"`},
		{[]string{"serve", "--dir", "testdata/invalid"}, exitInvalid, "the config repository is invalid"},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("databus %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.err)
		}
	}
}

func TestHelp(t *testing.T) {
	out, _, code := runCLI("--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	golden(t, "help.txt", out)
	for name := range commands {
		out, errOut, code := runCLI(name, "--help")
		if code != exitOK {
			t.Errorf("%s --help: exit %d", name, code)
		}
		if !strings.Contains(out+errOut, "Usage: databus "+name) {
			t.Errorf("%s --help does not show its usage:\n%s%s", name, out, errOut)
		}
	}
	out, errOut, _ := runCLI("validate", "--help")
	golden(t, "validate-help.txt", out+errOut)
}

// A folder that is not a config repository is refused (a CI step pointed
// at the wrong folder must not pass), with a hint at the one below it.
func TestValidateNotARepository(t *testing.T) {
	empty := t.TempDir()
	out, _, code := runCLI("validate", empty)
	if code != exitInvalid || !strings.Contains(out, "databus.yaml:1:1: error: "+empty+" is not a Databus config repository") {
		t.Fatalf("empty folder: exit %d\n%s", code, out)
	}
	parent := t.TempDir()
	os.MkdirAll(filepath.Join(parent, "config"), 0o755)
	os.WriteFile(filepath.Join(parent, "config", "databus.yaml"), []byte("apiVersion: databus/v1\nkind: Settings\n"), 0o644)
	out, _, code = runCLI("validate", parent)
	if code != exitInvalid || !strings.Contains(out, "config/databus.yaml exists: point the command at "+parent+"/config") {
		t.Fatalf("parent of the repository: exit %d\n%s", code, out)
	}
}

// validate refuses what serve refuses: a script whose top level throws
// (the loader alone let it through).
func TestValidateRunsTheGate(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"apis/x.yaml": "apiVersion: databus/v1\nkind: Api\ncode: x\nversion: v1\nstatus: online\nmethods: [GET]\nsteps:\n  - {id: start, type: start}\n" +
			"  - id: s\n    type: script\n    script: {source: 'throw new Error(\"x\"); function main(ctx){return {}}'}\n  - {id: end, type: end}\n",
	})
	out, _, code := runCLI("validate", dir)
	if code != exitInvalid || !strings.Contains(out, "apis/x.yaml:11:") || !strings.Contains(out, "error: steps[1].script.source: script top level throws: Error: x") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
