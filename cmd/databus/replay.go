package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/replay"
	"github.com/databus-gateway/databus/engine/traffic"
)

const replayUsage = "--from ADMIN_URL|FILE.jsonl [--since 24h] [--api CODE] [--limit N] [--rev REV] [--dir DIR] [--format text|json|markdown]"

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("replay", replayUsage,
		"replay captured traffic against a candidate config, with the recorded step results as stubs; exit 0 no differences, 1 differences (or the candidate is refused), 2 usage or unreadable", stderr)
	from := fs.String("from", "", "records: a gateway's admin listener URL (captured records of its access log), or a JSON-lines export file (storage.accessLog.export)")
	token := fs.String("token", "", "admin token for an admin URL (default: $DATABUS_ADMIN_TOKEN)")
	tokenFile := fs.String("token-file", "", "file holding the admin token")
	since := fs.Duration("since", 0, "only records of the last DUR (e.g. 24h); 0: any age")
	api := fs.String("api", "", "only records of this API code")
	limit := fs.Int("limit", replay.DefaultLimit, fmt.Sprintf("records to replay at most (up to %d)", replay.MaxLimit))
	dir := fs.String("dir", ".", "the candidate config repository (with --rev: a folder inside its git work tree)")
	rev := fs.String("rev", "", "replay against this git revision of --dir (built from its tree in a temporary folder)")
	format := fs.String("format", "text", "output: text, json, or markdown (a pull-request comment)")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "databus replay: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if *from == "" {
		fmt.Fprintln(stderr, "databus replay: --from is required: an admin URL or an export file")
		return exitUsage
	}
	switch *format {
	case "text", "json", "markdown":
	default:
		fmt.Fprintf(stderr, "databus replay: unknown format %q: expected text, json or markdown\n", *format)
		return exitUsage
	}
	if *limit < 1 || *limit > replay.MaxLimit {
		fmt.Fprintf(stderr, "databus replay: --limit must be 1 to %d\n", replay.MaxLimit)
		return exitUsage
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "databus replay: %v\n", err)
		return exitUsage
	}
	src := traffic.Source{From: *from, Token: tok}
	if !src.Admin() {
		if _, err := os.Stat(*from); err != nil {
			fmt.Fprintf(stderr, "databus replay: %v\n", err)
			return exitUsage
		}
	}
	// Only captured records can be replayed; from the admin API the others
	// are left out by the query, from an export they are reported as not
	// replayable.
	flt := traffic.Filter{API: *api, Limit: *limit, CapturedOnly: src.Admin()}
	if *since > 0 {
		flt.Since = time.Now().Add(-*since)
	}
	ctx := context.Background()
	opts := replay.Options{Filter: flt, Logger: slog.New(slog.DiscardHandler), Candidate: *dir}

	run := func(candidate string) int {
		rep, res, err := replay.Run(ctx, candidate, src, opts)
		if rep == nil && err == nil && res.Err == nil {
			// The gate refused the candidate: nothing it would serve can be replayed.
			fmt.Fprintf(stderr, "databus replay: the candidate %s is refused by the gate:\n", opts.Candidate)
			res.Diagnostics.Write(stderr, config.FormatText, candidate)
			return exitInvalid
		}
		if res.Err != nil {
			fmt.Fprintf(stderr, "databus replay: %v\n", res.Err)
			return exitUsage
		}
		if err != nil {
			fmt.Fprintf(stderr, "databus replay: %v\n", err)
			return exitUsage
		}
		if err := rep.Format(stdout, *format); err != nil {
			fmt.Fprintf(stderr, "databus replay: %v\n", err)
			return exitUsage
		}
		if rep.Differ > 0 {
			return exitInvalid
		}
		return exitOK
	}
	if *rev == "" {
		return run(*dir)
	}
	repo, err := gitops.Open(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "databus replay: %v\n", err)
		return exitUsage
	}
	opts.Candidate = *rev
	code = exitUsage
	if err := repo.AtRevision(*rev, func(tree string) error {
		code = run(tree)
		return nil
	}); err != nil {
		fmt.Fprintf(stderr, "databus replay: %v\n", err)
		return exitUsage
	}
	return code
}
