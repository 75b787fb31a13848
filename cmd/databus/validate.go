package main

import (
	"context"
	"fmt"
	"io"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
)

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "[DIR] [--format text|json|github] [--strict] [--admin-listen ADDR]",
		"check a config repository through the gate serve uses (schemas, rules, compiled flows); exit 0 ok, 1 invalid, 2 usage or unreadable path", stderr)
	dir := fs.String("dir", ".", "config repository (or give it as the argument)")
	format := fs.String("format", "text", "output: text (file:line:col: severity: path: message), json, or github (workflow annotations)")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	adminListen := fs.String("admin-listen", "", "check the repository for a gateway whose admin listener binds here (off loopback it needs admin.tokens), as serve does")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if !repoArgs("validate", pos, dir, *format, stderr) {
		return exitUsage
	}

	// The gate's dry build: what serve would refuse, validate refuses.
	r := gate.Build(context.Background(), *dir, gate.Options{Mode: gate.Dry, AdminListen: *adminListen})
	repo, diags, err := r.Repo, r.Diagnostics, r.Err
	if err != nil {
		fmt.Fprintf(stderr, "databus validate: %v\n", err)
		return exitUsage
	}
	if *strict {
		for i := range diags {
			diags[i].Severity = config.SevError
		}
	}
	if err := diags.Write(stdout, *format, *dir); err != nil {
		fmt.Fprintf(stderr, "databus validate: %v\n", err)
		return exitUsage
	}
	errs, warns := diags.Count()
	if *format != config.FormatJSON {
		verdict := "valid"
		if errs > 0 {
			verdict = "invalid"
		}
		fmt.Fprintf(stdout, "%s: %s (%s; %s, %s)\n", *dir, verdict, repo, count(errs, "error"), count(warns, "warning"))
	}
	if errs > 0 {
		return exitInvalid
	}
	return exitOK
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// repoArgs takes the config repository from the lone argument, if one is
// given, and checks --format (text, json or github), as validate and test
// read them; false after writing a usage error.
func repoArgs(cmd string, pos []string, dir *string, format string, stderr io.Writer) bool {
	switch len(pos) {
	case 0:
	case 1:
		*dir = pos[0]
	default:
		fmt.Fprintf(stderr, "databus %s: one repository at a time, got %d arguments\n", cmd, len(pos))
		return false
	}
	switch format {
	case config.FormatText, config.FormatJSON, config.FormatGitHub:
		return true
	}
	fmt.Fprintf(stderr, "databus %s: unknown format %q: expected text, json or github\n", cmd, format)
	return false
}
