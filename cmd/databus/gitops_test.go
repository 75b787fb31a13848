package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// gitopsGolden compares got with testdata/gitops/name (-update rewrites it).
func gitopsGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "gitops", name)
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

var hashRE = regexp.MustCompile(`\b[0-9a-f]{40}\b|\b[0-9a-f]{7}\b`)

// normalize names the sample's commits, replaces other hashes (a rollback's
// new commit) by <NEW>, and the repository's path by DIR.
func normalize(s *gitopstest.SampleRepo, out string) string {
	out = strings.ReplaceAll(out, s.Dir, "DIR")
	named := map[string]string{}
	for name, h := range map[string]string{"C1": s.C1, "C2": s.C2, "C3": s.C3, "C4": s.C4, "FEATURE": s.Feature, "BROKEN": s.Broken} {
		named[h] = "<" + name + ">"
		named[h[:7]] = "<" + name + ">"
	}
	return hashRE.ReplaceAllStringFunc(out, func(h string) string {
		if n, ok := named[h]; ok {
			return n
		}
		return "<NEW>"
	})
}

func TestVersionsCommand(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	tests := []struct {
		golden string
		args   []string
	}{
		{"versions-order.txt", []string{"versions", "order.create:v1", "--dir", s.Dir}},
		{"versions-stock.txt", []string{"versions", "--dir", s.Dir, "stock.reserve"}}, // deleted at HEAD
		{"versions-order.json", []string{"versions", "order.create", "--dir", s.Dir, "--format", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, errOut, code := runCLI(tt.args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			gitopsGolden(t, tt.golden, normalize(s, out))
		})
	}
	out, _, _ := runCLI("versions", "order.create:v1", "--dir", s.Dir, "--format", "json")
	var vs []map[string]any
	if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != 3 || vs[0]["hash"] != s.C3 || vs[0]["oldPath"] != "apis/order.yaml" {
		t.Errorf("json: %v\n%s", err, out)
	}
}

func TestDiffCommand(t *testing.T) {
	s := gitopstest.Sample(t, "")
	s.Write("databus.yaml", strings.Replace(gitopstest.Settings, "basePath: /api", "basePath: /gateway", 1))
	tests := []struct {
		golden string
		args   []string
	}{
		{"diff-c1-c4.txt", []string{"diff", s.C1[:8], "main", "--dir", s.Dir}},
		{"diff-tags.md", []string{"diff", "v0.9", "v1.0", "--dir", s.Dir, "--format", "markdown"}},
		{"diff-worktree.json", []string{"diff", "HEAD", "--dir", s.Dir, "--format=json"}},
		{"diff-none.txt", []string{"diff", "HEAD~1", "HEAD~1", "--dir", s.Dir}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			out, errOut, code := runCLI(tt.args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			gitopsGolden(t, tt.golden, normalize(s, out))
		})
	}
}

func TestRollbackCommand(t *testing.T) {
	t.Run("worktree", func(t *testing.T) {
		s := gitopstest.Sample(t, "")
		out, errOut, code := runCLI("rollback", "order.create:v1", "--to", "v0.9", "--dir", s.Dir)
		if code != exitOK || errOut != "" {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		gitopsGolden(t, "rollback.txt", normalize(s, out))
		if s.Head() != s.C4 || s.Read("apis/order.yaml") != strings.TrimPrefix(gitopstest.OrderV2, "\n") {
			t.Error("the file was not restored, or HEAD moved")
		}
	})
	t.Run("commit", func(t *testing.T) {
		s := gitopstest.Sample(t, "config")
		s.SetUser("Carol Ops", "carol@example.com")
		out, errOut, code := runCLI("rollback", "--commit", "order.create", "--to", s.C1, "--dir", s.Dir)
		if code != exitOK || errOut != "" {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		gitopsGolden(t, "rollback-commit.txt", normalize(s, out))
		if s.Head() == s.C4 {
			t.Error("nothing committed")
		}
		out, _, _ = runCLI("versions", "order.create", "--dir", s.Dir)
		if !strings.Contains(out, "Carol Ops") || !strings.Contains(out, "Roll back order.create:v1 to "+s.C1[:7]) {
			t.Errorf("versions after the rollback:\n%s", out)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		s := gitopstest.Sample(t, "")
		out, errOut, code := runCLI("rollback", "stock.reserve:v1", "--to", s.C2, "--commit", "--dir", s.Dir)
		if code != exitInvalid || errOut != "" {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		gitopsGolden(t, "rollback-invalid.txt", normalize(s, out))
		if _, err := os.Stat(s.Path("apis/stock.yaml")); err == nil || s.Head() != s.C4 {
			t.Error("an invalid rollback changed the tree")
		}
	})
}

func TestGitopsUsage(t *testing.T) {
	s := gitopstest.Sample(t, "")
	plain := t.TempDir()
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"versions"}, exitUsage, "give one API"},
		{[]string{"versions", "a", "b"}, exitUsage, "give one API"},
		{[]string{"versions", "x", "--format", "xml"}, exitUsage, `unknown format "xml"`},
		{[]string{"versions", "order.create", "--dir", plain}, exitUsage, "not inside a git work tree"},
		{[]string{"versions", "nosuch", "--dir", s.Dir}, exitUsage, "API nosuch is defined in no file of apis/"},
		{[]string{"diff", "--dir", s.Dir}, exitUsage, "give one or two revisions"},
		{[]string{"diff", "a", "b", "c"}, exitUsage, "give one or two revisions"},
		{[]string{"diff", "HEAD", "--format", "html"}, exitUsage, `unknown format "html"`},
		{[]string{"diff", "nosuch", "--dir", s.Dir}, exitUsage, `revision "nosuch"`},
		{[]string{"diff", "HEAD", "--dir", plain}, exitUsage, "not inside a git work tree"},
		{[]string{"rollback", "order.create", "--dir", s.Dir}, exitUsage, "--to REV is required"},
		{[]string{"rollback", "--to", "HEAD"}, exitUsage, "give one API"},
		{[]string{"rollback", "order.create:v9", "--to", "HEAD", "--dir", s.Dir}, exitUsage, "API order.create:v9 does not exist at"},
		{[]string{"rollback", "order.create", "--to", "nosuch", "--dir", s.Dir}, exitUsage, `revision "nosuch"`},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.err) {
			t.Errorf("databus %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.err)
		}
	}
	for _, name := range []string{"versions", "diff", "rollback"} {
		out, errOut, code := runCLI(name, "--help")
		if code != exitOK {
			t.Errorf("%s --help: exit %d", name, code)
		}
		gitopsGolden(t, name+"-help.txt", out+errOut)
	}
}
