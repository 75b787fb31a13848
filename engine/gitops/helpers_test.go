package gitops

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// open opens the config repository of a test repo.
func open(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// names replaces the sample's hashes (full, then short) by their names.
func names(s *gitopstest.SampleRepo, text string, extra ...string) string {
	pairs := []string{s.C1, "<C1>", s.C2, "<C2>", s.C3, "<C3>", s.C4, "<C4>", s.Feature, "<FEATURE>", s.Broken, "<BROKEN>"}
	pairs = append(pairs, extra...)
	for i := 0; i < len(pairs); i += 2 {
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	for i := 0; i < len(pairs); i += 2 {
		text = strings.ReplaceAll(text, short(pairs[i]), pairs[i+1])
	}
	return text
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./engine/gitops -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./engine/gitops -update after checking the change)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// snapshot returns every file under dir (except .git) with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[filepath.ToSlash(rel)+"/"] = ""
			return nil
		}
		data, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gateCheck is the gate's dry build, as databus rollback passes it.
func gateCheck(ctx context.Context, dir string) (config.Diagnostics, error) {
	_, diags, err := gate.Check(ctx, dir)
	return diags, err
}
