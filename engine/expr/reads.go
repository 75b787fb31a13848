package expr

import (
	"strconv"

	"github.com/itchyny/gojq"
)

// ReadsRequest reports whether the program may read the request part of
// the invocation document: `.request...` on the document, `$request`, or
// the document as a whole (`.`, `keys`, `tojson`, `..`, a binding of it).
// It is decided once, at compile time, from the program's syntax, and errs
// towards true: false means no run of the program can tell whether the
// document has a request part, so the flow need not build one for it (the
// headers map, the decoded body).
func (p *Program) ReadsRequest() bool { return p.readsRequest }

// readsRequest walks a parsed program. jq has no way back from a value to
// the value it came from, so once a subexpression's input is not the
// document (it is `.steps.x`, a literal, ...), nothing below it can reach
// the request except through `$request` or a variable bound to the
// document, which the walk treats as a read.
func readsRequest(q *gojq.Query) bool {
	var r reads
	if r.query(q, true) {
		r.request = true // the program outputs the document itself
	}
	return r.request
}

type reads struct{ request bool }

// query walks q, whose input is the document when root is set, and
// reports whether its output may be the document.
func (r *reads) query(q *gojq.Query, root bool) bool {
	if q == nil {
		return false
	}
	if q.Meta != nil || len(q.Imports) > 0 || len(q.FuncDefs) > 0 {
		// A def's body runs on whatever its caller's input is: not followed.
		r.request = true
	}
	if q.Term != nil {
		return r.term(q.Term, root)
	}
	switch q.Op {
	case gojq.OpPipe:
		if len(q.Patterns) > 0 { // Left as $x | Right: Right sees the same input
			if r.query(q.Left, root) {
				r.request = true // the document bound to a variable
			}
			return r.query(q.Right, root)
		}
		return r.query(q.Right, r.query(q.Left, root))
	case gojq.OpComma, gojq.OpAlt:
		l := r.query(q.Left, root)
		return r.query(q.Right, root) || l
	case gojq.OpAssign, gojq.OpModify, gojq.OpUpdateAdd, gojq.OpUpdateSub, gojq.OpUpdateMul,
		gojq.OpUpdateDiv, gojq.OpUpdateMod, gojq.OpUpdateAlt:
		if r.query(q.Left, root) || r.query(q.Right, root) {
			r.request = true
		}
		return root // the updated input
	}
	// Arithmetic, comparison, and/or: the operands are consumed as values.
	if r.query(q.Left, root) || r.query(q.Right, root) {
		r.request = true
	}
	return false
}

// consume walks q and counts it as a read when it may output the document
// (the document used as a value: in an array, an object, a string).
func (r *reads) consume(q *gojq.Query, root bool) {
	if r.query(q, root) {
		r.request = true
	}
}

