package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.yaml")
	os.WriteFile(small, []byte("kind: Api\n"), 0o644)
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, make([]byte, 100), 0o644)
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(small, 64); err != nil || string(b) != "kind: Api\n" {
		t.Errorf("a small file: %q %v", b, err)
	}
	var tl *TooLargeError
	if _, err := Read(big, 64); !errors.As(err, &tl) || tl.Max != 64 {
		t.Errorf("a file over the bound: %v", err)
	}
	// Neither reads forever nor blocks: both are refused before a byte.
	for _, p := range []string{zero, fifo, dir} {
		if _, err := Read(p, 64); !errors.Is(err, ErrNotRegular) {
			t.Errorf("%s: %v, want ErrNotRegular", p, err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing.yaml"), 64); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
