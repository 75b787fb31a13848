package config

import (
	"testing"

	"github.com/databus-gateway/databus/engine/config/configtest"
)

// BenchmarkValidateLargeRepo loads and checks 1,000 APIs, 200 credentials
// and 50 policies, as `databus validate` does.
func BenchmarkValidateLargeRepo(b *testing.B) {
	dir := b.TempDir()
	configtest.WriteLargeRepo(b, dir, 1000, 200, 50)
	b.ReportAllocs()
	for b.Loop() {
		repo, diags, err := Load(dir)
		if err != nil {
			b.Fatal(err)
		}
		if diags.HasErrors() {
			b.Fatalf("generated repository is invalid:\n%s", diags.Error())
		}
		if len(repo.APIs) != 1000 || len(repo.Credentials) != 200 || len(repo.Policies) != 50 {
			b.Fatalf("loaded %s", repo)
		}
	}
}

func TestLargeRepoIsValid(t *testing.T) {
	dir := t.TempDir()
	configtest.WriteLargeRepo(t, dir, 30, 5, 3)
	repo, diags, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 0 {
		t.Fatalf("want no findings, got:\n%v", diags)
	}
	if len(repo.APIs) != 30 {
		t.Fatalf("loaded %s", repo)
	}
}