func (r *reads) term(t *gojq.Term, root bool) bool {
	var out bool
	switch t.Type {
	case gojq.TermTypeIdentity:
		out = root
	case gojq.TermTypeRecurse:
		if root {
			r.request = true
		}
	case gojq.TermTypeFormat:
		if t.Str != nil { // @base64 "...\(x)": the format applies to x
			r.str(t.Str, root)
		} else if root {
			r.request = true
		}
	case gojq.TermTypeIndex:
		out = r.index(t.Index, root, root)
	case gojq.TermTypeFunc:
		out = r.fn(t.Func, root)
	case gojq.TermTypeObject:
		for _, kv := range t.Object.KeyVals {
			r.keyVal(kv, root)
		}
	case gojq.TermTypeArray:
		if t.Array != nil {
			r.consume(t.Array.Query, root)
		}
	case gojq.TermTypeUnary:
		if r.term(t.Unary.Term, root) {
			r.request = true
		}
	case gojq.TermTypeString:
		r.str(t.Str, root)
	case gojq.TermTypeIf:
		r.consume(t.If.Cond, root)
		out = r.query(t.If.Then, root)
		for _, e := range t.If.Elif {
			r.consume(e.Cond, root)
			out = r.query(e.Then, root) || out
		}
		if t.If.Else == nil {
			out = out || root // no else: the input passes through
		} else {
			out = r.query(t.If.Else, root) || out
		}
	case gojq.TermTypeTry:
		out = r.query(t.Try.Body, root)
		if t.Try.Catch != nil {
			r.query(t.Try.Catch, false) // its input is the error's value
		}
	case gojq.TermTypeReduce:
		r.consume(t.Reduce.Query, root)
		r.consume(t.Reduce.Start, root)
		r.query(t.Reduce.Update, false)
	case gojq.TermTypeForeach:
		r.consume(t.Foreach.Query, root)
		r.consume(t.Foreach.Start, root)
		r.query(t.Foreach.Update, false)
		r.query(t.Foreach.Extract, false)
	case gojq.TermTypeLabel:
		out = r.query(t.Label.Body, root)
	case gojq.TermTypeQuery:
		out = r.query(t.Query, root)
	case gojq.TermTypeNull, gojq.TermTypeTrue, gojq.TermTypeFalse, gojq.TermTypeNumber, gojq.TermTypeBreak:
	default:
		r.request = true // a kind of term this walk does not know
	}
	for _, s := range t.SuffixList {
		switch {
		case s.Index != nil:
			out = r.index(s.Index, out, root || out)
		case s.Iter:
			if out {
				r.request = true
			}
			out = false
		}
	}
	return out
}

// index walks an index of cur (the document when cur is set); its
// expressions see in (the document when in is set).
func (r *reads) index(x *gojq.Index, cur, in bool) bool {
	if x.Str != nil {
		r.str(x.Str, in)
	}
	r.consume(x.Start, in)
	r.consume(x.End, in)
	if !cur {
		return false
	}
	switch {
	case x.Name != "" && x.Start == nil && x.Str == nil:
		if x.Name == "request" {
			r.request = true
		}
	case x.Str != nil && len(x.Str.Queries) == 0 && x.Start == nil:
		if x.Str.Str == "request" {
			r.request = true
		}
	default:
		r.request = true // a computed key or a slice of the document
	}
	return false
}

func (r *reads) str(s *gojq.String, root bool) {
	for _, q := range s.Queries {
		r.consume(q, root)
	}
}

func (r *reads) keyVal(kv *gojq.ObjectKeyVal, root bool) {
	if kv.KeyString != nil {
		r.str(kv.KeyString, root)
	}
	r.consume(kv.KeyQuery, root)
	if kv.Val != nil {
		r.consume(kv.Val, root)
		return
	}
	// {name} is {name: .name}, {$x} is {x: $x}.
	switch {
	case kv.Key == "$request":
		r.request = true
	case len(kv.Key) > 0 && kv.Key[0] == '$':
	case root && (kv.Key == "request" || kv.Key == ""):
		r.request = true
	}
}

// inputFree are the functions (name/arity) that, called on the document,
// read nothing of it: their output comes from their arguments (run on the
// same input), or, for select, is the input itself.
var inputFree = map[string]bool{
	"empty/0": true, "not/0": true, "now/0": true, "error/1": true,
	"range/1": true, "range/2": true, "range/3": true,
	"first/1": true, "last/1": true, "limit/2": true, "select/1": true,
}

func (r *reads) fn(f *gojq.Func, root bool) bool {
	if f.Name == "$request" {
		r.request = true
		return false
	}
	if len(f.Name) > 0 && f.Name[0] == '$' {
		return false // $steps, $vars, $traceId, $__loc__, a bound variable
	}
	out := false
	for _, a := range f.Args {
		out = r.query(a, root) || out
	}
	if !root {
		return false
	}
	switch {
	case !inputFree[f.Name+"/"+strconv.Itoa(len(f.Args))]:
		r.request = true
		return false
	case f.Name == "select":
		return true
	case f.Name == "first" || f.Name == "last" || f.Name == "limit":
		return out
	}
	if out {
		r.request = true // error(.), range(.): the document as a value
	}
	return false
}
