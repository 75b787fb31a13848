package replay

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/databus-gateway/databus/engine/sandbox"
)

// MarkdownMarker starts the markdown report, so that a CI job finds its
// earlier comment on a pull request and edits it.
const MarkdownMarker = "<!-- databus-replay -->"

// MaxMarkdown bounds the markdown report: a pull-request comment (GitHub
// takes up to 65536 characters).
const MaxMarkdown = 60000

// Format writes the report as text, json or markdown.
func (rep *Report) Format(w io.Writer, format string) error {
	switch format {
	case "", "text":
		return rep.text(w)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	case "markdown":
		s := rep.markdown()
		_, err := io.WriteString(w, s)
		return err
	}
	return fmt.Errorf("unknown format %q (text, json, markdown)", format)
}

func (rep *Report) headline() string {
	return fmt.Sprintf("%d records: %d identical, %d differ, %d not replayable (%.1f%% of replayed records identical)",
		rep.Records, rep.Identical, rep.Differ, rep.NotReplay, 100*rep.Faithful())
}

func (rep *Report) text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replay of %s against %s: %s\n", rep.Source, rep.Candidate, rep.headline())
	if rep.Unreadable > 0 {
		fmt.Fprintf(&b, "%d lines could not be read as records\n", rep.Unreadable)
	}
	if len(rep.APIs) > 0 {
		fmt.Fprintf(&b, "\n%-30s %9s %6s %14s\n", "API", "identical", "differ", "not replayable")
		for _, s := range rep.APIs {
			fmt.Fprintf(&b, "%-30s %9d %6d %14d\n", s.API, s.Identical, s.Differ, s.NotReplayed)
		}
	}
	for _, s := range rep.APIs {
		for _, res := range s.Details {
			fmt.Fprintf(&b, "\ndiffers: %s trace=%s id=%s\n", res.API, res.TraceID, res.ID)
			for _, d := range res.Diffs {
				for _, l := range d.lines() {
					fmt.Fprintf(&b, "  %s\n", l)
				}
			}
		}
		if n := s.Differ - len(s.Details); n > 0 {
			fmt.Fprintf(&b, "\n%s: %d more records differ\n", s.API, n)
		}
	}
	for _, s := range rep.APIs {
		for _, reason := range sortedReasons(s.Reasons) {
			fmt.Fprintf(&b, "\nnot replayable: %s: %d × %s", s.API, s.Reasons[reason], reason)
		}
	}
	if rep.NotReplay > 0 {
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedReasons(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// lines is d in one or more short lines.
func (d Difference) lines() []string {
	var head string
	switch d.Kind {
	case DiffPath:
		head = fmt.Sprintf("path: first difference at step %s: recorded %q, candidate %q", d.Step, d.Recorded, d.Candidate)
	case DiffNotRecorded:
		head = fmt.Sprintf("step %s not recorded: the candidate calls it, the record holds no result for it (its stub answered %d)", d.Step, sandbox.StatusNoStub)
	case DiffStepRequest:
		head = "step " + d.Step + " request"
		if d.Recorded != "body" {
			head += ": " + d.Recorded + " → " + d.Candidate
		} else {
			head += " body:"
		}
	default:
		head = d.Kind + ":"
		if d.Recorded != "" || d.Candidate != "" {
			head = fmt.Sprintf("%s: %s → %s", d.Kind, d.Recorded, d.Candidate)
		}
	}
	out := []string{head}
	for _, c := range d.Changes {
		out = append(out, "  "+c.line())
	}
	if d.More > 0 {
		out = append(out, fmt.Sprintf("  … %d more changes", d.More))
	}
	return out
}

// First is the record's first difference on one line (its first JSON
// change, when it has some), "" when it has none.
func (res Result) First() string {
	if len(res.Diffs) == 0 {
		return ""
	}
	d := res.Diffs[0]
	l := d.lines()
	if len(d.Changes) == 0 {
		return l[0]
	}
	return strings.TrimSuffix(l[0], ":") + " " + d.Changes[0].line()
}

func (c Change) line() string {
	switch c.Op {
	case OpAdded:
		return fmt.Sprintf("%s added: %s", c.Path, c.Candidate)
	case OpRemoved:
		return fmt.Sprintf("%s removed (was %s)", c.Path, c.Recorded)
	}
	return fmt.Sprintf("%s changed: %s → %s", c.Path, c.Recorded, c.Candidate)
}

func (rep *Report) markdown() string {
	var b strings.Builder
	icon := "✅"
	if rep.Differ > 0 {
		icon = "⚠️"
	}
	fmt.Fprintf(&b, "%s\n### %s databus replay\n\n", MarkdownMarker, icon)
	fmt.Fprintf(&b, "Recorded traffic from `%s` against `%s`: %s.\n\n", mdCode(rep.Source), mdCode(rep.Candidate), rep.headline())
	if rep.Unreadable > 0 {
		fmt.Fprintf(&b, "%d lines could not be read as records.\n\n", rep.Unreadable)
	}
	if len(rep.APIs) > 0 {
		b.WriteString("| API | identical | differ | not replayable |\n| --- | ---: | ---: | ---: |\n")
		for _, s := range rep.APIs {
			fmt.Fprintf(&b, "| `%s` | %d | %d | %d |\n", mdCode(s.API), s.Identical, s.Differ, s.NotReplayed)
		}
		b.WriteString("\n")
	}
	tail := "\n_The report was cut to fit a comment; run `databus replay` for all of it._\n"
	full := true
	for _, s := range rep.APIs {
		if len(s.Details) == 0 && len(s.Reasons) == 0 {
			continue
		}
		var sec strings.Builder
		fmt.Fprintf(&sec, "<details><summary><code>%s</code>: %d differ, %d not replayable</summary>\n\n", htmlEscape(s.API), s.Differ, s.NotReplayed)
		for _, res := range s.Details {
			fmt.Fprintf(&sec, "**trace `%s`** (record `%s`)\n\n```\n", mdCode(res.TraceID), mdCode(res.ID))
			for _, d := range res.Diffs {
				for _, l := range d.lines() {
					sec.WriteString(strings.ReplaceAll(l, "```", "'''") + "\n")
				}
			}
			sec.WriteString("```\n\n")
		}
		if n := s.Differ - len(s.Details); n > 0 {
			fmt.Fprintf(&sec, "… and %d more records that differ.\n\n", n)
		}
		for _, reason := range sortedReasons(s.Reasons) {
			fmt.Fprintf(&sec, "- not replayable, %d × %s\n", s.Reasons[reason], htmlEscape(reason))
		}
		sec.WriteString("\n</details>\n\n")
		if b.Len()+sec.Len()+len(tail) > MaxMarkdown {
			full = false
			break
		}
		b.WriteString(sec.String())
	}
	if !full {
		b.WriteString(tail)
	}
	return b.String()
}

// mdCode makes s safe inside a code span of a table cell: what a record
// holds (ids, API codes, values) comes from traffic, not from the
// repository, and must not add cells, lines or markup to the comment.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "|", "\\|", "\n", " ", "\r", " ").Replace(s)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ").Replace(s)
}
