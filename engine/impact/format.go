package impact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/traffic"
)

// Report is the output of databus diff --traffic: the diff, the traffic it
// was judged against, and the findings.
type Report struct {
	Diff     *gitops.RepoDiff `json:"diff"`
	Traffic  TrafficSummary   `json:"traffic"`
	Breaking int              `json:"breaking"`
	Warnings int              `json:"warnings"`
	Findings []Finding        `json:"findings"` // breaking first
	// Responses is the response check (captured records replayed against
	// the new revision); nil: not part of this report.
	Responses *Responses `json:"responses,omitempty"`
}

// TrafficSummary says what traffic the findings rest on.
type TrafficSummary struct {
	Source  string    `json:"source"`
	Records int       `json:"records"`
	Skipped int       `json:"skipped"`
	Limited bool      `json:"limited"` // reading stopped at --limit
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	APIs    int       `json:"apis"`
	Callers int       `json:"callers"`
}

// NewReport assembles a report.
func NewReport(d *gitops.RepoDiff, t *traffic.Aggregate, fs []Finding) *Report {
	if fs == nil {
		fs = []Finding{}
	}
	return &Report{Diff: d, Findings: fs, Breaking: Count(fs, Breaking), Warnings: Count(fs, Warning),
		Traffic: TrafficSummary{Source: t.Source, Records: t.Records, Skipped: t.Skipped, Limited: t.Limited,
			First: t.First, Last: t.Last, APIs: len(t.APIs), Callers: len(t.Credentials)}}
}

// MarkdownImpactBudget bounds the impact section of the markdown output;
// the diff after it gets what is left of gitops.MarkdownBudget.
const MarkdownImpactBudget = 24000

// maxCallersListed bounds the callers shown per finding in text and
// markdown (json lists them all).
const maxCallersListed = 8

// Format writes the report as text, markdown (a pull-request comment that
// leads with the breaking changes) or json.
func (r *Report) Format(w io.Writer, format string) error {
	switch format {
	case gitops.FormatText:
		return r.formatText(w)
	case gitops.FormatMarkdown:
		return r.formatMarkdown(w)
	case gitops.FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	}
	return fmt.Errorf("unknown format %q: expected text, markdown or json", format)
}

func (r *Report) trafficLine() string {
	t := r.Traffic
	s := fmt.Sprintf("%s from %s", plural(t.Records, "request"), t.Source)
	if t.Records > 0 {
		s += fmt.Sprintf(" (%s – %s)", stamp(t.First), stamp(t.Last))
	}
	if t.Limited {
		s += ", stopped at --limit"
	}
	return s
}

// responsesLine says what the response check did; "" when the report has
// none.
func (r *Report) responsesLine() string {
	c := r.Responses
	switch {
	case c == nil:
		return ""
	case !c.Made:
		return "response check: " + c.Note
	}
	return fmt.Sprintf("response check: %s replayed against %s: %d differ, %d not replayable",
		plural(c.Replayed+c.NotReplayable, "captured record"), gitops.Label(r.Diff.To), c.Differ, c.NotReplayable)
}

func (r *Report) summary() string {
	return fmt.Sprintf("%s, %s", plural(r.Breaking, "breaking change"), plural(r.Warnings, "warning"))
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func callerList(cs []Caller) string {
	if len(cs) == 0 {
		return "no recorded calls"
	}
	var parts []string
	for i, c := range cs {
		if i == maxCallersListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(cs)-i))
			break
		}
		id := c.AppID
		if id == "" {
			id = "(no appId)"
		}
		parts = append(parts, fmt.Sprintf("%s %d (last %s)", id, c.Requests, stamp(c.LastCall)))
	}
	return strings.Join(parts, ", ")
}

func (r *Report) formatText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "caller impact %s..%s: %s; traffic: %s\n", gitops.Label(r.Diff.From), gitops.Label(r.Diff.To), r.summary(), r.trafficLine())
	if l := r.responsesLine(); l != "" {
		b.WriteString(l + "\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-8s %s [%s]: %s\n", strings.ToUpper(f.Severity), f.Subject, f.Kind, f.Message)
		if len(f.Callers) > 0 {
			fmt.Fprintf(&b, "         callers: %s\n", callerList(f.Callers))
		}
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return r.Diff.Format(w, gitops.FormatText)
}

var sevBadge = map[string]string{Breaking: "**breaking**", Warning: "warning", Info: "info"}

func (r *Report) formatMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString(gitops.MarkdownMarker + "\n")
	fmt.Fprintf(&b, "### Databus caller impact: %s → %s\n\n", mdCode(gitops.Label(r.Diff.From)), mdCode(gitops.Label(r.Diff.To)))
	switch {
	case r.Breaking > 0:
		fmt.Fprintf(&b, "> [!CAUTION]\n> **%s** for callers seen in the traffic.\n\n", capitalize(plural(r.Breaking, "breaking change")))
	default:
		b.WriteString("No breaking change for the callers seen in the traffic.\n\n")
	}
	fmt.Fprintf(&b, "Traffic: %s.\n\n", mdEscape(r.trafficLine()))
	if l := r.responsesLine(); l != "" {
		fmt.Fprintf(&b, "%s.\n\n", mdEscape(capitalize(l)))
	}
	if len(r.Findings) > 0 {
		b.WriteString("| Severity | Subject | Finding | Callers |\n| --- | --- | --- | --- |\n")
		for i, f := range r.Findings {
			row := fmt.Sprintf("| %s | %s %s | %s: %s | %s |\n", sevBadge[f.Severity], f.Subject.Kind, mdCode(f.Subject.ID),
				mdCode(f.Kind), mdCell(mdEscape(f.Message)), mdCell(mdEscape(callerList(f.Callers))))
			if b.Len()+len(row) > MarkdownImpactBudget-200 {
				fmt.Fprintf(&b, "\n_%d more findings left out to keep the comment short: run `databus diff --traffic` locally._\n", len(r.Findings)-i)
				break
			}
			b.WriteString(row)
		}
		b.WriteString("\n")
	}
	b.WriteString("---\n\n")
	var diff bytes.Buffer
	if err := r.Diff.FormatMarkdown(&diff, max(gitops.MarkdownBudget-b.Len(), 0)); err != nil {
		return err
	}
	b.WriteString(strings.TrimPrefix(diff.String(), gitops.MarkdownMarker+"\n"))
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCode writes s as an inline code span that survives backticks in s.
func mdCode(s string) string {
	if s == "" {
		return `""`
	}
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func mdEscape(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`).Replace(s)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
