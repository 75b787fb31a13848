package config

import (
	"os"
	"path/filepath"
)

// Place turns a finding of a later build stage (a flow that does not
// compile, a boot setting that changed) into a Diagnostic positioned like
// the loader's own: file:line:column of the value at the JSON pointer ptr,
// with its display path. scriptLine and scriptColumn (1-based, 0: none)
// place it inside a script's source held at ptr. The file is read again
// from the repository; when it cannot be, the finding stands at the file.
func (r *Repository) Place(file, ptr string, scriptLine, scriptColumn int, sev Severity, msg string) Diagnostic {
	out := Diagnostic{File: file, Severity: sev, Message: msg}
	data, err := os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(file)))
	if err != nil {
		return out
	}
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
