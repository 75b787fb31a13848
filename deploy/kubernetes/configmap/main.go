// Command configmap writes a kustomize Component that gives the gateway of
// deploy/kubernetes/base a config repository through a ConfigMap: the
// repository's files as keys, and the projected volume that lays them out
// again under /config (package projection says how). Run it from the
// deploy module, again whenever the repository changes (in the pipeline
// that applies the overlay):
//
//	go -C deploy run ./kubernetes/configmap --repo /path/to/config --out /path/to/overlay/config
//
// --check compares instead of writing, and exits 1 when the component is
// not what the repository gives (a CI step).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/databus-gateway/databus/deploy/kubernetes/projection"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type list []string

func (l *list) String() string     { return fmt.Sprint(*l) }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("configmap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "the config repository (databus.yaml at its root)")
	out := fs.String("out", "", "the folder to write the component to (created when missing)")
	source := fs.String("source", "", "how the generated files name the repository (default: --repo as given)")
	check := fs.Bool("check", false, "write nothing; exit 1 when --out differs from what --repo gives")
	var include list
	fs.Var(&include, "include", "a further file of the repository to project, relative to it (repeatable), e.g. a file a file: secret reference names")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *repo == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: configmap --repo DIR --out DIR [--include PATH]... [--check]")
		return 2
	}
	if *source == "" {
		*source = *repo
	}
	p, err := projection.Collect(context.Background(), *repo, include)
	if err != nil {
		fmt.Fprintf(stderr, "configmap: %v\n", err)
		return 1
	}
	files, err := p.Component(*source)
	if err != nil {
		fmt.Fprintf(stderr, "configmap: %v\n", err)
		return 1
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	if *check {
		stale := 0
		for _, name := range names {
			have, err := os.ReadFile(filepath.Join(*out, name))
			if err != nil || !bytes.Equal(have, files[name]) {
				fmt.Fprintf(stderr, "configmap: %s is not what %s gives: generate it again (without --check)\n", filepath.Join(*out, name), *repo)
				stale++
			}
		}
		if stale > 0 {
			return 1
		}
		fmt.Fprintf(stdout, "%s: up to date (%d files, %d bytes)\n", *out, len(p.Files), p.Size())
		return 0
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "configmap: %v\n", err)
		return 1
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(*out, name), files[name], 0o644); err != nil {
			fmt.Fprintf(stderr, "configmap: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: %d files, %d bytes\n", *out, len(p.Files), p.Size())
	if p.Size() > projection.ClientSideApplyBytes {
		fmt.Fprintf(stdout, "note: above 248 KiB, apply with kubectl apply --server-side (client-side apply copies the ConfigMap into a 256 KiB annotation)\n")
	}
	return 0
}
