package config

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity of a Diagnostic.
type Severity string

// Severities.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Diagnostic is one finding about a repository: where, what, how bad.
type Diagnostic struct {
	File     string   `json:"file"`     // relative to the repository, slash-separated
	Line     int      `json:"line"`     // 1-based; 0 when the finding concerns no line
	Column   int      `json:"column"`   // 1-based
	Path     string   `json:"path"`     // e.g. steps[2].http.url; "" for the whole document
	Severity Severity `json:"severity"` // error | warning
	Message  string   `json:"message"`
}

// String formats the diagnostic as file:line:col: severity: path: message.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
	}
	fmt.Fprintf(&b, ": %s: ", d.Severity)
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is the list of findings of a load.
type Diagnostics []Diagnostic

// HasErrors reports whether any finding is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SevError {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errs, warns int) {
	for _, d := range ds {
		if d.Severity == SevError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// Errors returns only the errors.
func (ds Diagnostics) Errors() Diagnostics {
	var out Diagnostics
	for _, d := range ds {
		if d.Severity == SevError {
			out = append(out, d)
		}
	}
	return out
}

// Sort orders findings by file, line, column, then message.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return a.Message < b.Message
	})
}

// Error makes Diagnostics usable as an error: the first few errors.
func (ds Diagnostics) Error() string {
	errs := ds.Errors()
	if len(errs) == 0 {
		return "no errors"
	}
	const show = 5
	var lines []string
	for i, d := range errs {
		if i == show {
			lines = append(lines, fmt.Sprintf("... and %d more errors", len(errs)-show))
			break
		}
		lines = append(lines, d.String())
	}
	return strings.Join(lines, "\n")
}

// Output formats of WriteTo.
const (
	FormatText   = "text"
	FormatJSON   = "json"
	FormatGitHub = "github"
)

// Write prints the findings in one of the output formats. prefix is joined
// in front of every file name (the repository path as the user gave it), so
// that annotations point at files relative to the caller's working tree.
func (ds Diagnostics) Write(w io.Writer, format, prefix string) error {
	withPrefix := func(f string) string {
		if prefix == "" || prefix == "." {
			return f
		}
		return strings.TrimSuffix(prefix, "/") + "/" + f
	}
	switch format {
	case FormatText:
		for _, d := range ds {
			d.File = withPrefix(d.File)
			if _, err := fmt.Fprintln(w, d.String()); err != nil {
				return err
			}
		}
		return nil
	case FormatJSON:
		out := make([]Diagnostic, 0, len(ds))
		for _, d := range ds {
			d.File = withPrefix(d.File)
			out = append(out, d)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	case FormatGitHub:
		for _, d := range ds {
			msg := d.Message
			if d.Path != "" {
				msg = d.Path + ": " + msg
			}
			level := "error"
			if d.Severity == SevWarning {
				level = "warning"
			}
			loc := "file=" + ghProperty(withPrefix(d.File))
			if d.Line > 0 {
				loc += fmt.Sprintf(",line=%d,col=%d", d.Line, d.Column)
			}
			if _, err := fmt.Fprintf(w, "::%s %s::%s\n", level, loc, ghData(msg)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown format %q: expected text, json or github", format)
}

// ghData escapes a workflow-command message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow-command property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
