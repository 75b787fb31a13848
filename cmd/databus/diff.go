package main

import (
	"fmt"
	"io"

	"github.com/databus-gateway/databus/engine/gitops"
)

const diffUsage = "REV [REV2] [--dir DIR] [--format text|markdown|json]"

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", diffUsage,
		"semantic diff of APIs, credentials and policies between revisions (REV2 default: the working tree); exit 0 (differences are not failures), 2 usage", stderr)
	dir := fs.String("dir", ".", "config repository (inside a git work tree)")
	format := fs.String("format", "text", "output: text, markdown (a pull-request comment) or json")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		fmt.Fprintf(stderr, "databus diff: give one or two revisions, got %d arguments\n", len(pos))
		return exitUsage
	}
	switch *format {
	case gitops.FormatText, gitops.FormatMarkdown, gitops.FormatJSON:
	default:
		fmt.Fprintf(stderr, "databus diff: unknown format %q: expected text, markdown or json\n", *format)
		return exitUsage
	}
	repo, err := gitops.Open(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	to := ""
	if len(pos) == 2 {
		to = pos[1]
	}
	d, err := repo.Diff(pos[0], to)
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	if err := d.Format(stdout, *format); err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	return exitOK
}
