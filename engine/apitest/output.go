package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/databus-gateway/databus/engine/config"
)

// Write prints the report in one of the output formats of validate
// (config.FormatText, FormatJSON, FormatGitHub). prefix is joined in front
// of every file name (the repository path as the user gave it). verbose
// lists the cases that passed too (text only).
func (r *Report) Write(w io.Writer, format, prefix string, verbose bool) error {
	file := func(f string) string {
		if prefix == "" || prefix == "." {
			return f
		}
		return strings.TrimSuffix(prefix, "/") + "/" + f
	}
	switch format {
	case config.FormatText:
		return r.writeText(w, file, prefix, verbose)
	case config.FormatJSON:
		out := *r
		out.Diagnostics = append(config.Diagnostics(nil), r.Diagnostics...)
		for i := range out.Diagnostics {
			out.Diagnostics[i].File = file(out.Diagnostics[i].File)
		}
		out.Cases = make([]*CaseResult, len(r.Cases))
		for i, c := range r.Cases {
			cc := *c
			cc.File = file(c.File)
			out.Cases[i] = &cc
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	case config.FormatGitHub:
		if r.Refused {
			if err := r.Diagnostics.Write(w, config.FormatGitHub, prefix); err != nil {
				return err
			}
		}
		for _, c := range r.Cases {
			if c.Outcome == Pass {
				continue
			}
			for _, f := range c.Failures {
				title := "databus test: " + c.Name
				switch {
				case f.Mistake:
					title += " (the test's own mistake)"
				case f.Consequence:
					title += " (a consequence of the case's failures)"
				}
				msg := f.What + ": " + f.Message
				if f.Expected != "" || f.Actual != "" {
					msg += "\n" + Diff(f.Expected, f.Actual)
				}
				if _, err := fmt.Fprintf(w, "::error file=%s,line=%d,title=%s::%s\n", ghProperty(file(c.File)), f.Line, ghProperty(title), ghData(strings.TrimSuffix(msg, "\n"))); err != nil {
					return err
				}
			}
		}
		_, err := fmt.Fprintln(w, r.Summary(prefix))
		return err
	}
	return fmt.Errorf("unknown format %q: expected text, json or github", format)
}

func (r *Report) writeText(w io.Writer, file func(string) string, prefix string, verbose bool) error {
	var b strings.Builder
	if r.Refused {
		if err := r.Diagnostics.Write(w, config.FormatText, prefix); err != nil {
			return err
		}
	}
	for _, c := range r.Cases {
		switch c.Outcome {
		case Pass:
			if verbose {
				fmt.Fprintf(&b, "ok    %s (%s:%d)\n", c.Name, file(c.File), c.Line)
			}
			continue
		case Fail:
			fmt.Fprintf(&b, "FAIL  %s (%s:%d)\n", c.Name, file(c.File), c.Line)
		case Unfinished:
			fmt.Fprintf(&b, "STOP  %s (%s:%d): did not finish\n", c.Name, file(c.File), c.Line)
		default:
			fmt.Fprintf(&b, "ERROR %s (%s:%d): the test's own mistake\n", c.Name, file(c.File), c.Line)
		}
		for _, f := range c.Failures {
			if f.Consequence {
				fmt.Fprintf(&b, "      then %s:%d: %s: %s\n", file(c.File), f.Line, f.What, f.Message)
				continue
			}
			fmt.Fprintf(&b, "    %s:%d: %s: %s\n", file(c.File), f.Line, f.What, f.Message)
			if f.Expected != "" || f.Actual != "" {
				b.WriteString("      --- expected\n      +++ actual\n")
				for _, l := range strings.Split(strings.TrimSuffix(Diff(f.Expected, f.Actual), "\n"), "\n") {
					b.WriteString("      " + l + "\n")
				}
			}
		}
	}
	b.WriteString(r.Summary(prefix) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is the report's last line.
func (r *Report) Summary(dir string) string {
	if dir == "" {
		dir = "."
	}
	if r.Refused {
		errs, _ := r.Diagnostics.Count()
		return fmt.Sprintf("%s: refused by the gate (%s): no case ran", dir, plural(errs, "error", "errors"))
	}
	if r.NoMatch != "" {
		return fmt.Sprintf("%s: FAIL: no test case matches --run %q; cases are named <file>/<name>, e.g. %q", dir, r.NoMatch, r.Example)
	}
	if len(r.Cases) == 0 {
		return fmt.Sprintf("%s: no test cases in %s/ (kind ApiTest): nothing to run", dir, config.TestsDir)
	}
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s: %s: %s passed", dir, verdict, plural(r.Passed, "case", "cases"))
	if r.Failed > 0 {
		s += fmt.Sprintf(", %d failed", r.Failed)
	}
	if r.Mistakes > 0 {
		s += fmt.Sprintf(", %s (the test's own mistake)", plural(r.Mistakes, "error", "errors"))
	}
	if n := len(r.Unfinished); n > 0 {
		s += fmt.Sprintf(", %d did not finish: the run stopped at its --timeout %s", n, r.Timeout)
	}
	return s + fmt.Sprintf(" (%s)", plural(r.Files, "file", "files"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// ghData escapes a workflow-command message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow-command property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
