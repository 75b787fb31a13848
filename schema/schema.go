// Package schema holds the JSON Schemas (draft 2020-12) of every Databus
// document, embedded in the binary, and validates decoded documents against
// them. Violations carry the JSON pointer of the value at fault so that the
// config loader can map them back to a YAML line and column.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Kind names a document kind and its schema.
type Kind string

// The document kinds of a repository.
const (
	KindApi             Kind = "Api"
	KindCredential      Kind = "Credential"
	KindRateLimitPolicy Kind = "RateLimitPolicy"
	KindSettings        Kind = "Settings"
	KindApiTest         Kind = "ApiTest"
)

//go:embed *.schema.json
var files embed.FS

var fileOf = map[Kind]string{
	KindApi:             "api.schema.json",
	KindCredential:      "credential.schema.json",
	KindRateLimitPolicy: "ratelimitpolicy.schema.json",
	KindSettings:        "settings.schema.json",
	KindApiTest:         "apitest.schema.json",
}

var (
	compiled = map[Kind]*jsonschema.Schema{}
	// checked are the schemas documents are validated against: the
	// published ones, except that the Api's step rule "a step of type T
	// needs the block T" (allOf of if/then, whose failing ifs make the
	// validator build an error each: half of its allocations) is checked
	// in Go by stepBlocks, with the same violation.
	checked = map[Kind]*jsonschema.Schema{}
	raw     = map[string]map[string]any{} // schema $id -> decoded schema, for descriptions and key lists
)

func init() {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.AssertFormat = true
	c.LoadURL = refuseLoad
	ids := map[Kind]string{}
	for kind, name := range fileOf {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			panic(fmt.Sprintf("schema %s: %v", name, err))
		}
		id, _ := doc["$id"].(string)
		raw[id] = doc
		ids[kind] = id
		if err := c.AddResource(id, bytes.NewReader(b)); err != nil {
			panic(fmt.Sprintf("schema %s: %v", name, err))
		}
	}
	for kind, id := range ids {
		compiled[kind] = c.MustCompile(id)
	}
	lean := jsonschema.NewCompiler()
	lean.Draft, lean.AssertFormat, lean.LoadURL = c.Draft, c.AssertFormat, c.LoadURL
	for kind, id := range ids {
		doc := raw[id]
		if kind == KindApi {
			doc = withoutStepRule(doc)
		}
		b, _ := json.Marshal(doc)
		if err := lean.AddResource(id, bytes.NewReader(b)); err != nil {
			panic(fmt.Sprintf("schema %s: %v", id, err))
		}
	}
	for kind, id := range ids {
		checked[kind] = lean.MustCompile(id)
	}
}

// stepTypesWithBlock are the step types whose block the step rule needs.
var stepTypesWithBlock = []string{"http", "rpc", "script"}

// withoutStepRule returns a copy of the Api schema without the step rule
// that stepBlocks checks.
func withoutStepRule(doc map[string]any) map[string]any {
	out := maps.Clone(doc)
	defs := maps.Clone(out["$defs"].(map[string]any))
	step := maps.Clone(defs["step"].(map[string]any))
	if _, ok := step["allOf"]; !ok {
		panic("schema: the Api step rule (allOf of if/then) moved; update withoutStepRule and stepBlocks")
	}
	delete(step, "allOf")
	defs["step"] = step
	out["$defs"] = defs
	return out
}

// stepBlocks checks the step rule of the Api schema: a step whose type is
// http, rpc or script needs the block of that name.
func stepBlocks(doc any) []Violation {
	root, _ := doc.(map[string]any)
	steps, _ := root["steps"].([]any)
	var out []Violation
	for i, st := range steps {
		m, _ := st.(map[string]any)
		t, _ := m["type"].(string)
		if !slices.Contains(stepTypesWithBlock, t) {
			continue
		}
		if _, ok := m[t]; !ok {
			out = append(out, Violation{Pointer: "/steps/" + strconv.Itoa(i), Kind: MissingKey, Key: t,
				Message: fmt.Sprintf("missing required key %q (a step of type %s needs it)", t, t)})
		}
	}
	return out
}

