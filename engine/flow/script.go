package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/dop251/goja"

	"github.com/databus-gateway/databus/engine/config"
)

// scriptStep runs a JavaScript main(ctx). The program is compiled once;
// every run gets a fresh runtime that runs the top level and then main, so
// no request can leave state behind for the next one: not in globals, not
// in built-in prototypes, not in closures or top-level let/const bindings.
// (Freezing a pooled runtime's global object cannot reach closures or the
// global lexical scope, and goja does not list its lazily created built-ins
// among the global object's properties.) A goja runtime creates its
// built-ins lazily, so a fresh one costs microseconds.
type scriptStep struct {
	prog    *goja.Program
	timeout time.Duration
}

var errNoMain = errors.New("script must define a function main(ctx)")

func compileScript(cs *config.Step) (*scriptStep, error) {
	prog, err := goja.Compile(cs.ID, cs.Script.Source, false)
	if err != nil {
		return nil, err
	}
	s := &scriptStep{prog: prog, timeout: cs.Script.Timeout.D()}
	if s.timeout == 0 {
		s.timeout = time.Second
	}
	// Fail at compile time, not on the first request, if the top level
	// throws or main is missing. Bound it like a request.
	rt := goja.New()
	timer := time.AfterFunc(time.Second, func() { rt.Interrupt("top level took longer than 1s") })
	defer timer.Stop()
	if _, err := s.load(rt); err != nil {
		return nil, topLevelError(cs.ID, err)
	}
	return s, nil
}

// scriptError is a fault of a script's top level, with its place in the
// source when goja knows it.
type scriptError struct {
	line, column int
	err          error
}

func (e *scriptError) Error() string { return e.err.Error() }
func (e *scriptError) Unwrap() error { return e.err }

// topLevelError places a top-level fault at the innermost frame of the
// script itself (named after its step), and words it without goja's stack.
func topLevelError(name string, err error) error {
	se := &scriptError{err: err}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		se.err = fmt.Errorf("script top level throws: %s", ex.Value().String())
		for _, f := range ex.Stack() {
			if f.SrcName() == name {
				p := f.Position()
				se.line, se.column = p.Line, p.Column
				break
			}
		}
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		se.err = fmt.Errorf("script top level did not finish within 1s")
	}
	return se
}

// load runs the top level in rt and returns main.
func (s *scriptStep) load(rt *goja.Runtime) (goja.Callable, error) {
	rt.SetFieldNameMapper(goja.TagFieldNameMapper("json", true))
	if _, err := rt.RunProgram(s.prog); err != nil {
		return nil, fmt.Errorf("script top level: %w", err)
	}
	main, ok := goja.AssertFunction(rt.Get("main"))
	if !ok {
		return nil, errNoMain
	}
	return main, nil
}

func (s *scriptStep) run(ctx context.Context, inv *Invocation, st *step, res *StepResult) (*Output, *rawResult, error) {
	res.Attempts = 1
	doc, err := inv.Doc()
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rt := goja.New()
	stop := context.AfterFunc(sctx, func() { rt.Interrupt(sctx.Err()) })
	var v goja.Value
	main, err := s.load(rt)
	if err == nil {
		v, err = main(goja.Undefined(), rt.ToValue(toJS(doc)))
	}
	stopped := !stop()
	if err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) || stopped {
			if ctx.Err() != nil {
				return nil, nil, &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q: request cancelled", st.id), Step: st.id, Err: err}
			}
			return nil, nil, &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q: script timed out after %s", st.id, s.timeout), Step: st.id, Err: err}
		}
		msg := err.Error()
		var ex *goja.Exception
		if errors.As(err, &ex) {
			msg = ex.Value().String()
		}
		return nil, nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q: script error: %s", st.id, msg), Step: st.id, Err: err}
	}
	out, cerr := fromJS(v)
	if cerr != nil {
		return nil, nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q: script result: %v", st.id, cerr), Step: st.id, Err: cerr}
	}
	res.Response = out
	o := ValueOutput(out)
	return o, &rawResult{status: http.StatusOK, body: o}, nil
}

// toJS converts the invocation document into plain values goja maps to
// native objects: json.Number becomes a float64 (or stays a string when it
// does not fit one exactly).
func toJS(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = toJS(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = toJS(e)
		}
		return a
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	}
	return v
}

// fromJS exports a script's return value as JSON-shaped Go values.
func fromJS(v goja.Value) (any, error) {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil, nil
	}
	return normalize(v.Export(), 0)
}

func normalize(v any, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("value nested deeper than 64 levels")
	}
	switch x := v.(type) {
	case nil, bool, string:
		return x, nil
	case int64:
		if x >= math.MinInt && x <= math.MaxInt {
			return int(x), nil
		}
		return json.Number(strconv.FormatInt(x, 10)), nil
	case int:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, nil // JSON.stringify turns them into null too
		}
		return x, nil
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if isFunc(e) {
				continue // as JSON.stringify does
			}
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[k] = n
		}
		return m, nil
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			a[i] = n
		}
		return a, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	if isFunc(v) {
		return nil, nil // JSON.stringify gives undefined, or null in an array
	}
	// Anything else (symbols, typed arrays): through JSON.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("return value is not JSON: %v", err)
	}
	return decodeBody(b), nil
}

func isFunc(v any) bool {
	return v != nil && reflect.TypeOf(v).Kind() == reflect.Func
}
