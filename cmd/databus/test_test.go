package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fixture testdata/apitest holds one API (an http step, a rate limit
// of two a minute) and four cases: two pass, one fails (its stub answers
// 5 where the case expects 4), one is the test's own mistake (a stub never
// called).

func TestTestGolden(t *testing.T) {
	for _, format := range []string{"text", "json", "github"} {
		t.Run(format, func(t *testing.T) {
			out, errOut, code := runCLI("test", "testdata/apitest", "--format", format)
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d; stderr: %s\n%s", code, exitInvalid, errOut, out)
			}
			if errOut != "" {
				t.Errorf("unexpected stderr: %s", errOut)
			}
			golden(t, "test-apitest."+format, out)
		})
	}
}

func TestTestReport(t *testing.T) {
	out, _, _ := runCLI("test", "testdata/apitest", "--format", "json")
	var rep struct {
		Passed, Failed, Errors int
		Cases                  []struct {
			Name, File, Outcome string
			Line                int
			Failures            []struct {
				Line             int
				What, Message    string
				Expected, Actual string
				Mistake          bool
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json output does not parse: %v\n%s", err, out)
	}
	if rep.Passed != 2 || rep.Failed != 1 || rep.Errors != 1 || len(rep.Cases) != 4 {
		t.Fatalf("passed %d failed %d errors %d of %d cases, want 2/1/1 of 4\n%s", rep.Passed, rep.Failed, rep.Errors, len(rep.Cases), out)
	}
	want := map[string]string{"echo/echoes": "pass", "echo/wrong total": "fail", "echo/stub never called": "error", "echo/third call is limited": "pass"}
	for _, c := range rep.Cases {
		if want[c.Name] != c.Outcome {
			t.Errorf("%s: outcome %s, want %s", c.Name, c.Outcome, want[c.Name])
		}
		if c.File != "testdata/apitest/tests/echo.yaml" {
			t.Errorf("%s: file %s", c.Name, c.File)
		}
		switch c.Name {
		case "echo/wrong total":
			if c.Line != 21 || len(c.Failures) != 3 {
				t.Fatalf("wrong total: line %d, failures %+v", c.Line, c.Failures)
			}
			// The response: 5 * 10 from the stub, where the case expects 40.
			f := c.Failures[1]
			if f.Line != 31 || f.What != "expect.response" || !strings.Contains(f.Actual, `"total": 50`) || !strings.Contains(f.Expected, `"total": 40`) {
				t.Errorf("response failure: %+v", f)
			}
		case "echo/stub never called":
			if len(c.Failures) != 1 || !c.Failures[0].Mistake || c.Failures[0].Line != 41 || !strings.Contains(c.Failures[0].Message, "never called") {
				t.Errorf("mistake: %+v", c.Failures)
			}
		}
	}
}

func TestTestRunPattern(t *testing.T) {
	out, errOut, code := runCLI("test", "testdata/apitest", "--run", "echoes|limited$", "-v")
	if code != exitOK {
		t.Fatalf("exit %d, want 0: %s%s", code, out, errOut)
	}
	for _, s := range []string{"ok    echo/echoes (", "ok    echo/third call is limited (", "testdata/apitest: ok: 2 cases passed (1 file)"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "wrong total") {
		t.Errorf("--run did not leave the other cases out:\n%s", out)
	}
	out, _, code = runCLI("test", "testdata/apitest", "--run", "wrong")
	if code != exitInvalid || !strings.Contains(out, "FAIL  echo/wrong total") || strings.Contains(out, "never called") {
		t.Errorf("--run wrong: exit %d\n%s", code, out)
	}
	// A pattern that selects nothing is a typo, not a pass.
	out, _, code = runCLI("test", "testdata/apitest", "--run", "typo")
	if code != exitInvalid || !strings.Contains(out, `no test case matches --run "typo"; cases are named <file>/<name>, e.g. "echo/echoes"`) {
		t.Errorf("--run matching nothing: exit %d\n%s", code, out)
	}
	// A repository without tests has nothing to fail.
	dir := t.TempDir()
	copyDir(t, "testdata/apitest", dir)
	if err := os.RemoveAll(filepath.Join(dir, "tests")); err != nil {
		t.Fatal(err)
	}
	out, _, code = runCLI("test", dir)
	if code != exitOK || !strings.Contains(out, "no test cases in tests/ (kind ApiTest): nothing to run") {
		t.Errorf("no tests: exit %d\n%s", code, out)
	}
}

func TestTestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"test", "testdata/no-such-dir"}, exitUsage, "not a readable config repository"},
		{[]string{"test", "--format", "xml", "testdata/apitest"}, exitUsage, `unknown format "xml"`},
		{[]string{"test", "--run", "(", "testdata/apitest"}, exitUsage, "--run"},
		{[]string{"test", "a", "b"}, exitUsage, "one repository at a time"},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("databus %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.err)
		}
	}
}

// TestTestRefusedRepository: a test file validate refuses (here: a case
// naming an API that does not exist) stops the run with the gate's
// findings at file:line:column, exit 1.
func TestTestRefusedRepository(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/apitest", dir)
	bad := "apiVersion: databus/v1\nkind: ApiTest\ncases:\n  - name: x\n    api: nope:v1\n"
	if err := os.WriteFile(filepath.Join(dir, "tests", "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI("test", dir)
	if code != exitInvalid {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	if !strings.Contains(out, "tests/bad.yaml:5:10: error: cases[0].api: case \"x\": API nope:v1 not found in apis/ (known: echo:v1)") || !strings.Contains(out, "refused by the gate (1 error): no case ran") {
		t.Errorf("output:\n%s", out)
	}
	// validate refuses it at the same place.
	vout, _, vcode := runCLI("validate", dir)
	if vcode != exitInvalid || !strings.Contains(vout, "tests/bad.yaml:5:10: error: cases[0].api") {
		t.Errorf("validate: exit %d\n%s", vcode, vout)
	}
}

// TestTestSampleRepository runs the project's own contract tests (tests/
// at the repository root), so that CI runs them.
func TestTestSampleRepository(t *testing.T) {
	out, errOut, code := runCLI("test", "../..")
	if code != exitOK {
		t.Fatalf("the sample repository's tests must pass: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "../..: ok: ") || !strings.Contains(out, "(3 files)") {
		t.Errorf("summary missing or changed:\n%s", out)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
