package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreCommitHook installs ci/pre-commit in a real git repository and
// checks that it refuses a commit with an invalid API and lets a valid one in.
func TestPreCommitHook(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "databus"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	repo := t.TempDir()
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := git("init", "-q", "-b", "main"); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	hook, err := os.ReadFile("../../ci/pre-commit")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, ".git", "hooks", "pre-commit"), hook, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(rel, body string) {
		p := filepath.Join(repo, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	write("policies/p.yaml", "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\n")
	write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	git("add", "-A")
	if out, err := git("commit", "-q", "-m", "valid"); err != nil {
		t.Fatalf("a valid commit was refused: %v\n%s", err, out)
	}
	write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: nope}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	git("add", "-A")
	out, err := git("commit", "-q", "-m", "invalid")
	if err == nil {
		t.Fatalf("an invalid commit was accepted:\n%s", out)
	}
	if !strings.Contains(out, "apis/a.yaml:7:") || !strings.Contains(out, `rate-limit policy "nope" not found`) {
		t.Errorf("hook output does not point at the error:\n%s", out)
	}

	// A contract test that fails refuses the commit too; fixed, it passes.
	write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	test := "apiVersion: databus/v1\nkind: ApiTest\napi: a:v1\ncases:\n  - name: unsigned is refused\n    expect: {code: %d}\n"
	write("tests/a.yaml", fmt.Sprintf(test, 200))
	git("add", "-A")
	out, err = git("commit", "-q", "-m", "failing test")
	if err == nil {
		t.Fatalf("a commit with a failing contract test was accepted:\n%s", out)
	}
	if !strings.Contains(out, "FAIL  a/unsigned is refused (tests/a.yaml:5)") || !strings.Contains(out, "tests/a.yaml:6: expect.code: expected code 200, got 401") {
		t.Errorf("hook output does not show the failing case:\n%s", out)
	}
	write("tests/a.yaml", fmt.Sprintf(test, 401))
	git("add", "-A")
	if out, err := git("commit", "-q", "-m", "passing test"); err != nil {
		t.Fatalf("a commit whose tests pass was refused: %v\n%s", err, out)
	}
}
