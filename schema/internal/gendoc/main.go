// Command gendoc writes the configuration reference generated from the
// embedded JSON Schemas (refdoc.Reference) to a file. It is run by
// "go generate ./schema":
//
//	go run ./schema/internal/gendoc -o docs/config-reference.md
//
// The file is rewritten only when its content changes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/databus-gateway/databus/schema/internal/refdoc"
)

func main() {
	out := flag.String("o", "", "output file (required); - writes to standard output")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: gendoc -o FILE")
		os.Exit(2)
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	doc, err := refdoc.Reference()
	if err != nil {
		return err
	}
	if out == "-" {
		_, err := os.Stdout.Write(doc)
		return err
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, doc) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".gendoc-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(doc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
