package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzFolders maps the fuzzer's selector byte to where the document goes.
var fuzzFolders = []string{"apis/fuzz.yaml", "credentials/fuzz.yaml", "policies/fuzz.yaml", SettingsFile, "tests/fuzz.yaml"}

func folderFor(name string) int {
	switch {
	case strings.HasPrefix(name, "cred"):
		return 1
	case strings.HasPrefix(name, "policy"):
		return 2
	case strings.HasPrefix(name, "settings"), name == SettingsFile:
		return 3
	}
	return 0
}

// FuzzLoad feeds arbitrary documents to the loader: it must never panic, and
// every finding must name the file and a line.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	more, _ := filepath.Glob("../../apis/*.yaml")
	seeds = append(seeds, more...)
	seeds = append(seeds, "../../credentials/demo-app.yaml", "../../policies/standard.yaml", "../../databus.yaml")
	tests, _ := filepath.Glob("../../tests/*.yaml")
	seeds = append(seeds, tests...)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		sel := folderFor(filepath.Base(s))
		switch filepath.Base(filepath.Dir(s)) {
		case "credentials":
			sel = 1
		case "policies":
			sel = 2
		case "tests":
			sel = 4
		}
		f.Add(uint8(sel), data)
	}
	f.Add(uint8(0), []byte("a: &a [*a, *a]\nb: *a"))
	f.Add(uint8(0), []byte("x: &x {a: 1}\n<<: *x\n"))

	dir := f.TempDir()
	for _, sub := range KindDirs {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		target := fuzzFolders[int(sel)%len(fuzzFolders)]
		for _, p := range fuzzFolders {
			os.Remove(filepath.Join(dir, p))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(target)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		repo, diags, err := Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if repo == nil || repo.Settings == nil {
			t.Fatal("Load returned no repository")
		}
		for _, d := range diags {
			if d.File == "" || d.Line < 1 || d.Column < 1 {
				t.Fatalf("finding without a position: %+v", d)
			}
			if d.Message == "" {
				t.Fatalf("finding without a message: %+v", d)
			}
		}
	})
}
