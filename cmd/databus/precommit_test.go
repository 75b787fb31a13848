package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreCommitHook installs ci/pre-commit in real git repositories and
// checks that it refuses a commit with an invalid API or a failing contract
// test and lets a valid one in, with the config repository at the top of the
// checkout and in a folder named by DATABUS_DIR (relative and absolute).
func TestPreCommitHook(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "databus"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	hook, err := os.ReadFile("../../ci/pre-commit")
	if err != nil {
		t.Fatal(err)
	}
	// newRepo makes a checkout with the hook installed; git runs a command
	// in it with env added.
	newRepo := func(t *testing.T) (repo string, git func(env []string, args ...string) (string, error)) {
		repo = t.TempDir()
		git = func(env []string, args ...string) (string, error) {
			cmd := exec.Command("git", args...)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
			cmd.Env = append(cmd.Env, env...)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := git(nil, "init", "-q", "-b", "main"); err != nil {
			t.Fatalf("git init: %v %s", err, out)
		}
		if err := os.WriteFile(filepath.Join(repo, ".git", "hooks", "pre-commit"), hook, 0o755); err != nil {
			t.Fatal(err)
		}
		return repo, git
	}
	const (
		validAPI   = "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
		invalidAPI = "apiVersion: databus/v1\nkind: Api\ncode: a\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: nope}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
		testCase   = "apiVersion: databus/v1\nkind: ApiTest\napi: a:v1\ncases:\n  - name: unsigned is refused\n    expect: {code: %d}\n"
	)
	for _, c := range []struct {
		name string
		sub  string // the config repository's folder in the checkout
		env  func(repo string) string
		// shown: how the hook names the repository in validate's summary
		shown string
	}{
		{name: "top of the checkout", sub: "", shown: "."},
		{name: "relative DATABUS_DIR", sub: "config", env: func(string) string { return "DATABUS_DIR=config" }, shown: "config"},
		{name: "relative DATABUS_DIR with a trailing slash", sub: "deploy/config", env: func(string) string { return "DATABUS_DIR=deploy/config/" }, shown: "deploy/config"},
		{name: "absolute DATABUS_DIR", sub: "config", env: func(repo string) string { return "DATABUS_DIR=" + filepath.Join(repo, "config") }, shown: "config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			repo, git := newRepo(t)
			var env []string
			if c.env != nil {
				env = []string{c.env(repo)}
			}
			write := func(rel, body string) {
				p := filepath.Join(repo, c.sub, rel)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			commit := func(msg string) (string, error) {
				git(nil, "add", "-A")
				return git(env, "commit", "-q", "-m", msg)
			}
			file := filepath.ToSlash(filepath.Join(c.sub, "apis/a.yaml"))
			write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
			write("policies/p.yaml", "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\n")
			write("apis/a.yaml", validAPI)
			if out, err := commit("valid"); err != nil {
				t.Fatalf("a valid commit was refused: %v\n%s", err, out)
			}
			write("apis/a.yaml", invalidAPI)
			out, err := commit("invalid")
			if err == nil {
				t.Fatalf("an invalid commit was accepted:\n%s", out)
			}
			if !strings.Contains(out, file+":7:") || !strings.Contains(out, `rate-limit policy "nope" not found`) {
				t.Errorf("hook output does not point at the error in %s:\n%s", file, out)
			}
			if !strings.Contains(out, "\n"+c.shown+": invalid (") && !strings.HasPrefix(out, c.shown+": invalid (") {
				t.Errorf("the summary does not name the repository as %q:\n%s", c.shown, out)
			}

			// A contract test that fails refuses the commit too; fixed, it passes.
			write("apis/a.yaml", validAPI)
			write("tests/a.yaml", fmt.Sprintf(testCase, 200))
			out, err = commit("failing test")
			if err == nil {
				t.Fatalf("a commit with a failing contract test was accepted:\n%s", out)
			}
			tests := filepath.ToSlash(filepath.Join(c.sub, "tests/a.yaml"))
			if !strings.Contains(out, "FAIL  a/unsigned is refused ("+tests+":5)") || !strings.Contains(out, "\n    "+tests+":6: expect.code: expected code 200, got 401") {
				t.Errorf("hook output does not show the failing case:\n%s", out)
			}
			write("tests/a.yaml", fmt.Sprintf(testCase, 401))
			if out, err := commit("passing test"); err != nil {
				t.Fatalf("a commit whose tests pass was refused: %v\n%s", err, out)
			}
		})
	}

	// A DATABUS_DIR outside the checkout is a usage error that says so.
	_, git := newRepo(t)
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "databus.yaml"), []byte("apiVersion: databus/v1\nkind: Settings\n"), 0o644)
	out, err := git([]string{"DATABUS_DIR=" + other}, "commit", "-q", "--allow-empty", "-m", "x")
	if err == nil || !strings.Contains(out, "is not inside this checkout") {
		t.Errorf("DATABUS_DIR outside the checkout: err %v, output:\n%s", err, out)
	}
}
