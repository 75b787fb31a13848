package gitops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// jsonObject is a JSON object that keeps its keys in document order, so that
// changes list fields in the order the model declares them, and From/To
// values marshal back the way they were written.
type jsonObject struct {
	keys []string
	vals map[string]any
}

// MarshalJSON writes the object with its keys in order.
func (o *jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// normalize turns a model value into plain JSON values: *jsonObject, []any,
// string, json.Number, bool and nil, through the model's JSON tags (so
// defaults, omitempty and durations read as the loader resolved them).
func normalize(v any) (any, error) {
	data, err := marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	out, err := decodeValue(dec)
	if err != nil {
		return nil, fmt.Errorf("normalizing %T: %w", v, err)
	}
	return out, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &jsonObject{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := o.vals[k]; !dup {
					o.keys = append(o.keys, k)
				}
				o.vals[k] = v
			}
			_, err := dec.Token() // }
			return o, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token() // ]
			return list, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}

// equal compares two normalized values.
func equal(a, b any) bool {
	switch x := a.(type) {
	case *jsonObject:
		y, ok := b.(*jsonObject)
		if !ok || len(x.vals) != len(y.vals) {
			return false
		}
		for k, v := range x.vals {
			w, ok := y.vals[k]
			if !ok || !equal(v, w) {
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
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, errx := x.Float64()
		fy, erry := y.Float64()
		return errx == nil && erry == nil && fx == fy
	}
	return reflect.DeepEqual(a, b)
}

// compareValues appends the changes from a to b below path. Objects are
// compared key by key (keys of a first, in order, then keys only b has);
// lists and scalars as whole values.
func compareValues(out []Change, path string, a, b any) []Change {
	oa, aok := a.(*jsonObject)
	ob, bok := b.(*jsonObject)
	if aok && bok {
		for _, k := range oa.keys {
			if w, ok := ob.vals[k]; ok {
				out = compareValues(out, joinPath(path, k), oa.vals[k], w)
			} else if oa.vals[k] != nil {
				out = append(out, Change{Path: joinPath(path, k), Kind: KindRemoved, From: oa.vals[k]})
			}
		}
		for _, k := range ob.keys {
			if _, ok := oa.vals[k]; !ok && ob.vals[k] != nil {
				out = append(out, Change{Path: joinPath(path, k), Kind: KindAdded, To: ob.vals[k]})
			}
		}
		return out
	}
	if equal(a, b) {
		return out
	}
	switch {
	case a == nil:
		return append(out, Change{Path: path, Kind: KindAdded, To: b})
	case b == nil:
		return append(out, Change{Path: path, Kind: KindRemoved, From: a})
	}
	return append(out, Change{Path: path, Kind: KindChanged, From: a, To: b})
}

var identRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$-]*$`)

// joinPath appends a key to a change path: a.b, or a["x.y"] for keys that
// are not plain names.
func joinPath(path, key string) string {
	if !identRE.MatchString(key) {
		q, _ := marshal(key)
		return path + "[" + string(q) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// render writes a value compactly for text and markdown, cut at max runes.
func render(v any, max int) string {
	b, err := marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if max > 0 {
		if r := []rune(s); len(r) > max {
			s = string(r[:max-1]) + "…"
		}
	}
	return strings.ReplaceAll(s, "\n", `\n`)
}
