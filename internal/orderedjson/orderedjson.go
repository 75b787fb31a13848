// Package orderedjson decodes JSON into plain values whose objects remember
// the order of their keys, for output that follows the document: the
// configuration reference lists keys in schema order, and a diff lists
// fields in the order the model declares them.
//
// A decoded value is an *Object, []any, string, json.Number, bool or nil.
// Numbers stay json.Number, so that none loses precision.
package orderedjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Object is a JSON object that keeps its keys in the order they were
// written (or set). The zero value is an empty object; a nil *Object reads
// as an empty one.
type Object struct {
	keys []string
	vals map[string]any
}

// Keys returns the keys in order. The slice is the object's own: do not
// change it.
func (o *Object) Keys() []string {
	if o == nil {
		return nil
	}
	return o.keys
}

// Len is the number of keys.
func (o *Object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.keys)
}

// Lookup returns the value of k and whether o has k.
func (o *Object) Lookup(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[k]
	return v, ok
}

// Has reports whether o has key k.
func (o *Object) Has(k string) bool {
	_, ok := o.Lookup(k)
	return ok
}

// Get returns the value of k (nil when o has no k).
func (o *Object) Get(k string) any {
	v, _ := o.Lookup(k)
	return v
}

// Obj returns the value of k when it is an object, else nil.
func (o *Object) Obj(k string) *Object {
	v, _ := o.Get(k).(*Object)
	return v
}

// Str returns the value of k when it is a string, else "".
func (o *Object) Str(k string) string {
	v, _ := o.Get(k).(string)
	return v
}

// List returns the value of k when it is an array, else nil.
func (o *Object) List(k string) []any {
	v, _ := o.Get(k).([]any)
	return v
}

// Set gives k the value v: in place when o has k, else as its last key.
func (o *Object) Set(k string, v any) {
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// Delete removes k.
func (o *Object) Delete(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

// MarshalJSON writes the object with its keys in order. Strings are not
// HTML-escaped: the output is shown as written, not embedded in HTML.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.Keys() {
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

// ErrDuplicateKey is wrapped by the error of a document in which an object
// has the same key twice: which of the two values was meant is unknowable.
var ErrDuplicateKey = errors.New("duplicate key")

// Decode decodes b, which must hold exactly one JSON value.
func Decode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

// DecodeObject decodes b, which must hold exactly one JSON object.
func DecodeObject(b []byte) (*Object, error) {
	v, err := Decode(b)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return o, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &Object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder only yields string keys
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			if o.Has(k) {
				return nil, fmt.Errorf("%w %q", ErrDuplicateKey, k)
			}
			o.Set(k, v)
		}
		_, err := dec.Token() // '}'
		return o, err
	case '[':
		l := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token() // ']'
		return l, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}
