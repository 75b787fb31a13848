// Command databus is the Databus gateway and its tools: serve a config
// repository, validate it, inspect its versions, and call its APIs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/databus-gateway/databus/engine/tracing"
)

// Exit codes shared by every command.
const (
	exitOK      = 0
	exitInvalid = 1 // the input was read and is wrong (validate: errors found)
	exitUsage   = 2 // bad flags, unreadable path, or a command not available
)

// What a build says of itself, set by the release build (ci/release.sh)
// and the container image build with
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<full hash> -X main.date=<RFC 3339, UTC>"
//
// Any left empty is read from the binary's build information instead
// (describeBuild).
var version, commit, date string

type command struct {
	name    string
	usage   string // argument synopsis
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func init() {
	register(&command{name: "validate", usage: "[DIR] [--format text|json|github] [--strict]", summary: "check a config repository against the schemas and rules; exit 0 ok, 1 invalid, 2 usage", run: runValidate})
	register(&command{name: "version", usage: versionUsage, summary: "print the version of this binary", run: runVersion})
	register(&command{name: "call", usage: "API [--url URL] [--app ID] [--key ...] [--body JSON]", summary: "sign, encrypt, send and decrypt one call", run: runCall})
	register(&command{name: "sign", usage: "API [--app ID] [--key ...] [--body JSON]", summary: "print signed headers and body, and a curl line", run: runSign})
	register(&command{name: "logs", usage: "[--trace ID] [--api CODE] [--since DUR] [--admin URL --token ...]", summary: "query the access log through the admin API", run: runLogs})
	register(&command{name: "serve", usage: "[--dir DIR] [--listen :8080] [--admin-listen 127.0.0.1:8081] [--health-listen ADDR]", summary: "serve the repository's online APIs and reload on change", run: runServe})
	register(&command{name: "versions", usage: versionsUsage, summary: "list the git commits that changed an API (code or code:version)", run: runVersions})
	register(&command{name: "diff", usage: diffUsage, summary: "semantic diff of APIs, credentials and policies between revisions", run: runDiff})
	register(&command{name: "rollback", usage: rollbackUsage, summary: "restore an API's file as of REV", run: runRollback})
	register(&command{name: "test", usage: testUsage, summary: "run the contract tests in tests/ in process; exit 0 passed, 1 failed, 2 usage", run: runTest})
	register(&command{name: "replay", usage: replayUsage, summary: "replay captured traffic against a candidate config (a folder or a git revision), stubbing every upstream with the recorded results", run: runReplay})
	register(&command{name: "completion", usage: completionUsage, summary: "print the shell completion script for bash, zsh or fish", run: runCompletion})
	register(&command{name: "bench", usage: benchUsage, summary: "signed-request load generator: requests/s, latency percentiles, errors by status", run: runBench})
}

func main() {
	setupProcess()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// setupProcess sets the state that belongs to the whole process, once, at
// its entry point rather than at import time in the packages that use it.
func setupProcess() {
	// go-redis logs through one process-wide logger to stderr, a line for
	// every failed dial of an outage. The gateway reports store failures
	// itself: logged at most once per interval and counted in
	// databus_store_errors_total.
	redis.SetLogger(&logging.VoidLogger{})
	// OpenTelemetry reports failed span exports through one process-wide
	// handler (stderr by default, a line per export of an outage): logged
	// at most once per interval; the lost spans are counted in
	// databus_trace_spans_total{result="failed"}.
	otel.SetErrorHandler(tracing.NewErrorHandler(slog.Default, tracing.ErrorLogInterval))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run([]string{"--help"}, stdout, stdout)
			}
		}
		usage(stdout)
		return exitOK
	case "--version", "-version":
		return runVersion(nil, stdout, stderr)
	case cobra.ShellCompRequestCmd, cobra.ShellCompNoDescRequestCmd:
		return runComplete(args, stdout, stderr)
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "databus: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Databus: a declarative, git-driven API gateway.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: databus COMMAND [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		width = max(width, len(n))
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'databus COMMAND --help' for a command's flags.")
}

func newFlagSet(name, synopsis, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if fc, ok := stderr.(*flagCatcher); ok {
		fc.fs = fs
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: databus %s %s\n\n%s.\n", name, synopsis, capitalize(summary))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if any {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseArgs parses flags that may stand before, between or after positional
// arguments. done is true when the caller must return code (help or a usage
// error).
func parseArgs(fs *flag.FlagSet, args []string) (positional []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			return nil, exitUsage, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, 0, false
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), 0, false
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
