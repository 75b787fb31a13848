package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/gitops"
)

const rollbackUsage = "API --to REV [--commit] [--dir DIR]"

func runRollback(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rollback", rollbackUsage,
		"restore an API's file as it was at REV and validate the repository; exit 0 done, 1 the result would be invalid (nothing changed), 2 usage", stderr)
	dir := fs.String("dir", ".", "config repository (inside a git work tree)")
	to := fs.String("to", "", "revision to take the API's file from: a hash, branch, tag, HEAD~N (required)")
	commit := fs.Bool("commit", false, `commit the change alone ("Roll back CODE:VERSION to REV"); never pushes`)
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "databus rollback: give one API (code or code:version), got %d arguments\n", len(pos))
		return exitUsage
	}
	if *to == "" {
		fmt.Fprintln(stderr, "databus rollback: --to REV is required")
		return exitUsage
	}
	repo, err := gitops.Open(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "databus rollback: %v\n", err)
		return exitUsage
	}
	res, err := repo.Rollback(context.Background(), pos[0], *to, *commit, gateCheck)
	if err != nil && !errors.Is(err, gitops.ErrInvalid) || res == nil {
		fmt.Fprintf(stderr, "databus rollback: %v\n", err)
		return exitUsage
	}
	path := func(rel string) string {
		if *dir == "" || *dir == "." {
			return rel
		}
		return strings.TrimSuffix(*dir, "/") + "/" + rel
	}
	if err := res.Diagnostics.Write(stdout, config.FormatText, *dir); err != nil {
		fmt.Fprintf(stderr, "databus rollback: %v\n", err)
		return exitUsage
	}
	errs, warns := res.Diagnostics.Count()
	if errs > 0 {
		fmt.Fprintf(stdout, "invalid: restoring %s as of %s gives %s, %s; nothing was changed\n",
			res.API, shortHash(res.From), count(errs, "error"), count(warns, "warning"))
		return exitInvalid
	}
	fmt.Fprintf(stdout, "restored %s as of %s (%s)\n", path(res.File), shortHash(res.From), res.API)
	for _, f := range res.Removed {
		fmt.Fprintf(stdout, "removed %s (the API's file before the rollback)\n", path(f))
	}
	fmt.Fprintf(stdout, "valid: %s, %s\n", count(errs, "error"), count(warns, "warning"))
	switch {
	case !*commit:
		fmt.Fprintln(stdout, "not committed: review with git diff, then commit (or run with --commit)")
	case res.Committed == "":
		fmt.Fprintln(stdout, "nothing to commit: HEAD already holds this content")
	default:
		fmt.Fprintf(stdout, "committed %s \"Roll back %s to %s\" (not pushed)\n", shortHash(res.Committed), res.API, shortHash(res.From))
	}
	return exitOK
}

func shortHash(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

// gateCheck is the gate's dry build, as gitops takes it: rollback checks
// the trees it writes and commits exactly as validate and serve would.
func gateCheck(ctx context.Context, dir string) (config.Diagnostics, error) {
	_, diags, err := gate.Check(ctx, dir)
	return diags, err
}
