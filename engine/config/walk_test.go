package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadSymlinkLoops: symlinks back to a containing folder (ln -s .
// apis/l1) are found by device and inode, reported once each as a warning
// at the link, and not followed; a second link to a folder already read is
// reported too; every real file is listed once.
func TestLoadSymlinkLoops(t *testing.T) {
	dir := baseRepo(t)
	team := filepath.Join(dir, "apis", "team")
	if err := os.MkdirAll(team, 0o755); err != nil {
		t.Fatal(err)
	}
	api, err := os.ReadFile(filepath.Join(dir, "apis", "base.echo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	api = []byte(strings.Replace(string(api), "code: base.echo", "code: team.echo", 1))
	if err := os.WriteFile(filepath.Join(team, "team.echo.yaml"), api, 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"apis/l1":          ".",
		"apis/l2":          ".",
		"apis/l3":          ".",
		"apis/team/up":     "..",
		"apis/a-team":      "team", // sorts before team: still reported as the alias
		"policies/p/again": "../../policies",
	} {
		p := filepath.Join(dir, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}

	repo, diags := mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("errors: %v", diags)
	}
	var got []string
	for _, a := range repo.APIs {
		got = append(got, a.Code)
	}
	if strings.Join(got, ",") != "base.calc,base.echo,team.echo" {
		t.Errorf("APIs = %v, want each real file once", got)
	}
	if len(repo.Policies) != 2 {
		t.Errorf("%d policies, want 2", len(repo.Policies))
	}
	want := map[string]string{
		"apis/l1":          "symlink loop: this link leads back to apis/",
		"apis/l2":          "symlink loop: this link leads back to apis/",
		"apis/l3":          "symlink loop: this link leads back to apis/",
		"apis/team/up":     "symlink loop: this link leads back to apis/",
		"policies/p/again": "symlink loop: this link leads back to policies/",
		"apis/a-team":      "this link leads to the folder already read as apis/team/",
	}
	seen := map[string]int{}
	for _, d := range diags {
		if d.Severity != SevWarning || !strings.Contains(d.Message, "link") {
			continue
		}
		seen[d.File]++
		if w, ok := want[d.File]; !ok || !strings.HasPrefix(d.Message, w) {
			t.Errorf("unexpected: %s", d)
		}
	}
	for file := range want {
		if seen[file] != 1 {
			t.Errorf("%s reported %d times, want once; diagnostics: %v", file, seen[file], diags)
		}
	}
}
