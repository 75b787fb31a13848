package view

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp/syntax"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/databus-gateway/databus/schema"
)

// Bounds of an example body: how deep the schema is followed and how many
// items an array gets (its minItems, at most this many).
const (
	exampleDepth    = 16
	exampleMaxItems = 8
)

// ExampleBody is a request body for an API's input schema (a JSON Schema,
// as config.Api.Input holds it): the required properties, each with a
// value of the right type (const, enum, default or examples first;
// strings that match their pattern and length; numbers within their
// bounds). It is checked with the validator the start step uses; an error
// says why the schema needs a body written by hand.
func ExampleBody(input any) ([]byte, error) {
	if input == nil {
		return nil, nil
	}
	v := exampleOf(input, input, 0)
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	sch, err := schema.CompileUser(input)
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if err := sch.Validate(doc); err != nil {
		return b, fmt.Errorf("the example body does not pass the input schema: %w", err)
	}
	return b, nil
}

func exampleOf(root, s any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > exampleDepth {
		return nil
	}
	if ref, ok := m["$ref"].(string); ok {
		if t := localRef(root, ref); t != nil {
			return exampleOf(root, t, depth+1)
		}
	}
	if v, ok := m["const"]; ok {
		return v
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	if v, ok := m["default"]; ok {
		return v
	}
	if e, ok := m["examples"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := m[k].([]any); ok && len(l) > 0 && m["type"] == nil && m["properties"] == nil {
			if k == "allOf" {
				return mergeExamples(root, l, depth)
			}
			return exampleOf(root, l[0], depth+1)
		}
	}
	switch typeOf(m) {
	case "object":
		out := map[string]any{}
		props, _ := m["properties"].(map[string]any)
		req, _ := m["required"].([]any)
		for _, r := range req {
			name, _ := r.(string)
			out[name] = exampleOf(root, props[name], depth+1)
			if props[name] == nil {
				out[name] = "example"
			}
		}
		if l, ok := m["allOf"].([]any); ok {
			if more, ok := mergeExamples(root, l, depth).(map[string]any); ok {
				for k, v := range more {
					out[k] = v
				}
			}
		}
		return out
	case "array":
		n := 1
		if f, ok := m["minItems"].(float64); ok {
			n = int(f)
		} else if i, ok := m["minItems"].(int); ok {
			n = i
		}
		n = min(max(n, 1), exampleMaxItems)
		if mx, ok := number(m["maxItems"]); ok {
			n = min(n, int(mx))
		}
		out := make([]any, n)
		for i := range out {
			out[i] = exampleOf(root, m["items"], depth+1)
			if m["items"] == nil {
				out[i] = "example"
			}
		}
		return out
	case "string":
		return exampleString(m)
	case "integer":
		return int64(exampleNumber(m, true))
	case "number":
		return exampleNumber(m, false)
	case "boolean":
		return true
	case "null":
		return nil
	}
	return nil
}

// typeOf is the schema's type (the first of a list that is not null), or
// what its keywords imply.
func typeOf(m map[string]any) string {
	switch t := m["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && s != "null" {
				return s
			}
		}
		return "null"
	}
	switch {
	case m["properties"] != nil || m["required"] != nil:
		return "object"
	case m["items"] != nil:
		return "array"
	case m["pattern"] != nil || m["minLength"] != nil || m["format"] != nil:
		return "string"
	case m["minimum"] != nil || m["maximum"] != nil:
		return "number"
	}
	return ""
}

func mergeExamples(root any, l []any, depth int) any {
	var out any
	for _, s := range l {
		v := exampleOf(root, s, depth+1)
		if o, ok := v.(map[string]any); ok {
			if prev, ok := out.(map[string]any); ok {
				for k, x := range o {
					prev[k] = x
				}
				continue
			}
		}
		if v != nil && out == nil {
			out = v
		}
	}
	return out
}

// localRef resolves "#/$defs/name" (and other local JSON pointers) in root.
func localRef(root any, ref string) any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	cur := root
	for _, part := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(ref, "#"), "/"), "/") {
		if part == "" {
			continue
		}
		part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	}
	return 0, false
}

