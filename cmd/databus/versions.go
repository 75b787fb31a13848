package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/databus-gateway/databus/engine/gitops"
)

const versionsUsage = "API [--dir DIR] [--format text|json]"

func runVersions(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("versions", versionsUsage,
		"list the git commits that changed an API (code or code:version), newest first; exit 0 ok, 2 usage or unknown API", stderr)
	dir := fs.String("dir", ".", "config repository (inside a git work tree)")
	format := fs.String("format", "text", "output: text or json")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "databus versions: give one API (code or code:version), got %d arguments\n", len(pos))
		return exitUsage
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "databus versions: unknown format %q: expected text or json\n", *format)
		return exitUsage
	}
	repo, err := gitops.Open(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "databus versions: %v\n", err)
		return exitUsage
	}
	apiCode, apiVersion := gitops.ParseAPIRef(pos[0])
	vs, err := repo.VersionsOfAPI(apiCode, apiVersion)
	if err != nil {
		fmt.Fprintf(stderr, "databus versions: %v\n", err)
		return exitUsage
	}
	if *format == "json" {
		if vs == nil {
			vs = []gitops.Version{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(vs); err != nil {
			fmt.Fprintf(stderr, "databus versions: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	file := ""
	if len(vs) > 0 {
		file = vs[0].Path
		if vs[0].Change == gitops.Deleted {
			file += " (deleted)"
		}
	}
	fmt.Fprintf(stdout, "%s: %s, %s\n", pos[0], file, count(len(vs), "version"))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, v := range vs {
		msg := v.Subject()
		if v.Change == gitops.Renamed {
			msg += " (from " + v.OldPath + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Short, v.Time.Format("2006-01-02 15:04 -0700"), v.Author, v.Change, msg)
	}
	if err := tw.Flush(); err != nil {
		return exitUsage
	}
	return exitOK
}