func refuseLoad(url string) (io.ReadCloser, error) {
	return nil, fmt.Errorf("loading %s: remote and file $refs are not allowed", url)
}

// Source returns the text of the schema of kind, for docs and tooling.
func Source(kind Kind) ([]byte, error) {
	name, ok := fileOf[kind]
	if !ok {
		return nil, fmt.Errorf("no schema for kind %q", kind)
	}
	return files.ReadFile(name)
}

// File returns the name of the schema file of kind, in schema/ ("" for a
// kind without a schema).
func File(kind Kind) string { return fileOf[kind] }

// Kinds lists the kinds that have a schema, in a stable order.
func Kinds() []Kind {
	return []Kind{KindApi, KindCredential, KindRateLimitPolicy, KindSettings, KindApiTest}
}

// ViolationKind tells how a Violation relates to its Pointer.
type ViolationKind int

// The kinds of violation.
const (
	// BadValue: the value at Pointer is wrong.
	BadValue ViolationKind = iota
	// UnknownKey: the object at Pointer has a key Key the schema does not allow.
	UnknownKey
	// MissingKey: the object at Pointer lacks the required key Key.
	MissingKey
)

// Violation is one schema error.
type Violation struct {
	Pointer string // JSON pointer of the instance, "" for the root
	Kind    ViolationKind
	Key     string // for UnknownKey and MissingKey
	Message string
	// Suggestion is, for an UnknownKey, the allowed key it is likely a
	// misspelling of ("" when none is close).
	Suggestion string
}

// Validate checks a decoded document (maps, slices, strings, json.Number,
// bools, nil) against the schema of kind. The result is sorted by pointer.
func Validate(kind Kind, doc any) []Violation {
	s, ok := checked[kind]
	if !ok {
		return []Violation{{Message: fmt.Sprintf("unknown kind %q", kind)}}
	}
	var extra []Violation
	if kind == KindApi {
		extra = stepBlocks(doc)
	}
	err := s.Validate(doc)
	if err == nil {
		return collect(nil, doc, extra)
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Violation{{Message: err.Error()}}
	}
	return collect(ve, doc, extra)
}

