package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
)

// validatePublished is Validate against the published schema, step rule
// included.
func validatePublished(kind Kind, doc any) []Violation {
	err := compiled[kind].Validate(doc)
	if err == nil {
		return nil
	}
	return collect(err.(*jsonschema.ValidationError), doc, nil)
}

// jsonShaped decodes YAML into the values the loader hands the validator.
func jsonShaped(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The step rule checked in Go (stepBlocks) finds what the published
// schema's allOf of if/then finds, on every fixture and sample API and on
// shapes they lack.
func TestStepRuleMatchesPublishedSchema(t *testing.T) {
	var docs []any
	for _, glob := range []string{"../engine/config/testdata/*/*.yaml", "../engine/config/testdata/*/apis/*.yaml", "../apis/*.yaml", "../examples/*/apis/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if d := jsonShaped(t, data); d != nil {
				docs = append(docs, d)
			}
		}
	}
	if len(docs) < 20 {
		t.Fatalf("only %d documents found", len(docs))
	}
	for _, extra := range []string{
		`{"steps": [{"id": "a", "type": "rpc"}, {"id": "b", "type": "script", "script": {"source": "x"}}, {"id": "c", "type": "script"}]}`,
		`{"steps": [{"id": "a", "type": 7}, "not a step", {"type": "http", "http": null}]}`,
		`{"steps": {"type": "http"}}`,
		`[]`,
	} {
		docs = append(docs, jsonShaped(t, []byte(extra)))
	}
	missing := 0
	for i, d := range docs {
		got, want := Validate(KindApi, d), validatePublished(KindApi, d)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("document %d: Validate\n%v\npublished schema\n%v", i, got, want)
		}
		for _, v := range want {
			if v.Kind == MissingKey && (v.Key == "http" || v.Key == "rpc" || v.Key == "script") {
				missing++
			}
		}
	}
	if missing < 3 {
		t.Fatalf("the step rule fired %d times over the documents: the comparison proves little", missing)
	}
}
