package expr

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/itchyny/gojq"
)

// HugeRange is the number of values a constant `range` may produce before
// Lint warns: building an array of them takes more than the default time
// budget and hundreds of MB.
const HugeRange = 10_000_000

// Lint reports what can be told statically about a program that compiles
// but cannot finish under the jq budget: a function that calls itself on
// every path (`def f: f;`, `def f: [f];`) and `range` over a huge constant.
// The findings are warnings: the budget stops such programs at run time.
func Lint(src string) []string {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil
	}
	var out []string
	walk(reflect.ValueOf(q), func(v any) {
		switch n := v.(type) {
		case *gojq.FuncDef:
			if callsItself(n) && !mayStop(n.Body) {
				out = append(out, fmt.Sprintf("def %s calls itself on every path (no if, try, //, and, or, a comma, ?, select, empty, error or limit lets it stop): every evaluation runs until the jq budget (gateway.jq) stops it", n.Name))
			}
		case *gojq.Func:
			if n.Name == "range" {
				if c, ok := rangeCount(n.Args); ok && c > HugeRange {
					out = append(out, fmt.Sprintf("%s produces %.0f values (more than %d): the evaluation will likely be stopped by the jq budget (gateway.jq)", n, c, HugeRange))
				}
			}
		}
	})
	return out
}

// Warnings returns the Lint findings of every interpolation of t.
func (t *Template) Warnings() []string {
	var out []string
	for _, p := range t.parts {
		if p.prog != nil {
			for _, w := range Lint(p.prog.src) {
				out = append(out, "${"+p.prog.src+"}: "+w)
			}
		}
	}
	return out
}

// walk calls visit with every node of gojq's syntax tree below v
// (pointers to its structs), parents first.
func walk(v reflect.Value, visit func(any)) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Elem().Kind() == reflect.Struct {
			visit(v.Interface())
		}
		walk(v.Elem(), visit)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				walk(v.Field(i), visit)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), visit)
		}
	}
}

// callsItself reports whether d's body calls d (same name and arity).
func callsItself(d *gojq.FuncDef) bool {
	found := false
	walk(reflect.ValueOf(d.Body), func(v any) {
		if f, ok := v.(*gojq.Func); ok && f.Name == d.Name && len(f.Args) == len(d.Args) {
			found = true
		}
	})
	return found
}

// stoppers are builtins through which a recursion can end or be cut short.
var stoppers = map[string]bool{
	"select": true, "empty": true, "error": true, "limit": true, "first": true, "until": true,
	"while": true, "halt": true, "halt_error": true, "isempty": true, "last": true, "nth": true,
}

// mayStop reports whether q holds any construct that can end a recursion:
// a branch, an alternative, an error handler, a generator's other outputs
// or a builtin that filters or cuts short.
func mayStop(q *gojq.Query) bool {
	stop := false
	walk(reflect.ValueOf(q), func(v any) {
		switch n := v.(type) {
		case *gojq.Query:
			switch n.Op {
			case gojq.OpComma, gojq.OpAlt, gojq.OpAnd, gojq.OpOr, gojq.OpUpdateAlt:
				stop = true
			}
		case *gojq.Term:
			if n.If != nil || n.Try != nil || n.Reduce != nil || n.Foreach != nil || n.Label != nil || n.Type == gojq.TermTypeBreak {
				stop = true
			}
		case *gojq.Suffix:
			if n.Optional {
				stop = true
			}
		case *gojq.Func:
			if stoppers[n.Name] {
				stop = true
			}
		}
	})
	return stop
}

// rangeCount is how many values range(args) yields when every argument is a
// number literal.
func rangeCount(args []*gojq.Query) (float64, bool) {
	nums := make([]float64, len(args))
	for i, a := range args {
		n, ok := constNumber(a)
		if !ok {
			return 0, false
		}
		nums[i] = n
	}
	start, end, step := 0.0, 0.0, 1.0
	switch len(nums) {
	case 1:
		end = nums[0]
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, end, step = nums[0], nums[1], nums[2]
	default:
		return 0, false
	}
	if step == 0 {
		return 0, false
	}
	c := (end - start) / step
	if c < 0 {
		return 0, true
	}
	return c, true
}

func constNumber(q *gojq.Query) (float64, bool) {
	if q == nil || q.Term == nil || q.Left != nil || len(q.FuncDefs) > 0 {
		return 0, false
	}
	t := q.Term
	sign := 1.0
	if t.Type == gojq.TermTypeUnary && t.Unary != nil && t.Unary.Op == gojq.OpSub {
		sign, t = -1, t.Unary.Term
	}
	if t.Type != gojq.TermTypeNumber || len(t.SuffixList) > 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(t.Number, 64)
	return sign * f, err == nil
}
