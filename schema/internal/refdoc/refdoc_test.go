package refdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/internal/orderedjson"
	"github.com/databus-gateway/databus/schema"
)

// TestNotLinkedByTheGateway: the binary and the request path do not carry
// the generator (it used to live in package schema, which they link).
func TestNotLinkedByTheGateway(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	self := reflect.TypeFor[refGen]().PkgPath()
	const module = "github.com/databus-gateway/databus/"
	out, err := exec.Command(goBin, "list", "-deps", module+"cmd/databus", module+"engine/portal").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == self {
			t.Fatalf("%s is linked by cmd/databus or engine/portal", self)
		}
	}
	if !strings.Contains(string(out), module+"schema\n") {
		t.Fatalf("go list did not list package schema:\n%s", out)
	}
}

func TestReferenceDeterministic(t *testing.T) {
	a, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := Reference()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("Reference() differs between runs")
		}
	}
}

// TestReferenceListsEveryKey checks that every declared property of every
// schema shows up as a key row of the reference.
func TestReferenceListsEveryKey(t *testing.T) {
	doc, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range schema.Kinds() {
		src, _ := schema.Source(kind)
		root, err := orderedjson.DecodeObject(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range root.Obj("properties").Keys() {
			if !bytes.Contains(doc, []byte("| `"+name+"` |")) {
				t.Errorf("%s: top-level key %s has no row", kind, name)
			}
		}
	}
	for _, path := range []string{"steps[].http.retry.attempts", "steps[].http.headers", "admin.tokens[].secret.secretRef", "encryptionKey.secretRef"} {
		if !bytes.Contains(doc, []byte("| `"+path+"` |")) {
			t.Errorf("no row for %s", path)
		}
	}
}

// TestEveryPropertyHasDescription requires every declared property of every
// schema to carry a non-empty description: the descriptions are the
// reference documentation.
func TestEveryPropertyHasDescription(t *testing.T) {
	for _, kind := range schema.Kinds() {
		src, _ := schema.Source(kind)
		root, err := orderedjson.DecodeObject(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range missingDescriptions(root) {
			t.Errorf("%s %s", schema.File(kind), m)
		}
	}
}

func TestMissingDescriptionsFinds(t *testing.T) {
	root, err := orderedjson.DecodeObject([]byte(`{
	  "properties": {
	    "a": {"type": "string"},
	    "b": {"$ref": "#/$defs/d"},
	    "c": {"$ref": "#/$defs/e", "description": "C."},
	    "l": {"type": "array", "description": "L.", "items": {"properties": {"x": {"description": " "}}}},
	    "m": {"type": "object", "description": "M.", "additionalProperties": {"properties": {"y": {}}}}
	  },
	  "allOf": [{"properties": {"z": {}}}],
	  "$defs": {"d": {"type": "string", "description": "D."}, "e": {"properties": {"w": {}}}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(missingDescriptions(root), "\n")
	for _, want := range []string{"#/properties/a:", "#/properties/l/items/properties/x:", "#/properties/m/additionalProperties/properties/y:", "#/allOf/0/properties/z:", "#/$defs/e/properties/w:"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "/properties/b:") || strings.Contains(got, "/properties/c:") {
		t.Errorf("b and c are described:\n%s", got)
	}
}

// missingDescriptions walks every properties, $defs, items and
// additionalProperties object of a schema (and the branches of
// allOf/anyOf/oneOf) and lists each declared property without a non-empty
// description, its own or the one of the definition it refers to.
func missingDescriptions(root *orderedjson.Object) []string {
	g := &refGen{root: root}
	var out []string
	var walk func(n *orderedjson.Object, loc string)
	walk = func(n *orderedjson.Object, loc string) {
		if n == nil {
			return
		}
		props := n.Obj("properties")
		for _, name := range props.Keys() {
			p := props.Obj(name)
			ploc := loc + "/properties/" + name
			if p == nil {
				out = append(out, ploc+": not a schema object")
				continue
			}
			res, err := g.resolved(p, ploc)
			if err != nil {
				out = append(out, ploc+": "+err.Error())
				continue
			}
			if strings.TrimSpace(res.Str("description")) == "" {
				out = append(out, fmt.Sprintf("%s: property %q has no description", ploc, name))
			}
			walk(p, ploc)
		}
		defs := n.Obj("$defs")
		for _, name := range defs.Keys() {
			walk(defs.Obj(name), loc+"/$defs/"+name)
		}
		walk(n.Obj("items"), loc+"/items")
		walk(n.Obj("additionalProperties"), loc+"/additionalProperties")
		for _, k := range []string{"allOf", "anyOf", "oneOf", "prefixItems"} {
			for i, x := range n.List(k) {
				if xo, ok := x.(*orderedjson.Object); ok {
					walk(xo, fmt.Sprintf("%s/%s/%d", loc, k, i))
				}
			}
		}
	}
	walk(root, "#")
	return out
}

// TestReferenceExamplesAreValid checks the hard-coded examples (from
// DESIGN.md) against their schemas, so they cannot drift either.
func TestReferenceExamplesAreValid(t *testing.T) {
	for _, kind := range schema.Kinds() {
		ex, ok := refExamples[kind]
		if !ok {
			t.Errorf("%s: no example", kind)
			continue
		}
		var v any
		if err := yaml.Unmarshal([]byte(ex), &v); err != nil {
			t.Errorf("%s example: %v", kind, err)
			continue
		}
		// Validate takes JSON-shaped values (json.Number for numbers).
		b, err := json.Marshal(v)
		if err != nil {
			t.Errorf("%s example: %v", kind, err)
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		for _, viol := range schema.Validate(kind, doc) {
			t.Errorf("%s example: %s: %s", kind, viol.Pointer, viol.Message)
		}
	}
}

// TestRenderConstructs covers the schema constructs the current schemas do
// not use, and the refusal of constructs the generator cannot render.
func TestRenderConstructs(t *testing.T) {
	src := `{
	  "$id": "https://example.invalid/t.json",
	  "type": "object",
	  "properties": {
	    "a": {"type": "string", "description": "A | B.", "default": "x"},
	    "b": {"type": "integer", "exclusiveMinimum": 0, "description": "B."},
	    "c": {"type": "object", "description": "Open.", "properties": {"d": {"type": "boolean", "description": "D."}}},
	    "m": {"type": "object", "description": "Map.", "additionalProperties": {"$ref": "#/$defs/o"}},
	    "l": {"type": "array", "maxItems": 1, "items": {"type": "array", "items": {"type": "string"}}, "description": "L."}
	  },
	  "required": ["a"],
	  "dependentRequired": {"a": ["b"]},
	  "oneOf": [{"required": ["b"]}, {"required": ["c", "m"]}],
	  "if": {"properties": {"a": {"enum": ["p", "q"]}}},
	  "else": {"required": ["l"]},
	  "$defs": {"o": {"type": "object", "additionalProperties": false, "description": "O.", "properties": {"e": {"type": "string", "description": "E."}}}}
	}`
	var b bytes.Buffer
	if err := renderKind(&b, "Test", "t.json", []byte(src)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| `a` | string; default `x` | yes | A \\| B. |",
		"| `b` | integer; > 0 | when `a` is set | B. |",
		"| `c` | [object](#test-c), open (other keys allowed) | no | Open. |",
		"| `m` | map of [object](#test-m-name) | no | Map. |",
		"| `m.<name>.e` | string | no | E. |",
		"| `l` | array of array of string; at most 1 item | unless `a` is one of `p`, `q` | L. |",
		"Exactly one of: `b`; `c` and `m`.",
		"Keys other than those listed are allowed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	for name, bad := range map[string]string{
		"unknown keyword": `{"type": "object", "properties": {"a": {"type": "string", "contentEncoding": "base64"}}}`,
		"remote ref":      `{"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}`,
		"undeclared key":  `{"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}, "required": ["b"]}`,
		"complex oneOf":   `{"type": "object", "properties": {"a": {"type": "string"}}, "oneOf": [{"properties": {"a": {"const": "x"}}}]}`,
	} {
		if err := renderKind(&bytes.Buffer{}, "Test", "t.json", []byte(bad)); err == nil {
			t.Errorf("%s: rendered without error", name)
		}
	}
}

func TestMarkdownEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"apis/*.yaml":           `apis/\*.yaml`,
		".steps.<id>":           `.steps.\<id\>`,
		"client_authentication": "client_authentication",
		"'_' and _x_":           `'\_' and \_x\_`,
		"a\n  b":                "a b",
	} {
		if got := mdText(in); got != want {
			t.Errorf("mdText(%q) = %q, want %q", in, got, want)
		}
	}
	if got := code("a|b`c"); got != "``a\\|b`c``" {
		t.Errorf("code: %q", got)
	}
}
