package gitops

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Output formats of RepoDiff.Format.
const (
	FormatText     = "text"
	FormatMarkdown = "markdown"
	FormatJSON     = "json"
)

// MarkdownMarker starts every markdown diff, so that a CI job can find and
// update its earlier comment on a pull request instead of adding another.
const MarkdownMarker = "<!-- databus-diff -->"

// MarkdownBudget bounds the markdown output (pull-request comments are
// limited, 65536 characters on GitHub): unified diffs that would pass it
// are left out; the table and the field changes always stay.
const MarkdownBudget = 60000

// Format writes the diff as text (a summary line, then per document its
// status and field changes), markdown (a pull-request comment: heading,
// table of documents, field changes, and each file's unified diff in a
// collapsible block) or json (the RepoDiff as is).
func (d *RepoDiff) Format(w io.Writer, format string) error {
	switch format {
	case FormatText:
		return d.formatText(w)
	case FormatMarkdown:
		return d.FormatMarkdown(w, MarkdownBudget)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(d)
	}
	return fmt.Errorf("unknown format %q: expected text, markdown or json", format)
}

// Label names a revision in output: the short hash, or "working tree".
func Label(rev string) string {
	if rev == Worktree {
		return "working tree"
	}
	return short(rev)
}

func (d *RepoDiff) summary() string {
	n := len(d.Docs)
	switch n {
	case 0:
		return "no changes to settings, APIs, credentials or policies"
	case 1:
		return "1 document changed"
	}
	return fmt.Sprintf("%d documents changed", n)
}

// changeLine describes one field change; quote wraps values (markdown code).
func changeLine(c Change, quote func(string) string, arrow string, max int) string {
	path := c.Path
	if path == "" {
		path = "(document)"
	}
	switch c.Kind {
	case KindAdded:
		return fmt.Sprintf("%s added: %s", quote(path), quote(render(c.To, max)))
	case KindRemoved:
		return fmt.Sprintf("%s removed (was %s)", quote(path), quote(render(c.From, max)))
	}
	return fmt.Sprintf("%s: %s %s %s", quote(path), quote(render(c.From, max)), arrow, quote(render(c.To, max)))
}

func (dd *DocDiff) fileLabel(arrow string) string {
	if dd.OldFile != "" {
		return dd.OldFile + " " + arrow + " " + dd.File
	}
	return dd.File
}

func (d *RepoDiff) formatText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "diff %s..%s: %s\n", Label(d.From), Label(d.To), d.summary())
	for _, side := range []struct {
		rev  string
		errs int
	}{{d.From, len(d.FromErrors)}, {d.To, len(d.ToErrors)}} {
		if side.errs > 0 {
			fmt.Fprintf(&b, "warning: %s is invalid (%s; run databus validate): documents that do not load are missing from this diff\n", Label(side.rev), plural(side.errs, "error", "errors"))
		}
	}
	plain := func(s string) string { return s }
	for _, dd := range d.Docs {
		if dd.File == dd.ID {
			fmt.Fprintf(&b, "\n%-8s %s %s\n", dd.Status, dd.Kind, dd.ID)
		} else {
			fmt.Fprintf(&b, "\n%-8s %s %s  %s\n", dd.Status, dd.Kind, dd.ID, dd.fileLabel("->"))
		}
		if dd.Status == StatusChanged && len(dd.Changes) == 0 {
			b.WriteString("    (comments or layout only)\n")
		}
		for _, c := range dd.Changes {
			b.WriteString("    " + changeLine(c, plain, "->", 120) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatMarkdown writes the markdown form within budget characters
// (unified diffs that would pass it are left out): a caller that puts its
// own section before the diff in the same comment passes what is left.
func (d *RepoDiff) FormatMarkdown(w io.Writer, budget int) error {
	var b strings.Builder
	b.WriteString(MarkdownMarker + "\n")
	fmt.Fprintf(&b, "### Databus config diff: %s → %s\n\n", mdCode(Label(d.From)), mdCode(Label(d.To)))
	for _, side := range []struct {
		rev  string
		errs int
	}{{d.From, len(d.FromErrors)}, {d.To, len(d.ToErrors)}} {
		if side.errs > 0 {
			fmt.Fprintf(&b, "> **Warning:** %s is invalid (%s; run `databus validate`): documents that do not load are missing from this diff.\n\n", mdCode(Label(side.rev)), plural(side.errs, "error", "errors"))
		}
	}
	if len(d.Docs) == 0 {
		b.WriteString("No changes to settings, APIs, credentials or policies.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "%s.\n\n", capitalize(d.summary()))
	b.WriteString("| Change | Kind | Document | File |\n| --- | --- | --- | --- |\n")
	for _, dd := range d.Docs {
		file := mdCode(dd.File)
		if dd.OldFile != "" {
			file = mdCode(dd.OldFile) + " → " + mdCode(dd.File)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", dd.Status, dd.Kind, mdCell(mdCode(dd.ID)), mdCell(file))
	}
	for _, dd := range d.Docs {
		fmt.Fprintf(&b, "\n#### %s %s (%s)\n\n", dd.Kind, mdCode(dd.ID), dd.Status)
		if dd.OldFile != "" {
			fmt.Fprintf(&b, "- moved from %s to %s\n", mdCode(dd.OldFile), mdCode(dd.File))
		}
		switch {
		case dd.Status == StatusAdded:
			fmt.Fprintf(&b, "- new file %s\n", mdCode(dd.File))
		case dd.Status == StatusRemoved:
			fmt.Fprintf(&b, "- file %s deleted\n", mdCode(dd.File))
		case len(dd.Changes) == 0 && dd.OldFile == "":
			b.WriteString("- comments or layout only\n")
		}
		for _, c := range dd.Changes {
			b.WriteString("- " + changeLine(c, mdCode, "→", 100) + "\n")
		}
		if dd.Unified != "" {
			fence := mdFence(dd.Unified)
			block := fmt.Sprintf("\n<details><summary>Unified diff of <code>%s</code></summary>\n\n%sdiff\n%s%s\n\n</details>\n", htmlEscape(dd.File), fence, dd.Unified, fence)
			if b.Len()+len(block) > budget {
				block = "\n_Unified diff left out to keep the comment short: run `databus diff` locally._\n"
			}
			b.WriteString(block)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCode writes s as an inline code span that survives backticks in s.
func mdCode(s string) string {
	if s == "" {
		return `""`
	}
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	ticks := strings.Repeat("`", longest+1)
	if longest > 0 || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		return ticks + " " + s + " " + ticks
	}
	return ticks + s + ticks
}

// mdCell escapes the pipes of a table cell.
func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// mdFence returns a code fence longer than any backtick run in s.
func mdFence(s string) string {
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			if run > longest {
				longest = run
			}
		} else {
			run = 0
		}
	}
	if longest < 3 {
		return "```"
	}
	return strings.Repeat("`", longest+1)
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
