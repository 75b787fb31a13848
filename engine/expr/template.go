package expr

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Template is a string with `${jq}` interpolations, e.g.
// `http://orders/${.request.body.orderNo}`. `$${` stands for a literal `${`.
type Template struct {
	parts []part
}

type part struct {
	lit    string
	prog   *Program            // nil for a literal part
	escape func(string) string // applied to the interpolated value; nil: none
}

// TemplateError is a compile error inside one interpolation of a template.
// Offset is the byte offset of the error inside the whole template string.
type TemplateError struct {
	Offset int
	Msg    string
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("%s (at offset %d)", e.Msg, e.Offset)
}

// ParseURLTemplate parses a URL template. Interpolated values are escaped
// for where they stand — a path segment (url.PathEscape: "/" and "?" too) or
// the query (url.QueryEscape) — so a caller's data cannot change the path or
// add parameters. An interpolation at the very start is the base URL itself
// and is inserted as it is.
func ParseURLTemplate(s string) (*Template, error) {
	t, err := ParseTemplate(s)
	if err != nil {
		return nil, err
	}
	inQuery := false
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil {
			if strings.ContainsAny(p.lit, "?#") {
				inQuery = true
			}
			continue
		}
		switch {
		case i == 0:
		case inQuery:
			p.escape = url.QueryEscape
		default:
			p.escape = url.PathEscape
		}
	}
	return t, nil
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
	c := &Template{parts: make([]part, len(t.parts))}
	copy(c.parts, t.parts)
	for i := range c.parts {
		if p := c.parts[i].prog; p != nil {
			c.parts[i].prog = p.Bind(place, b)
		}
	}
	return c
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
// they are, null as the empty string, other values as compact JSON.
func (t *Template) Render(ctx context.Context, input any, doc map[string]any) (string, error) {
	if len(t.parts) == 1 && t.parts[0].prog == nil {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		v, err := p.prog.Run(ctx, input, doc)
		if err != nil && err != ErrNoOutput {
			return "", fmt.Errorf("${%s}: %w", p.prog.src, err)
		}
		if p.escape != nil {
			b.WriteString(p.escape(stringify(v)))
		} else {
			b.WriteString(stringify(v))
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
