package schema

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var kindLine = regexp.MustCompile(`(?m)^kind:\s*(\w+)\s*$`)

// modeline is the first line of every sample and example document: editors
// with the YAML language server (VS Code's YAML extension, Neovim, Helix,
// JetBrains) complete and check the file against its kind's schema.
const modeline = "# yaml-language-server: $schema="

// TestSampleModelines: every document of the sample repository and the
// examples names, on its first line, the schema of its own kind in schema/,
// by a path relative to the file that resolves.
func TestSampleModelines(t *testing.T) {
	var checked int
	for _, root := range []string{"../databus.yaml", "../apis", "../credentials", "../policies", "../tests", "../examples"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			m := kindLine.FindSubmatch(b)
			if m == nil {
				return nil
			}
			file, ok := fileOf[Kind(m[1])]
			if !ok {
				return nil
			}
			checked++
			first, _ := bufio.NewReader(strings.NewReader(string(b))).ReadString('\n')
			rel, ok := strings.CutPrefix(strings.TrimSpace(first), modeline)
			if !ok {
				t.Errorf("%s: first line %q, want %s%s", path, strings.TrimSpace(first), modeline, filepath.Join(relTo(t, path), file))
				return nil
			}
			if got, want := filepath.Clean(filepath.Join(filepath.Dir(path), rel)), filepath.Join("..", "schema", file); got != want {
				t.Errorf("%s (kind %s): $schema=%s resolves to %s, want %s", path, m[1], rel, got, want)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(path), rel)); err != nil {
				t.Errorf("%s: $schema=%s: %v", path, rel, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 10 {
		t.Fatalf("checked %d documents: the sample has more", checked)
	}
}

// relTo is the path from path's folder to schema/.
func relTo(t *testing.T, path string) string {
	r, err := filepath.Rel(filepath.Dir(path), filepath.Join("..", "schema"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
