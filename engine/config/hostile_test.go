package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A repository under review may hold a link to a device or a named pipe
// where a YAML file belongs: each is refused at its file, at once, instead
// of being read forever (/dev/zero) or waited on (a pipe with no writer).
func TestLoadRefusesFilesThatAreNotRegular(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "apis"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "databus.yaml"), []byte("apiVersion: databus/v1\nkind: Settings\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "apis", "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "apis", "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags, _ := Load(dir)
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"apis/pipe.yaml: error: cannot read: not a regular file (a device, named pipe or socket): refused",
		"apis/zero.yaml: error: cannot read: not a regular file (a device, named pipe or socket): refused",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("want %q in:\n%s", want, all)
		}
	}
}
