package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/impact"
	"github.com/databus-gateway/databus/engine/replay"
	"github.com/databus-gateway/databus/engine/traffic"
)

const diffUsage = "REV [REV2] [--dir DIR] [--format text|markdown|json] [--traffic ADMIN_URL|FILE [--fail-on breaking]]"

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", diffUsage,
		"semantic diff of APIs, credentials and policies between revisions (REV2 default: the working tree); with --traffic, who calls what changed and which changes break them; exit 0 (differences are not failures; with --fail-on breaking, 1 when a change breaks recorded callers), 2 usage", stderr)
	dir := fs.String("dir", ".", "config repository (inside a git work tree)")
	format := fs.String("format", "text", "output: text, markdown (a pull-request comment) or json")
	src := fs.String("traffic", "", "recorded traffic: a gateway's admin listener URL (http:// or https://) or a JSON-lines file of storage.accessLog.export (- for stdin)")
	failOn := fs.String("fail-on", "", "with --traffic: breaking exits 1 when a change breaks recorded callers")
	token := fs.String("token", "", "admin token for --traffic URL (default: $DATABUS_ADMIN_TOKEN)")
	tokenFile := fs.String("token-file", "", "file holding the admin token")
	since := fs.Duration("since", 0, "only traffic of the last DUR (e.g. 24h); 0: all there is")
	api := fs.String("api", "", "only traffic of this API code")
	limit := fs.Int("limit", traffic.DefaultLimit, "records read at most")
	window := fs.Duration("window", traffic.DefaultWindow, "window of the per-API peak shown")
	bodies := fs.Int("max-bodies", traffic.DefaultMaxBodies, "distinct request bodies kept per API for the input-schema check")
	replayLimit := fs.Int("replay-limit", replay.DefaultLimit, fmt.Sprintf("captured records replayed at most per changed API for the response check (0 to %d; 0: no check)", replay.MaxLimit))
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
	switch {
	case *failOn != "" && *failOn != impact.Breaking:
		fmt.Fprintf(stderr, "databus diff: --fail-on %q: expected breaking\n", *failOn)
		return exitUsage
	case *failOn != "" && *src == "":
		fmt.Fprintln(stderr, "databus diff: --fail-on needs --traffic (the changes are judged against recorded callers)")
		return exitUsage
	case *limit < 1 || *bodies < 1 || *window <= 0 || *since < 0:
		fmt.Fprintln(stderr, "databus diff: --limit, --max-bodies and --window must be positive, --since not negative")
		return exitUsage
	case *replayLimit < 0 || *replayLimit > replay.MaxLimit:
		fmt.Fprintf(stderr, "databus diff: --replay-limit must be 0 to %d\n", replay.MaxLimit)
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
	if *src == "" {
		if err := d.Format(stdout, *format); err != nil {
			fmt.Fprintf(stderr, "databus diff: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	tok, err := adminToken(*token, *tokenFile)
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	ctx := context.Background()
	old, err := impact.BuildRevision(ctx, repo, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	nw, err := impact.BuildRevision(ctx, repo, to)
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	meters := impact.Meters(old, nw)
	source := traffic.Source{From: *src, Token: tok}
	agg, err := traffic.Load(ctx, source, traffic.Options{Since: *since, API: *api, Limit: *limit, Window: *window, MaxBodies: *bodies, Meters: meters})
	if err != nil {
		fmt.Fprintf(stderr, "databus diff: --traffic: %v\n", err)
		return exitUsage
	}
	// The response check: the captured records of the changed APIs
	// replayed against the new revision, through the gate and a sandbox.
	responses := impact.NotChecked("not asked (--replay-limit 0)")
	if *replayLimit > 0 {
		flt := traffic.Filter{API: *api, Limit: *limit}
		if *since > 0 {
			flt.Since = time.Now().Add(-*since)
		}
		err = repo.InRevision(to, func(dir string) error {
			var err error
			responses, err = impact.CheckResponses(ctx, dir, nw.Rev, source, impact.ChangedAPIs(d),
				impact.ResponseOptions{Filter: flt, PerAPI: *replayLimit})
			return err
		})
		if err != nil {
			fmt.Fprintf(stderr, "databus diff: --traffic: response check: %v\n", err)
			return exitUsage
		}
	}
	findings := impact.Analyze(impact.Input{Old: old, New: nw, Diff: d, Traffic: agg, Meters: meters, Responses: responses.Check})
	rep := impact.NewReport(d, agg, findings)
	rep.Responses = responses
	if err := rep.Format(stdout, *format); err != nil {
		fmt.Fprintf(stderr, "databus diff: %v\n", err)
		return exitUsage
	}
	if *failOn == impact.Breaking && rep.Breaking > 0 {
		fmt.Fprintf(stderr, "databus diff: %s for recorded callers (--fail-on breaking)\n", plural(rep.Breaking, "breaking change"))
		return exitInvalid
	}
	return exitOK
}

// adminToken is the admin bearer token of logs, replay and diff
// --traffic: the flag, the file, or $DATABUS_ADMIN_TOKEN, the first that
// is not empty.
func adminToken(flagValue, file string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
	}
	return os.Getenv("DATABUS_ADMIN_TOKEN"), nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
