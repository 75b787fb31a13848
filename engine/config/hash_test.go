package config

import (
	"os"
	"path/filepath"
	"testing"
)

// ContentHash finds Load's hash without parsing: for repositories with
// and without descriptor sets, and it changes with any byte.
func TestContentHashIsLoadsHash(t *testing.T) {
	for _, dir := range []string{filepath.Join("testdata", "base"), filepath.Join("..", "..", "examples", "grpc"), filepath.Join("..", "..")} {
		repo, diags, err := Load(dir)
		if err != nil || diags.HasErrors() {
			t.Fatalf("%s: %v %v", dir, err, diags)
		}
		got, err := ContentHash(dir, repo)
		if err != nil || got != repo.Hash {
			t.Errorf("%s: ContentHash %s, %v; Load %s", dir, got, err, repo.Hash)
		}
	}
	dir := baseRepo(t)
	repo, _ := mustLoad(t, dir)
	p := filepath.Join(dir, "apis", "extra.yaml")
	if err := os.WriteFile(p, []byte("# a comment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := ContentHash(dir, repo); got == repo.Hash {
		t.Error("a new file left the hash unchanged")
	}
	os.Remove(filepath.Join(dir, "databus.yaml"))
	if _, err := ContentHash(dir, nil); err == nil {
		t.Error("no error without databus.yaml")
	}
}
