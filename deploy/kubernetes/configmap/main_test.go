package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The command writes the component, and --check tells a current one from
// a stale one (the CI step after a repository change).
func TestWriteThenCheck(t *testing.T) {
	out := filepath.Join(t.TempDir(), "config")
	args := []string{"--repo", "../../../examples/grpc", "--out", out}
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{"kustomization.yaml", "configmap.yaml", "volume.yaml"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
	stdout.Reset()
	if code := run(append(args, "--check"), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "up to date") {
		t.Fatalf("--check on what it just wrote: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	if err := os.WriteFile(filepath.Join(out, "volume.yaml"), []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(append(args, "--check"), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "volume.yaml is not what") {
		t.Fatalf("--check on an edited component: exit %d: %s", code, stderr.String())
	}
}

func TestUsageAndRefusals(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--repo", "x"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage:") {
		t.Fatalf("without --out: exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"--repo", t.TempDir(), "--out", t.TempDir()}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "databus.yaml") {
		t.Fatalf("a folder without databus.yaml: exit %d: %s", code, stderr.String())
	}
}
