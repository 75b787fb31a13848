package expr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Template is a string with `${jq}` interpolations, e.g.
// `http://orders/${.request.body.orderNo}`. `$${` stands for a literal `${`.
type Template struct {
	parts []part
	url   bool // a URL template: values are checked and escaped for where they stand
}

type part struct {
	lit    string
	prog   *Program // nil for a literal part
	where  urlPos   // URL templates: where the part starts
	escape func(string) string
}

// urlPos is where a part of a URL template stands.
type urlPos uint8

const (
	posScheme    urlPos = iota // before "://"
	posAuthority               // userinfo, host, port
	posPath
	posQuery // query and fragment
	posBase  // an interpolation at the very start: the whole base URL
)

// TemplateError is a compile error inside one interpolation of a template.
// Offset is the byte offset of the error inside the whole template string.
type TemplateError struct {
	Offset int
	Msg    string
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("%s (at offset %d)", e.Msg, e.Offset)
}

// ErrUnsafeValue is the refusal of an interpolated value that would change
// a URL's structure (a dot-segment in the path, a host with userinfo, ...).
// It is the caller's data at fault: the portal answers 400.
var ErrUnsafeValue = errors.New("value not allowed in the URL")

// URLValueError is an ErrUnsafeValue naming the interpolation.
type URLValueError struct {
	Src    string // the jq program of the interpolation
	Value  string // the value, shortened
	Reason string
}

func (e *URLValueError) Error() string {
	return fmt.Sprintf("${%s} = %q: %s", e.Src, e.Value, e.Reason)
}

func (e *URLValueError) Unwrap() error { return ErrUnsafeValue }

func unsafeValue(p *Program, v, reason string) error {
	if len(v) > 64 {
		v = v[:64] + "..."
	}
	return &URLValueError{Src: p.src, Value: v, Reason: reason}
}

// ParseURLTemplate parses a URL template. Interpolated values are checked
// and escaped for where they stand, so that a caller's data cannot change
// the URL's structure:
//   - in the path, url.PathEscape ("/", "?", "#", "%" too); a segment
//     that a value makes "." or ".." (%2E counts as ".") is refused with
//     ErrUnsafeValue;
//   - in the query or fragment, url.QueryEscape;
//   - in the scheme or authority, the value must be a host name, an IP
//     (IPv6 in brackets) or host:port: letters, digits, '.', '-', '_',
//     ':', '[' and ']' only, so it cannot add userinfo, a path or a query.
//     Such a template has a templated authority (AuthorityTemplated); the
//     caller must check the host it renders to;
//   - an interpolation at the very start is the base URL itself and is
//     inserted as it is (the authority is templated); a URL built on it
//     whose path holds a dot-segment is refused.
func ParseURLTemplate(s string) (*Template, error) {
	t, err := ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	t.url = true
	pos := posScheme
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil {
			p.where = pos
			pos = scanURL(pos, p.lit, nil)
			continue
		}
		switch {
		case i == 0:
			p.where, pos = posBase, posPath
		case pos == posQuery:
			p.where, p.escape = pos, url.QueryEscape
		case pos == posPath:
			p.where, p.escape = pos, url.PathEscape
		default:
			p.where = posAuthority
		}
	}
	return t, nil
}

// scanURL follows literal URL text lit from position pos and returns the
// position after it. slash, when set, is called with the index in lit of
// each byte that ends a path segment ('/', or the '?' or '#' ending the
// path) and whether the path goes on after it.
func scanURL(pos urlPos, lit string, slash func(i int, more bool)) urlPos {
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch pos {
		case posScheme:
			if strings.HasPrefix(lit[i:], "://") {
				pos = posAuthority
				i += 2
			}
		case posAuthority:
			switch c {
			case '/':
				pos = posPath
				if slash != nil {
					slash(i, true)
				}
			case '?', '#':
				pos = posQuery
			}
		case posPath, posBase:
			switch c {
			case '/':
				if slash != nil {
					slash(i, true)
				}
			case '?', '#':
				pos = posQuery
				if slash != nil {
					slash(i, false)
				}
			}
		}
	}
	return pos
}

// AuthorityTemplated reports whether an interpolation of a URL template
// decides its scheme, userinfo, host or port (a base URL at the start
// included): the rendered host must be checked against an allow-list.
func (t *Template) AuthorityTemplated() bool {
	for _, p := range t.parts {
		if p.prog != nil && (p.where == posAuthority || p.where == posBase) {
			return true
		}
	}
	return false
}

// hostValue reports whether v may stand in a URL's scheme or authority:
// it cannot carry userinfo, a path, a query or an escape.
func hostValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_:[]", c) >= 0) {
			return false
		}
	}
	return true
}

// dotSegment reports whether a path segment is "." or ".." once %2E is
// read as "." (as many servers do).
func dotSegment(seg string) bool {
	if len(seg) > 6 {
		return false
	}
	seg = strings.ReplaceAll(strings.ReplaceAll(seg, "%2e", "."), "%2E", ".")
	return seg == "." || seg == ".."
}

// baseDotSegment reports whether the path of a URL holds a dot-segment.
func baseDotSegment(base string) bool {
	rest := base
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return false
		}
		rest = rest[j:]
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	for _, seg := range strings.Split(rest, "/") {
		if dotSegment(seg) {
			return true
		}
	}
	return false
}

// HasInterpolation reports whether s contains at least one `${`.
func HasInterpolation(s string) bool { return strings.Contains(s, "${") }

