package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A secret file is a small regular file: a device or a large file is
// refused without being read whole. In a repository that is not trusted
// (ResolveInRepo), only files inside it are read: never the environment,
// a file elsewhere, or a link out of it.
func TestSecretBounds(t *testing.T) {
	repo := t.TempDir()
	outside := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(repo, "keys/demo.key"), "0123456789abcdef\n")
	write(filepath.Join(repo, "keys/big.key"), strings.Repeat("k", MaxSecretBytes+1))
	write(filepath.Join(outside, "prod.key"), "fedcba9876543210")
	if err := os.Symlink(filepath.Join(outside, "prod.key"), filepath.Join(repo, "keys/link.key")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABUS_TEST_SECRET", "from-the-environment")

	cases := []struct {
		ref    string
		inRepo bool
		want   string // the value, or the error's words
		ok     bool
	}{
		{"file:keys/demo.key", false, "0123456789abcdef", true},
		{"file:keys/demo.key", true, "0123456789abcdef", true},
		{"file:/dev/zero", false, "not a regular file", false},
		{"file:keys/big.key", false, "larger than 65536 bytes", false},
		{"env:DATABUS_TEST_SECRET", false, "from-the-environment", true},
		{"env:DATABUS_TEST_SECRET", true, "is not read here", false},
		{"file:" + filepath.Join(outside, "prod.key"), false, "fedcba9876543210", true},
		{"file:" + filepath.Join(outside, "prod.key"), true, "is not read here", false},
		{"file:../" + filepath.Base(outside) + "/prod.key", true, "is not read here", false},
		{"file:keys/link.key", true, "is not read here", false},
	}
	for _, c := range cases {
		ref := SecretRef{Ref: c.ref}
		resolve := ref.Resolve
		if c.inRepo {
			resolve = ref.ResolveInRepo
		}
		v, err := resolve(repo)
		switch {
		case c.ok && (err != nil || string(v) != c.want):
			t.Errorf("%s (inRepo %v): %q, %v; want %q", c.ref, c.inRepo, v, err, c.want)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s (inRepo %v): %q, %v; want an error saying %q", c.ref, c.inRepo, v, err, c.want)
		case !c.ok && strings.Contains(err.Error(), "fedcba") || err != nil && strings.Contains(err.Error(), "from-the-environment"):
			t.Errorf("%s: the error shows the value: %v", c.ref, err)
		}
	}
}
