package view

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/schema"
)

// Every sample API's example body passes its input schema as the start
// step judges it (the compiled flow's CheckInput).
func TestExampleBodyOfSampleAPIs(t *testing.T) {
	dirs := []string{"../.."}
	more, _ := filepath.Glob("../../examples/*/apis")
	for _, d := range more {
		dirs = append(dirs, filepath.Dir(d))
	}
	want := map[string]string{
		"demo.hello:v1":  `{"name":"example"}`,
		"order.quote:v1": `{"items":[{"price":1,"qty":1,"sku":"example"}],"orderNo":"AAAA"}`,
	}
	checked := 0
	for _, dir := range dirs {
		repo, diags, err := config.Load(dir)
		if err != nil || diags.HasErrors() {
			t.Fatalf("%s: %v %v", dir, err, diags.Errors())
		}
		snap, err := snapshot.Build(repo, snapshot.Deps{})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, rt := range snap.Routes() {
			a := rt.API
			body, err := ExampleBody(a.Input)
			if err != nil {
				t.Errorf("%s %s: %v", dir, a.ID(), err)
				continue
			}
			if a.Input == nil {
				if body != nil {
					t.Errorf("%s: body %s without an input schema", a.ID(), body)
				}
				continue
			}
			if e := rt.Flow.CheckInput(body); e != nil {
				t.Errorf("%s %s: the start step refuses %s: %s", dir, a.ID(), body, e.Message)
			}
			if w, ok := want[a.ID()]; ok && string(body) != w {
				t.Errorf("%s: %s, want %s", a.ID(), body, w)
			}
			delete(want, a.ID())
			checked++
		}
	}
	if len(want) > 0 || checked < 2 {
		t.Errorf("sample APIs not checked: %v (%d checked)", want, checked)
	}
}

// Schemas beyond the samples: each example passes the schema it came
// from, and an empty object does not (so the example says something).
func TestExampleBody(t *testing.T) {
	for _, src := range []string{
		`{"type":"object","required":["email","day","id","kind","n","ratio","flag","tags","nested","code"],"properties":{
			"email":{"type":"string","format":"email"},"day":{"type":"string","format":"date"},"id":{"type":"string","format":"uuid"},
			"kind":{"enum":["a","b"]},"n":{"type":"integer","exclusiveMinimum":10,"multipleOf":5},"ratio":{"type":"number","minimum":0,"maximum":0.5},
			"flag":{"type":"boolean"},"tags":{"type":"array","minItems":3,"items":{"type":"string","minLength":9}},
			"nested":{"$ref":"#/$defs/inner"},"code":{"type":"string","pattern":"^(ab|cd)[0-9]{3}\\.[a-z]+$"}},
		  "$defs":{"inner":{"type":"object","required":["x"],"properties":{"x":{"type":["null","integer"],"maximum":-3}}}}}`,
		`{"type":"object","required":["v"],"properties":{"v":{"const":42}},"allOf":[{"required":["w"],"properties":{"w":{"type":"string","default":"dflt"}}}]}`,
		`{"required":["q"],"properties":{"q":{"type":"string","maxLength":3}}}`,
	} {
		var doc any
		if err := json.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatal(err)
		}
		body, err := ExampleBody(doc)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		sch, err := schema.CompileUser(doc)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal(body, &v)
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: %v", body, err)
		}
		if sch.Validate(map[string]any{}) == nil {
			t.Errorf("%s: an empty object passes too", src)
		}
	}
	// A schema no value passes is said so, not shown as a valid example.
	if _, err := ExampleBody(map[string]any{"type": "string", "minLength": 5, "maxLength": 2}); err == nil || !strings.Contains(err.Error(), "does not pass") {
		t.Errorf("impossible schema: %v", err)
	}
}