// exampleNumber is 1 moved into the schema's bounds and onto its
// multipleOf.
func exampleNumber(m map[string]any, integer bool) float64 {
	lo, hi := math.Inf(-1), math.Inf(1)
	if v, ok := number(m["minimum"]); ok {
		lo = v
	}
	if v, ok := number(m["exclusiveMinimum"]); ok {
		lo = math.Max(lo, v+1e-9)
		if integer {
			lo = math.Floor(v) + 1
		}
	}
	if v, ok := number(m["maximum"]); ok {
		hi = v
	}
	if v, ok := number(m["exclusiveMaximum"]); ok {
		hi = math.Min(hi, v-1e-9)
		if integer {
			hi = math.Ceil(v) - 1
		}
	}
	x := math.Max(lo, math.Min(hi, 1))
	if integer {
		x = math.Ceil(x)
	}
	if mul, ok := number(m["multipleOf"]); ok && mul > 0 {
		x = math.Ceil(x/mul) * mul
	}
	return x
}

// exampleString matches the schema's pattern (the shortest match the
// expression allows, with a letter or digit for each class) or names its
// format, then fits minLength and maxLength.
func exampleString(m map[string]any) string {
	s := "example"
	if f, ok := m["format"].(string); ok {
		if v, ok := formats[f]; ok {
			s = v
		}
	}
	pattern, hasPattern := m["pattern"].(string)
	if hasPattern {
		if re, err := syntax.Parse(pattern, syntax.Perl); err == nil {
			var b strings.Builder
			if matchOf(&b, re.Simplify(), 0) {
				s = b.String()
			}
		}
	}
	n := utf8.RuneCountInString(s)
	if v, ok := number(m["minLength"]); ok && n < int(v) {
		if hasPattern {
			return s // padding would break the pattern; the check says so
		}
		s += strings.Repeat("x", int(v)-n)
	}
	if v, ok := number(m["maxLength"]); ok && n > int(v) {
		s = string([]rune(s)[:int(v)])
	}
	return s
}

var formats = map[string]string{
	"email": "user@example.com", "idn-email": "user@example.com", "date": "2024-01-31", "date-time": "2024-01-31T12:00:00Z",
	"time": "12:00:00Z", "uuid": "123e4567-e89b-12d3-a456-426614174000", "uri": "https://example.com/", "iri": "https://example.com/",
	"uri-reference": "https://example.com/", "hostname": "example.com", "idn-hostname": "example.com", "ipv4": "192.0.2.1",
	"ipv6": "2001:db8::1", "duration": "P1D",
}

// matchOf writes a short string re matches; false when it cannot tell
// (say, a class with no printable character).
func matchOf(b *strings.Builder, re *syntax.Regexp, depth int) bool {
	if depth > 64 || b.Len() > 4096 {
		return false
	}
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
		return true
	case syntax.OpCharClass:
		r, ok := classRune(re.Rune)
		if ok {
			b.WriteRune(r)
		}
		return ok
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
		return true
	case syntax.OpCapture:
		return matchOf(b, re.Sub[0], depth+1)
	case syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpPlus:
		return matchOf(b, re.Sub[0], depth+1)
	case syntax.OpRepeat:
		for range re.Min {
			if !matchOf(b, re.Sub[0], depth+1) {
				return false
			}
		}
		return true
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !matchOf(b, sub, depth+1) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		return matchOf(b, re.Sub[0], depth+1)
	}
	return false
}

// classRune picks a rune of a class (pairs of lo, hi): an upper-case
// letter, a lower-case one or a digit when the class has one, else its
// first printable rune.
func classRune(ranges []rune) (rune, bool) {
	for _, want := range []rune{'A', 'a', '1', '0'} {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= want && want <= ranges[i+1] {
				return want, true
			}
		}
	}
	var firsts []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1] && r < ranges[i]+128; r++ {
			if r > ' ' && r != 0x7f && utf8.ValidRune(r) {
				firsts = append(firsts, r)
				break
			}
		}
	}
	if len(firsts) == 0 {
		return 0, false
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts[0], true
}
