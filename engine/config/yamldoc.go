package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/engine/expr"
)

// Limits that keep a hostile document from exhausting the loader.
const (
	maxDocNodes = 200_000 // values after alias expansion
	maxDocDepth = 100
)

// document is one parsed YAML file: its JSON-shaped value for the schema,
// and for every JSON pointer the YAML node it came from, so that a finding
// about a value can name its line and column.
type document struct {
	file  string
	data  []byte
	root  *yaml.Node // the mapping at the document root (nil when not a mapping)
	value any

	nodes map[string]*yaml.Node // pointer -> value node
	keys  map[string]*yaml.Node // pointer -> key node of that value

	diags *Diagnostics
	count int

	// deps are the other files the checks read; dirBound: the checks
	// depended on the repository's absolute path.
	deps     []dep
	dirBound bool
	// exprs are the jq programs and templates checked, by pointer.
	exprs map[string]exprAt
}

// expr records a jq program or template checked at ptr.
func (d *document) expr(ptr string, prog *expr.Program) {
	if d.exprs == nil {
		d.exprs = map[string]exprAt{}
	}
	line, _ := d.pos(ptr)
	d.exprs[ptr] = exprAt{line: line, prog: prog}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument parses data. Syntax and structure problems are added to diags
// and the returned document is nil.
func parseDocument(file string, data []byte, diags *Diagnostics) *document {
	d := &document{
		file:  file,
		data:  data,
		nodes: map[string]*yaml.Node{},
		keys:  map[string]*yaml.Node{},
		diags: diags,
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorAtLine(1, 1, "", "empty document: expected a YAML mapping with apiVersion and kind")
			return nil
		}
		d.syntaxError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorAtLine(extra.Line, extra.Column, "", "a file holds one document: found a second one (---)")
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.syntaxError(err)
		return nil
	}
	root := &n
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			d.errorAtLine(1, 1, "", "empty document: expected a YAML mapping with apiVersion and kind")
			return nil
		}
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		d.errorAtLine(root.Line, root.Column, "", "expected a YAML mapping at the top of the file, found "+nodeKind(root))
		return nil
	}
	d.root = root
	v, ok := d.convert(root, "", 0)
	if !ok {
		return nil
	}
	d.value = v
	return d
}

func (d *document) syntaxError(err error) {
	msg := err.Error()
	line, col := 1, 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		line, col = locate(d.data, "*"+m[1])
		msg = fmt.Sprintf("alias *%s refers to no anchor &%s defined before it", m[1], m[1])
	}
	msg, col = d.syntaxHint(msg, line, col)
	d.errorAtLine(line, col, "", "YAML syntax error: "+msg)
}

// syntaxHint adds what yaml.v3's parser messages leave out.
func (d *document) syntaxHint(msg string, line, col int) (string, int) {
	text := lineText(d.data, line)
	switch {
	case strings.Contains(msg, "cannot start any token") && strings.Contains(text, "\t"):
		return msg + ": a tab character; YAML indents with spaces only", strings.Index(text, "\t") + 1
	case strings.Contains(msg, "found unexpected end of stream"), strings.Contains(msg, "did not find expected"):
		if strings.Count(text, "'")%2 == 1 || strings.Count(strings.ReplaceAll(text, `\"`, ""), `"`)%2 == 1 {
			return msg + ": a quote opened on this line is never closed", col
		}
	}
	return msg, col
}

// lineText returns the 1-based line of data.
func lineText(data []byte, line int) string {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return ""
	}
	return string(lines[line-1])
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a mapping"
}

