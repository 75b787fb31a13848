package jsonvalue

import (
	"encoding/json"
	"testing"

	"github.com/databus-gateway/databus/internal/orderedjson"
)

func TestEqual(t *testing.T) {
	ordered := func(s string) any {
		v, err := orderedjson.Decode([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		a, b any
		want bool
	}{
		{"int and float", 1, 1.0, true},
		{"int and json.Number", 2, json.Number("2.0"), true},
		{"json.Number exponent", json.Number("1e2"), json.Number("100"), true},
		{"big integers exactly", json.Number("9007199254740993"), json.Number("9007199254740992"), false},
		{"different numbers", 1, 1.5, false},
		{"number and string", 1, "1", false},
		{"not a number, the same text", json.Number("x"), json.Number("x"), true},
		{"not a number", json.Number("x"), json.Number("y"), false},
		{"key order", map[string]any{"a": 1, "b": []any{1, "x"}}, map[string]any{"b": []any{1.0, "x"}, "a": json.Number("1")}, true},
		{"missing key", map[string]any{"a": 1}, map[string]any{"b": 1}, false},
		{"array order", []any{1, 2}, []any{2, 1}, false},
		{"ordered objects", ordered(`{"a":1,"b":{"c":[1.0]}}`), ordered(`{"b":{"c":[1]},"a":1.00}`), true},
		{"ordered and plain", ordered(`{"a":1}`), map[string]any{"a": 1}, false},
		{"nil", nil, nil, true},
		{"bool", true, false, false},
	} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: Equal(%v, %v) = %v", tc.name, tc.a, tc.b, got)
		}
	}
}
