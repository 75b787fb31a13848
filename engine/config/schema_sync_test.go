package config

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/schema"
)

// TestSchemaMatchesTypes keeps the JSON Schemas and the Go types in step: a
// key the schema accepts but the type lacks would be refused by the strict
// decoder after passing the schema, and a field the schema lacks could never
// be set.
func TestSchemaMatchesTypes(t *testing.T) {
	for kind, typ := range map[schema.Kind]reflect.Type{
		schema.KindApi:             reflect.TypeOf(Api{}),
		schema.KindCredential:      reflect.TypeOf(Credential{}),
		schema.KindRateLimitPolicy: reflect.TypeOf(RateLimitPolicy{}),
		schema.KindSettings:        reflect.TypeOf(Settings{}),
		schema.KindApiTest:         reflect.TypeOf(ApiTest{}),
	} {
		src, err := schema.Source(kind)
		if err != nil {
			t.Fatal(err)
		}
		var root map[string]any
		if err := json.Unmarshal(src, &root); err != nil {
			t.Fatal(err)
		}
		compare(t, string(kind), root, root, typ)
	}
}

func resolve(root, s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		cur := any(root)
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[tok]
		}
		s = cur.(map[string]any)
	}
}

func compare(t *testing.T, where string, root, s map[string]any, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
		if items, ok := s["items"].(map[string]any); ok {
			s = resolve(root, items)
		}
	}
	s = resolve(root, s)
	if typ.Kind() == reflect.Map {
		return // free-form: headers, query, metadata, input
	}
	if typ.Kind() != reflect.Struct {
		return
	}
	if reflect.PointerTo(typ).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
		return // a scalar form of its own (AnswerRun: 429 or "200 x10")
	}
	props, _ := s["properties"].(map[string]any)
	if props == nil {
		t.Errorf("%s: schema has no properties for Go type %s", where, typ)
		return
	}
	fields := map[string]reflect.StructField{}
	yamlFields(typ, fields)
	var keys []string
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			t.Errorf("%s: schema property %q has no field in %s", where, k, typ)
			continue
		}
		compare(t, where+"."+k, root, props[k].(map[string]any), f.Type)
	}
	for name := range fields {
		if _, ok := props[name]; !ok {
			t.Errorf("%s: field %s.%s (yaml %q) is not in the schema", where, typ, fields[name].Name, name)
		}
	}
}

// yamlFields collects the YAML keys of typ's fields, those of structs it
// embeds inline included.
func yamlFields(typ reflect.Type, fields map[string]reflect.StructField) {
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" && f.Type.Kind() == reflect.Struct {
			yamlFields(f.Type, fields)
			continue
		}
		if name == "-" || name == "" {
			continue
		}
		fields[name] = f
	}
}
