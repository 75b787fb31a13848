package replay

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"

	"github.com/databus-gateway/databus/internal/jsonvalue"
)

// Change is one difference between two JSON values.
type Change struct {
	Path      string          `json:"path"` // jq-style: .a.b[2]; "." is the whole value
	Op        string          `json:"op"`   // added | removed | changed
	Recorded  json.RawMessage `json:"recorded,omitempty"`
	Candidate json.RawMessage `json:"candidate,omitempty"`
}

// Change ops.
const (
	OpAdded   = "added"
	OpRemoved = "removed"
	OpChanged = "changed"
)

// maxChanges bounds the changes one diff lists; maxValue the bytes of a
// value shown in a change.
const (
	maxChanges = 20
	maxValue   = 200
)

// DiffJSON compares two JSON documents structurally: object keys in any
// order, numbers by value. It returns at most maxChanges changes and how
// many there were in all. A document that is not JSON compares as a
// string.
func DiffJSON(recorded, candidate []byte) (changes []Change, total int) {
	a, b := decode(recorded), decode(candidate)
	d := &differ{}
	d.walk(".", a, b)
	return d.out, d.total
}

func decode(b []byte) any {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return string(b)
	}
	return v
}

type differ struct {
	out   []Change
	total int
}

func (d *differ) add(path, op string, a, b any, hasA, hasB bool) {
	d.total++
	if len(d.out) >= maxChanges {
		return
	}
	c := Change{Path: path, Op: op}
	if hasA {
		c.Recorded = show(a)
	}
	if hasB {
		c.Candidate = show(b)
	}
	d.out = append(d.out, c)
}

// show is v as JSON, cut to maxValue bytes (then as a JSON string).
func show(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`null`)
	}
	if len(b) > maxValue {
		s, _ := json.Marshal(string(b[:maxValue]) + "…")
		return s
	}
	return b
}

func child(path, key string) string {
	if path == "." {
		path = ""
	}
	if isIdent(key) {
		return path + "." + key
	}
	q, _ := json.Marshal(key)
	return path + "[" + string(q) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (d *differ) walk(path string, a, b any) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			d.add(path, OpChanged, a, b, true, true)
			return
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, inA := x[k]
			bv, inB := y[k]
			switch {
			case !inB:
				d.add(child(path, k), OpRemoved, av, nil, true, false)
			case !inA:
				d.add(child(path, k), OpAdded, nil, bv, false, true)
			default:
				d.walk(child(path, k), av, bv)
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok {
			d.add(path, OpChanged, a, b, true, true)
			return
		}
		if path == "." {
			path = ""
		}
		for i := 0; i < max(len(x), len(y)); i++ {
			p := path + "[" + strconv.Itoa(i) + "]"
			switch {
			case i >= len(y):
				d.add(p, OpRemoved, x[i], nil, true, false)
			case i >= len(x):
				d.add(p, OpAdded, nil, y[i], false, true)
			default:
				d.walk(p, x[i], y[i])
			}
		}
	case json.Number:
		y, ok := b.(json.Number)
		if !ok || !jsonvalue.SameNumber(x, y) {
			d.add(path, OpChanged, a, b, true, true)
		}
	default: // string, bool, nil
		if a != b {
			d.add(path, OpChanged, a, b, true, true)
		}
	}
}