// ParseTemplate splits s into literal text and jq programs and compiles them.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{}
	var lit strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			lit.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			lit.WriteByte(s[i])
			i++
			continue
		}
		end, err := matchBrace(s, i+2)
		if err != nil {
			return nil, err
		}
		src := s[i+2 : end]
		prog, cerr := Compile(src)
		if cerr != nil {
			off := i + 2
			if e, ok := cerr.(*Error); ok && e.Offset >= 0 {
				off += e.Offset
			}
			msg := cerr.Error()
			if e, ok := cerr.(*Error); ok {
				msg = "jq: " + e.Msg
			}
			return nil, &TemplateError{Offset: off, Msg: fmt.Sprintf("interpolation ${%s}: %s", src, msg)}
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{prog: prog})
		i = end + 1
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// matchBrace finds the `}` closing an interpolation whose program starts at
// start, skipping nested braces and jq string literals.
func matchBrace(s string, start int) (int, error) {
	depth := 0
	for i := start; i < len(s); i++ {
		switch s[i] {
		case '"':
			j, ok := skipString(s, i)
			if !ok {
				return 0, &TemplateError{Offset: i, Msg: "unterminated string inside ${...}"}
			}
			i = j
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return i, nil
			}
			depth--
		}
	}
	return 0, &TemplateError{Offset: start - 2, Msg: "unclosed ${: expected a closing }"}
}

// skipString returns the index of the quote closing the jq string at s[i].
// A string interpolation `\(...)` inside it may hold further strings.
func skipString(s string, i int) (int, bool) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 < len(s) && s[j+1] == '(' {
				k, ok := skipParens(s, j+2)
				if !ok {
					return 0, false
				}
				j = k
				continue
			}
			j++
		case '"':
			return j, true
		}
	}
	return 0, false
}

// skipParens returns the index of the `)` closing a group opened just before i.
func skipParens(s string, i int) (int, bool) {
	depth := 0
	for k := i; k < len(s); k++ {
		switch s[k] {
		case '"':
			e, ok := skipString(s, k)
			if !ok {
				return 0, false
			}
			k = e
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return k, true
			}
			depth--
		}
	}
	return 0, false
}

// Bind returns a copy of t whose interpolations run under b and name place
// when the budget stops them (see Program.Bind).
func (t *Template) Bind(place string, b *Budget) *Template {
	c := *t // every field of t, so that a new one is never lost here
	c.parts = append([]part(nil), t.parts...)
	for i := range c.parts {
		if p := c.parts[i].prog; p != nil {
			c.parts[i].prog = p.Bind(place, b)
		}
	}
	return &c
}

// Place is where the template's interpolations stand in the
// configuration ("" unknown, or a literal).
func (t *Template) Place() string {
	for _, p := range t.parts {
		if p.prog != nil {
			return p.prog.place
		}
	}
	return ""
}

// IsLiteral reports whether the template has no interpolation.
func (t *Template) IsLiteral() bool {
	for _, p := range t.parts {
		if p.prog != nil {
			return false
		}
	}
	return true
}

// Render evaluates every interpolation over input (doc binds the
// variables, as in Program.Run). Strings are inserted as
// they are, null as the empty string, other values as compact JSON; in a
// URL template, checked and escaped as ParseURLTemplate says.
func (t *Template) Render(ctx context.Context, input any, doc map[string]any) (string, error) {
	if len(t.parts) == 1 && t.parts[0].prog == nil {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	// A URL template tracks the path segment being written: where it
	// starts in b and the interpolation that wrote into it, if any.
	segStart := -1
	var segProg *Program
	var bad error
	var base *Program // the interpolation that wrote the base URL
	closeSeg := func(end int) {
		if segProg != nil && bad == nil && segStart >= 0 && dotSegment(b.String()[segStart:end]) {
			bad = unsafeValue(segProg, b.String()[segStart:end], "a path segment cannot be \".\" or \"..\"")
		}
		segProg = nil
	}
	for _, p := range t.parts {
		if p.prog == nil {
			if !t.url {
				b.WriteString(p.lit)
				continue
			}
			off := b.Len()
			b.WriteString(p.lit)
			scanURL(p.where, p.lit, func(i int, more bool) {
				closeSeg(off + i)
				segStart = -1
				if more {
					segStart = off + i + 1
				}
			})
			if bad != nil {
				return "", bad
			}
			continue
		}
		v, err := p.prog.Run(ctx, input, doc)
		if err != nil && err != ErrNoOutput {
			return "", fmt.Errorf("${%s}: %w", p.prog.src, err)
		}
		s := stringify(v)
		switch {
		case !t.url:
		case p.where == posAuthority:
			if !hostValue(s) {
				return "", unsafeValue(p.prog, s, "only a host name, an IP or host:port may stand in the URL's authority")
			}
		case p.where == posBase:
			base = p.prog
		case p.where == posPath:
			segProg = p.prog
		}
		if p.escape != nil {
			s = p.escape(s)
		}
		b.WriteString(s)
	}
	if t.url {
		closeSeg(b.Len())
		if bad != nil {
			return "", bad
		}
		// The base URL's own path is not escaped, and what follows it
		// may extend its last segment: check the whole path.
		if base != nil && baseDotSegment(b.String()) {
			return "", unsafeValue(base, b.String(), "the URL's path cannot hold a \".\" or \"..\" segment")
		}
	}
	return b.String(), nil
}

func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