// isIdent reports whether key can stand in a display path unquoted:
// [A-Za-z_][A-Za-z0-9_]*.
func isIdent(key string) bool {
	for i, c := range []byte(key) {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return key != ""
}

func childPath(parent, key string, index bool) string {
	switch {
	case index:
		return parent + "[" + key + "]"
	case isIdent(key):
		if parent == "" {
			return key
		}
		return parent + "." + key
	}
	return parent + "[" + strconv.Quote(key) + "]"
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// convert turns a YAML node into the JSON-shaped value the schema expects,
// recording positions. It reports duplicate keys, non-string keys and values
// JSON cannot hold. Display paths are made from pointers only for findings.
func (d *document) convert(n *yaml.Node, ptr string, depth int) (any, bool) {
	d.count++
	if d.count > maxDocNodes {
		if d.count == maxDocNodes+1 {
			d.errorAtLine(n.Line, n.Column, d.path(ptr), fmt.Sprintf("document too large: more than %d values after expanding aliases", maxDocNodes))
		}
		return nil, false
	}
	if depth > maxDocDepth {
		d.errorAtLine(n.Line, n.Column, d.path(ptr), fmt.Sprintf("document nested deeper than %d levels", maxDocDepth))
		return nil, false
	}
	if _, seen := d.nodes[ptr]; !seen {
		d.nodes[ptr] = n
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			d.errorAtLine(n.Line, n.Column, d.path(ptr), "unknown alias")
			return nil, false
		}
		return d.convert(n.Alias, ptr, depth+1)
	case yaml.MappingNode:
		return d.convertMap(n, ptr, depth)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			v, cok := d.convert(c, ptr+"/"+strconv.Itoa(i), depth+1)
			ok = ok && cok
			out = append(out, v)
		}
		return out, ok
	case yaml.ScalarNode:
		return d.scalar(n, ptr)
	}
	d.errorAtLine(n.Line, n.Column, d.path(ptr), "unsupported YAML node")
	return nil, false
}

func (d *document) convertMap(n *yaml.Node, ptr string, depth int) (any, bool) {
	out := make(map[string]any, len(n.Content)/2)
	firstAt := map[string]*yaml.Node{}
	ok := true
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorAtLine(k.Line, k.Column, d.path(ptr), "mapping keys must be strings, found "+nodeKind(k))
			ok = false
			continue
		}
		key := k.Value
		if prev, dup := firstAt[key]; dup {
			msg := fmt.Sprintf("duplicate key %q (first at line %d)", key, prev.Line)
			if strings.HasSuffix(ptr, "/transforms") {
				msg = fmt.Sprintf("transform phase %q appears twice at this level (first at line %d): each phase at most once", key, prev.Line)
			}
			d.errorAtLine(k.Line, k.Column, d.path(ptr+"/"+escapePointer(key)), msg)
			ok = false
			continue
		}
		firstAt[key] = k
		cptr := ptr + "/" + escapePointer(key)
		d.keys[cptr] = k
		cv, cok := d.convert(v, cptr, depth+1)
		ok = ok && cok
		out[key] = cv
	}
	// YAML merge keys (<<: *anchor): keys of the merged mappings that the
	// mapping does not set itself.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			for s.Kind == yaml.AliasNode && s.Alias != nil {
				s = s.Alias
			}
			if s.Kind != yaml.MappingNode {
				d.errorAtLine(m.Line, m.Column, d.path(ptr), "merge key << needs a mapping or a list of mappings")
				ok = false
				continue
			}
			for i := 0; i+1 < len(s.Content); i += 2 {
				key := s.Content[i].Value
				if _, set := out[key]; set {
					continue
				}
				cptr := ptr + "/" + escapePointer(key)
				d.keys[cptr] = s.Content[i]
				cv, cok := d.convert(s.Content[i+1], cptr, depth+1)
				ok = ok && cok
				out[key] = cv
			}
		}
	}
	return out, ok
}

func (d *document) scalar(n *yaml.Node, ptr string) (any, bool) {
	switch n.Tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorAtLine(n.Line, n.Column, d.path(ptr), "bad boolean: "+n.Value)
			return nil, false
		}
		return b, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			var u uint64
			if err2 := n.Decode(&u); err2 != nil {
				d.errorAtLine(n.Line, n.Column, d.path(ptr), "integer out of range: "+n.Value)
				return nil, false
			}
			return json.Number(strconv.FormatUint(u, 10)), true
		}
		return json.Number(strconv.FormatInt(i, 10)), true
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorAtLine(n.Line, n.Column, d.path(ptr), "number not representable in JSON: "+n.Value)
			return nil, false
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
	case "!!binary":
		d.errorAtLine(n.Line, n.Column, d.path(ptr), "binary values are not supported")
		return nil, false
	}
	return n.Value, true
}

// pos returns the line and column of the value at ptr, or of its nearest
// recorded ancestor.
func (d *document) pos(ptr string) (int, int) {
	for {
		if n, ok := d.nodes[ptr]; ok {
			return n.Line, n.Column
		}
		if ptr == "" {
			return 1, 1
		}
		i := strings.LastIndex(ptr, "/")
		if i < 0 {
			ptr = ""
		} else {
			ptr = ptr[:i]
		}
	}
}

// errorAtKey reports an error about the block at ptr, placed at the key
// that owns it (the value of a block mapping starts on the next line).
func (d *document) errorAtKey(ptr, format string, args ...any) {
	line, col := d.keyPos(ptr)
	d.add(SevError, line, col, d.path(ptr), fmt.Sprintf(format, args...))
}

