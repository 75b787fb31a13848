package orderedjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeKeepsOrder(t *testing.T) {
	o, err := DecodeObject([]byte(`{"z": 1, "a": {"y": [true, null, "s"], "b": {}}, "m": 12345678901234567890.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Keys(); !reflect.DeepEqual(got, []string{"z", "a", "m"}) {
		t.Errorf("keys %v", got)
	}
	if got := o.Obj("a").Keys(); !reflect.DeepEqual(got, []string{"y", "b"}) {
		t.Errorf("nested keys %v", got)
	}
	if got := o.Obj("a").List("y"); !reflect.DeepEqual(got, []any{true, nil, "s"}) {
		t.Errorf("list %#v", got)
	}
	if n, ok := o.Get("m").(json.Number); !ok || n.String() != "12345678901234567890.5" {
		t.Errorf("number %#v: want the json.Number as written", o.Get("m"))
	}
	if b := o.Obj("a").Obj("b"); b == nil || b.Len() != 0 {
		t.Errorf("empty object %#v", b)
	}
	if v, err := Decode([]byte(`[]`)); err != nil || !reflect.DeepEqual(v, []any{}) {
		t.Errorf("empty array %#v %v", v, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{`{"a": 1, "a": 2}`, `duplicate key "a"`},
		{`{"a": {"b": 1, "b": 1}}`, `duplicate key "b"`},
		{`{"a": 1} {}`, "trailing data"},
		{`{"a": 1`, "EOF"},
		{`{"a" 1}`, "invalid character"},
		{``, "EOF"},
		{`[1, 2]`, "not a JSON object"},
	}
	for _, tt := range tests {
		_, err := DecodeObject([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeObject(%s) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
	if _, err := Decode([]byte(`{"a": 1, "a": 2}`)); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate: %v does not wrap ErrDuplicateKey", err)
	}
}

func TestAccessors(t *testing.T) {
	var nilObj *Object
	if nilObj.Keys() != nil || nilObj.Len() != 0 || nilObj.Has("a") || nilObj.Get("a") != nil ||
		nilObj.Obj("a") != nil || nilObj.Str("a") != "" || nilObj.List("a") != nil {
		t.Error("a nil *Object does not read as empty")
	}
	o, _ := DecodeObject([]byte(`{"s": "x", "n": 1, "l": [1], "o": {}, "z": null}`))
	if o.Str("s") != "x" || o.Str("n") != "" || o.List("l") == nil || o.List("s") != nil || o.Obj("o") == nil || o.Obj("l") != nil {
		t.Error("typed accessors")
	}
	if v, ok := o.Lookup("z"); !ok || v != nil || !o.Has("z") || o.Has("missing") {
		t.Error("a null value is a present key")
	}
}

func TestSetDelete(t *testing.T) {
	var o Object
	o.Set("b", 1)
	o.Set("a", 2)
	o.Set("b", 3) // in place
	keys := o.Keys()
	o.Delete("b")
	o.Delete("missing")
	o.Set("c", 4)
	if got := o.Keys(); !reflect.DeepEqual(got, []string{"a", "c"}) || o.Get("b") != nil || o.Get("c") != 4 {
		t.Errorf("keys %v", got)
	}
	if !reflect.DeepEqual(keys, []string{"b", "a"}) {
		t.Errorf("Delete changed a slice Keys returned before: %v", keys)
	}
}

func TestMarshalJSON(t *testing.T) {
	in := `{"z":1,"a":{"y":[true,null,"<b>&"],"b":{}},"m":12345678901234567890}`
	v, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	// json.Marshal escapes HTML in what a marshaler returns; the object's
	// own output does not.
	own, err := v.(*Object).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(own) != in {
		t.Errorf("MarshalJSON:\n got %s\nwant %s", own, in)
	}
	if !strings.HasPrefix(string(out), `{"z":1,"a":{"y":`) {
		t.Errorf("json.Marshal does not keep the order: %s", out)
	}
}