func collect(ve *jsonschema.ValidationError, doc any, extra []Violation) []Violation {
	var found []Violation
	if ve != nil {
		for _, leaf := range leaves(ve) {
			found = append(found, translate(leaf, doc)...)
		}
	}
	var out []Violation
	seen := map[string]bool{}
	for _, list := range [][]Violation{found, extra} {
		for _, v := range list {
			k := fmt.Sprintf("%s|%d|%s|%s", v.Pointer, v.Kind, v.Key, v.Message)
			if !seen[k] {
				seen[k] = true
				out = append(out, v)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pointer != out[j].Pointer {
			return out[i].Pointer < out[j].Pointer
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

var quoted = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)

func quotedNames(s string) []string {
	var names []string
	for _, m := range quoted.FindAllStringSubmatch(s, -1) {
		names = append(names, strings.ReplaceAll(m[1], `\'`, `'`))
	}
	sort.Strings(names)
	return names
}

// UserViolations explains why CompileUser refused a schema: the violations
// of the JSON Schema meta-schema, with pointers relative to the schema.
func UserViolations(err error) []Violation {
	var se *jsonschema.SchemaError
	if !errors.As(err, &se) {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(se.Err, &ve) {
		return nil
	}
	out := collect(ve, nil, nil)
	for i := range out {
		if out[i].Kind != BadValue {
			out[i].Pointer += "/" + out[i].Key
			out[i].Kind = BadValue
		}
	}
	return out
}

var equalItemsRE = regexp.MustCompile(`^items at index (\d+) and (\d+) are equal$`)

func translate(ve *jsonschema.ValidationError, doc any) []Violation {
	ptr := ve.InstanceLocation
	kw := ve.AbsoluteKeywordLocation
	switch {
	case strings.HasPrefix(ve.Message, "additionalProperties ") && strings.HasSuffix(ve.Message, " not allowed"):
		allowed := propertyNames(strings.TrimSuffix(kw, "/additionalProperties"))
		var out []Violation
		for _, name := range quotedNames(ve.Message) {
			msg := fmt.Sprintf("unknown key %q", name)
			s := suggest(name, allowed)
			if s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if len(allowed) > 0 {
				msg += fmt.Sprintf(" (expected one of: %s)", strings.Join(allowed, ", "))
			}
			out = append(out, Violation{Pointer: ptr, Kind: UnknownKey, Key: name, Message: msg, Suggestion: s})
		}
		return out
	case strings.HasPrefix(ve.Message, "missing properties: "):
		var out []Violation
		for _, name := range quotedNames(ve.Message) {
			msg := fmt.Sprintf("missing required key %q", name)
			if strings.Contains(kw, "/then/") {
				msg += fmt.Sprintf(" (a step of type %s needs it)", name)
			}
			out = append(out, Violation{Pointer: ptr, Kind: MissingKey, Key: name, Message: msg})
		}
		return out
	case strings.HasPrefix(ve.Message, "does not match pattern "):
		pattern := node(strings.TrimSuffix(kw, "/pattern"))["pattern"]
		msg := fmt.Sprintf("value does not match the pattern %v", pattern)
		if value, ok := at(doc, ptr).(string); ok {
			msg = fmt.Sprintf("%q does not match the pattern %v", value, pattern)
		}
		if d := firstSentence(description(strings.TrimSuffix(kw, "/pattern"))); d != "" {
			msg += " (" + d + ")"
		}
		return []Violation{{Pointer: ptr, Message: msg}}
	}
	if m := equalItemsRE.FindStringSubmatch(ve.Message); m != nil {
		item := ptr + "/" + m[2]
		b, _ := json.Marshal(at(doc, item))
		return []Violation{{Pointer: item, Message: fmt.Sprintf("duplicate item %s (also at index %s): items must be unique", b, m[1])}}
	}
	return []Violation{{Pointer: ptr, Message: ve.Message}}
}

// at returns the value at a JSON pointer of doc, or nil.
func at(doc any, ptr string) any {
	v := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			var i int
			if _, err := fmt.Sscan(tok, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// node returns the raw schema object at an absolute keyword location such as
// https://databus.dev/schema/api.schema.json#/$defs/step.
func node(loc string) map[string]any {
	id, frag, _ := strings.Cut(loc, "#")
	cur, ok := raw[id]
	if !ok {
		return nil
	}
	m, _ := at(cur, frag).(map[string]any)
	return m
}

func propertyNames(loc string) []string {
	props, _ := node(loc)["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func description(loc string) string {
	n := node(loc)
	if d, ok := n["description"].(string); ok {
		return d
	}
	// A property defined by $ref keeps its description at the referenced def.
	if ref, ok := n["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
		id, _, _ := strings.Cut(loc, "#")
		return description(id + ref)
	}
	return ""
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

// suggest returns the allowed name closest to name when it is a likely typo.
func suggest(name string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		d := distance(strings.ToLower(name), strings.ToLower(a))
		if d < bestD {
			best, bestD = a, d
		}
	}
	if bestD > len(name)/2 {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// CompileUser compiles an operator-written JSON Schema (an API's input
// schema). Remote and file references are refused.
func CompileUser(doc any) (s *jsonschema.Schema, err error) {
	// The validator panics on a few malformed inputs; a schema an operator
	// wrote must never take the loader down.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid schema: %v", r)
		}
	}()
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = refuseLoad
	const url = "https://databus.invalid/input.schema.json"
	if err := c.AddResource(url, bytes.NewReader(b)); err != nil {
		return nil, err
	}
	return c.Compile(url)
}