// keyPos returns the position of the key of the value at ptr (falls back to
// the value).
func (d *document) keyPos(ptr string) (int, int) {
	if k, ok := d.keys[ptr]; ok {
		return k.Line, k.Column
	}
	return d.pos(ptr)
}

// path returns the display path of ptr, e.g. steps[2].http.url.
func (d *document) path(ptr string) string {
	i := strings.LastIndex(ptr, "/")
	if i < 0 {
		return ""
	}
	parent := ptr[:i]
	tok := strings.ReplaceAll(strings.ReplaceAll(ptr[i+1:], "~1", "/"), "~0", "~")
	return childPath(d.path(parent), tok, d.isSequence(parent))
}

// isSequence reports whether the value at ptr is a list.
func (d *document) isSequence(ptr string) bool {
	n := d.nodes[ptr]
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n != nil && n.Kind == yaml.SequenceNode
}

func (d *document) add(sev Severity, line, col int, path, msg string) {
	*d.diags = append(*d.diags, Diagnostic{File: d.file, Line: line, Column: col, Path: path, Severity: sev, Message: msg})
}

func (d *document) errorAtLine(line, col int, path, msg string) {
	d.add(SevError, line, col, path, msg)
}

// errorf reports an error about the value at ptr.
func (d *document) errorf(ptr, format string, args ...any) {
	line, col := d.pos(ptr)
	d.add(SevError, line, col, d.path(ptr), fmt.Sprintf(format, args...))
}

// warnf reports a warning about the value at ptr.
func (d *document) warnf(ptr, format string, args ...any) {
	line, col := d.pos(ptr)
	d.add(SevWarning, line, col, d.path(ptr), fmt.Sprintf(format, args...))
}

// errorAtOffset reports an error inside the string value at ptr, at byte
// offset off of the value, when the scalar's layout lets us compute it.
func (d *document) errorAtOffset(ptr string, off int, msg string) {
	line, col := d.pos(ptr)
	if n, ok := d.nodes[ptr]; ok && n.Kind == yaml.ScalarNode && off >= 0 && off <= len(n.Value) {
		line, col = scalarOffset(d.data, n, off)
	}
	d.add(SevError, line, col, d.path(ptr), msg)
}

// scalarOffset maps a byte offset of a scalar's value to a line and column
// for the layouts where that is exact: single-line plain and quoted scalars
// without escapes, and literal block scalars.
func scalarOffset(data []byte, n *yaml.Node, off int) (int, int) {
	prefix := n.Value[:off]
	switch n.Style {
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if strings.Contains(n.Value, "\n") || strings.ContainsAny(n.Value, `'\`) {
			return n.Line, n.Column
		}
		col := n.Column + len([]rune(prefix))
		if n.Style != 0 {
			col++
		}
		return n.Line, col
	case yaml.LiteralStyle:
		lines := strings.Count(prefix, "\n")
		last := prefix[strings.LastIndex(prefix, "\n")+1:]
		// yaml.v3 reports the position of the | indicator; the content
		// starts on the next line, at the indentation of the block's first
		// non-empty line (deeper lines keep their extra spaces in the value).
		return n.Line + 1 + lines, blockIndent(data, n.Line+1) + 1 + len([]rune(last))
	}
	return n.Line, n.Column
}

// pointerOf converts a display-path-free list of tokens into a pointer.
func pointerOf(tokens ...any) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		switch x := t.(type) {
		case int:
			b.WriteString(strconv.Itoa(x))
		case string:
			b.WriteString(escapePointer(x))
		}
	}
	return b.String()
}

// blockIndent returns the indentation of the first non-blank line at or
// after the 1-based line of data: a block scalar's content indentation.
func blockIndent(data []byte, line int) int {
	lines := bytes.Split(data, []byte("\n"))
	for i := line - 1; i >= 0 && i < len(lines); i++ {
		l := lines[i]
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		return len(l) - len(bytes.TrimLeft(l, " "))
	}
	return 0
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// locate returns the line and column of the first occurrence of needle in
// data, or 1, 1.
func locate(data []byte, needle string) (int, int) {
	i := bytes.Index(data, []byte(needle))
	if i < 0 {
		return 1, 1
	}
	line := bytes.Count(data[:i], []byte("\n")) + 1
	col := i - bytes.LastIndexByte(data[:i], '\n')
	return line, col
}
