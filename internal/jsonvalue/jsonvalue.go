// Package jsonvalue compares decoded JSON values as JSON means them:
// objects whatever the order of their keys, numbers by value (1 equals
// 1.0, exactly: no number loses precision on the way).
//
// It takes the shapes Databus decodes JSON into: map[string]any and
// *orderedjson.Object objects, []any arrays, json.Number, int, int64 and
// float64 numbers, strings, bools and nil.
package jsonvalue

import (
	"encoding/json"
	"math"
	"math/big"
	"reflect"

	"github.com/databus-gateway/databus/internal/orderedjson"
)

// Equal reports whether a and b are the same JSON value.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	case *orderedjson.Object:
		y, ok := b.(*orderedjson.Object)
		if !ok || x.Len() != y.Len() {
			return false
		}
		for _, k := range x.Keys() {
			w, ok := y.Lookup(k)
			if !ok || !Equal(x.Get(k), w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if na, ok := number(a); ok {
		nb, ok := number(b)
		return ok && na.Cmp(nb) == 0
	}
	return reflect.DeepEqual(a, b)
}

// SameNumber reports whether two JSON numbers have the same value.
func SameNumber(a, b json.Number) bool {
	return a == b || Equal(a, b)
}

// number reads a number exactly; ok false for anything else (and for a
// json.Number that is not one, or a float that is not finite).
func number(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case json.Number:
		return new(big.Rat).SetString(string(x))
	case int:
		return new(big.Rat).SetInt64(int64(x)), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		return new(big.Rat).SetFloat64(x), true
	}
	return nil, false
}
