package gitops

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/databus-gateway/databus/internal/jsonvalue"
	"github.com/databus-gateway/databus/internal/orderedjson"
)

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

// normalize turns a model value into plain JSON values:
// *orderedjson.Object, []any, string, json.Number, bool and nil, through
// the model's JSON tags (so defaults, omitempty and durations read as the
// loader resolved them). Objects keep their keys in order, so that changes
// list fields in the order the model declares them, and From/To values
// marshal back the way they were written.
func normalize(v any) (any, error) {
	data, err := marshal(v)
	if err != nil {
		return nil, err
	}
	out, err := orderedjson.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("normalizing %T: %w", v, err)
	}
	return out, nil
}

// compareValues appends the changes from a to b below path. Objects are
// compared key by key (keys of a first, in order, then keys only b has);
// lists and scalars as whole values.
func compareValues(out []Change, path string, a, b any) []Change {
	oa, aok := a.(*orderedjson.Object)
	ob, bok := b.(*orderedjson.Object)
	if aok && bok {
		for _, k := range oa.Keys() {
			if w, ok := ob.Lookup(k); ok {
				out = compareValues(out, joinPath(path, k), oa.Get(k), w)
			} else if oa.Get(k) != nil {
				out = append(out, Change{Path: joinPath(path, k), Kind: KindRemoved, From: oa.Get(k)})
			}
		}
		for _, k := range ob.Keys() {
			if !oa.Has(k) && ob.Get(k) != nil {
				out = append(out, Change{Path: joinPath(path, k), Kind: KindAdded, To: ob.Get(k)})
			}
		}
		return out
	}
	if jsonvalue.Equal(a, b) {
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
