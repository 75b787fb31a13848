package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

const versionUsage = "[--format text|json]"

// build is what a binary says of itself (databus version).
type build struct {
	// Version: -X main.version, else the module version that `go install
	// ...@v1.2.3` records (a pseudo-version for a build in a git checkout),
	// else "dev".
	Version string `json:"version"`
	// Commit: the full hash, -X main.commit, else vcs.revision; "" when
	// the build recorded none (go install ...@v1.2.3 builds from the
	// module zip, which has no history).
	Commit string `json:"commit"`
	// Modified: the checkout had uncommitted changes (vcs.modified).
	Modified bool `json:"modified"`
	// Date: -X main.date (a release build sets the commit's time, so that
	// a rebuild is byte for byte the same), else vcs.time; "" when unknown.
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// describeBuild combines the values set by the linker with the binary's
// build information (bi nil when the binary has none).
func describeBuild(ldVersion, ldCommit, ldDate string, bi *debug.BuildInfo) build {
	b := build{Version: ldVersion, Commit: ldCommit, Date: ldDate, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		if b.Version == "" {
			b.Version = "dev"
		}
		return b
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	var rev, when string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if b.Commit == "" {
		b.Commit = rev
	}
	// The checkout's state speaks for the commit it was at only.
	b.Modified = modified && b.Commit == rev
	if b.Date == "" {
		b.Date = when
	}
	return b
}

// String is the one line databus version prints:
//
//	databus v1.4.0 (commit 1a2b3c4d5e6f, built 2026-12-06T10:00:00Z, go1.26.8 linux/amd64)
func (b build) String() string {
	var parts []string
	if b.Commit != "" {
		parts = append(parts, "commit "+b.shortCommit())
	}
	if b.Date != "" {
		parts = append(parts, "built "+b.Date)
	}
	parts = append(parts, b.GoVersion+" "+b.Platform)
	return fmt.Sprintf("databus %s (%s)", b.Version, strings.Join(parts, ", "))
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", versionUsage, "print the version of this binary: its release, the commit and date it was built from, the Go version and platform", stderr)
	format := fs.String("format", "text", "output: text (one line) or json")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "databus version: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	return writeBuild(stdout, stderr, thisBuild(), *format)
}

func writeBuild(stdout, stderr io.Writer, b build, format string) int {
	switch format {
	case "text":
		fmt.Fprintln(stdout, b)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(b); err != nil {
			fmt.Fprintf(stderr, "databus version: %v\n", err)
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "databus version: unknown format %q: expected text or json\n", format)
		return exitUsage
	}
	return exitOK
}

// thisBuild describes the running binary.
func thisBuild() build {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, commit, date, bi)
}

// fleetVersion names this binary in the fleet view: the version, with the
// commit's first 12 digits when known ("v1.4.0 (1a2b3c4d5e6f)").
func (b build) fleetVersion() string {
	if b.Commit == "" {
		return b.Version
	}
	return b.Version + " (" + b.shortCommit() + ")"
}

// shortCommit is the commit's first 12 digits, "-dirty" when the checkout
// had uncommitted changes.
func (b build) shortCommit() string {
	c := b.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if b.Modified {
		c += "-dirty"
	}
	return c
}
