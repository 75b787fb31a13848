package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/databus-gateway/databus/internal/safefile"
)

// Place turns a finding of a later build stage (a flow that does not
// compile, a boot setting that changed) into a Diagnostic positioned like
// the loader's own: file:line:column of the value at the JSON pointer ptr,
// with its display path. scriptLine and scriptColumn (1-based, 0: none)
// place it inside a script's source held at ptr. The file is read again
// from the repository; when it cannot be, the finding stands at the file.
func (r *Repository) Place(file, ptr string, scriptLine, scriptColumn int, sev Severity, msg string) Diagnostic {
	data, err := safefile.Read(filepath.Join(r.Dir, filepath.FromSlash(file)), MaxFileBytes)
	if err != nil {
		return Diagnostic{File: file, Severity: sev, Message: msg}
	}
	return PlaceIn(file, data, ptr, scriptLine, scriptColumn, sev, msg)
}

// PlaceIn is Place for a document that is not a file of the repository (a
// draft sent to the debug invoke): data holds its text, file its name.
func PlaceIn(file string, data []byte, ptr string, scriptLine, scriptColumn int, sev Severity, msg string) Diagnostic {
	out := Diagnostic{File: file, Severity: sev, Message: msg}
	var diags Diagnostics
	d := parseDocument(file, data, &diags)
	if d == nil {
		return out
	}
	out.Path = d.path(ptr)
	if scriptLine > 0 {
		out.Line, out.Column = scriptPos(d, ptr, scriptLine, scriptColumn)
	} else {
		out.Line, out.Column = d.pos(ptr)
	}
	return out
}

// Fault is a finding of a build stage after Load (compiling a flow, a
// policy, the resources a gateway acquires): the file and the JSON pointer
// of the field at fault and, inside a script, the place in its source.
// Repository.Place positions it.
type Fault struct {
	File    string // repository-relative
	Pointer string // JSON pointer of the field, e.g. /steps/2/script/source
	// ScriptLine and ScriptColumn place the fault inside a script's source
	// (1-based); 0 when it has no place there.
	ScriptLine, ScriptColumn int
	Err                      error
}

func (e *Fault) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.File, PointerPath(e.Pointer), e.Err)
}

func (e *Fault) Unwrap() error { return e.Err }

// Diagnostic places the fault in repo as an error.
func (e *Fault) Diagnostic(repo *Repository) Diagnostic {
	return repo.Place(e.File, e.Pointer, e.ScriptLine, e.ScriptColumn, SevError, e.Err.Error())
}

// PointerPath turns a JSON pointer such as /steps/2/script into the display
// path steps[2].script.
func PointerPath(ptr string) string {
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~"))
	}
	return b.String()
}
