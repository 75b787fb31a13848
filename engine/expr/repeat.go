package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"

	"github.com/itchyny/gojq"
)

// MaxRepeatBytes bounds the string `s * n` (or `n * s`) may build. gojq
// builds it in one builtin call, up to 2 GiB, which the jq budget's heap
// guard cannot interrupt (it stops a program between steps): a program or
// an assertion of a change under review could take the process down with
// one multiplication.
const MaxRepeatBytes = 16 << 20

// mulFunc is what every `*` of a program calls instead of gojq's own
// multiplication: it refuses a string repetition beyond MaxRepeatBytes
// and multiplies everything else as gojq does.
const mulFunc = "_databus_multiply"

// updateMulTemplate is `l *= r` as jq defines it (r is evaluated against
// the input, then each path of l updated), with mulFunc for the product.
const updateMulTemplate = `(__databus_r) as $__databus_mul | __databus_l |= ` + mulFunc + `(.; $__databus_mul)`

// guardMultiply rewrites every `a * b` of q into mulFunc(a; b), and every
// `a *= b` into updateMulTemplate.
func guardMultiply(q *gojq.Query) {
	walk(reflect.ValueOf(q), func(v any) {
		n, ok := v.(*gojq.Query)
		if !ok {
			return
		}
		switch n.Op {
		case gojq.OpMul:
			l, r := n.Left, n.Right
			n.Left, n.Right, n.Op = nil, nil, 0
			n.Term = &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: mulFunc, Args: []*gojq.Query{l, r}}}
		case gojq.OpUpdateMul:
			l, r := n.Left, n.Right
			t, err := gojq.Parse(updateMulTemplate)
			if err != nil {
				panic(err) // a constant
			}
			fill(t, "__databus_l", l)
			fill(t, "__databus_r", r)
			n.Term, n.Left, n.Right, n.Op, n.Patterns = t.Term, t.Left, t.Right, t.Op, t.Patterns
		}
	})
}

// fill replaces the query that is only a call of placeholder with q.
func fill(t *gojq.Query, placeholder string, q *gojq.Query) {
	walk(reflect.ValueOf(t), func(v any) {
		n, ok := v.(*gojq.Query)
		if ok && n.Left == nil && n.Right == nil && n.Term != nil && n.Term.Type == gojq.TermTypeFunc &&
			n.Term.Func.Name == placeholder && len(n.Term.SuffixList) == 0 {
			*n = *q
		}
	})
}

// gojqMul is gojq's own multiplication, for everything mulFunc lets pass.
var gojqMul = func() *gojq.Code {
	q, err := gojq.Parse(`.[0] * .[1]`)
	if err != nil {
		panic(err)
	}
	c, err := gojq.Compile(q)
	if err != nil {
		panic(err)
	}
	return c
}()

func multiply(_ any, args []any) any {
	l, r := args[0], args[1]
	// Numbers, as gojq multiplies them, without running its program.
	switch x := l.(type) {
	case int:
		switch y := r.(type) {
		case int:
			if v := x * y; y != -1 && (y == 0 || v/y == x) {
				return v
			}
		case float64:
			return float64(x) * y
		}
	case float64:
		switch y := r.(type) {
		case int:
			return x * float64(y)
		case float64:
			return x * y
		}
	}
	if s, ok := l.(string); ok {
		if err := repeatBound(s, r); err != nil {
			return err
		}
	}
	if s, ok := r.(string); ok {
		if err := repeatBound(s, l); err != nil {
			return err
		}
	}
	v, _ := gojqMul.Run([]any{l, r}).Next()
	return v
}

// repeatBound refuses s repeated n times when it passes MaxRepeatBytes.
func repeatBound(s string, n any) error {
	var f float64
	switch x := n.(type) {
	case int:
		f = float64(x)
	case float64:
		f = x
	case *big.Int:
		f, _ = new(big.Float).SetInt(x).Float64()
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return nil
		}
	default:
		return nil
	}
	if f <= 0 || math.IsNaN(f) {
		return nil
	}
	if size := float64(len(s)) * math.Min(f, math.MaxInt32); size > MaxRepeatBytes {
		return fmt.Errorf("string repetition too large: %.0f bytes (at most %d)", size, MaxRepeatBytes)
	}
	return nil
}
