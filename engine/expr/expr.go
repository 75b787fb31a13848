// Package expr compiles and runs the jq programs of a Databus configuration:
// transforms, `when` conditions, poll conditions and `${...}` interpolations.
//
// Programs are compiled once per reload and run many times; a compiled
// Program is safe for concurrent use.
package expr

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/itchyny/gojq"
)

// Error is a compile error of a jq program. Offset is the byte offset inside
// the program text where the error was found, or -1 when unknown.
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("jq: %s (at offset %d)", e.Msg, e.Offset)
	}
	return "jq: " + e.Msg
}

// Program is a compiled jq program.
type Program struct {
	src  string
	code *gojq.Code
	// readsRequest: the program may read the document's request part
	// (ReadsRequest).
	readsRequest bool
	place        string  // where the program stands in the configuration; "" unknown
	budget       *Budget // nil: bounded by the caller's context only
}

// Place is where the program stands in the configuration ("" unknown).
func (p *Program) Place() string { return p.place }

// Bind returns a copy of p that runs under b and names place (e.g.
// "apis/x.yaml:12: transforms.response") when the budget stops it.
func (p *Program) Bind(place string, b *Budget) *Program {
	c := *p
	c.place, c.budget = place, b
	return &c
}

// Variables are bound in every program to the parts of the invocation
// document, so that a step's response transform, whose input is the raw
// result, can still read the request: `{id: .body.id, no: $request.body.orderNo}`.
var Variables = []string{"$request", "$steps", "$traceId", "$vars"}

// noEnviron keeps the gateway's process environment (which holds secrets)
// out of reach of `env` and `$ENV` in operator-written programs.
func noEnviron() []string { return nil }

// Compile parses and compiles a jq program.
func Compile(src string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Offset: 0, Msg: "empty program"}
	}
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			// gojq's offset is just past the offending token: point at
			// its start instead.
			msg, off := "syntax error: unexpected end of program", pe.Offset
			if pe.Token != "" {
				msg = fmt.Sprintf("syntax error near %q", pe.Token)
				off = max(0, pe.Offset-len(pe.Token))
			}
			return nil, &Error{Offset: min(off, len(src)), Msg: msg}
		}
		return nil, &Error{Offset: -1, Msg: err.Error()}
	}
	reads := readsRequest(q)
	guardMultiply(q)
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(noEnviron), gojq.WithVariables(Variables),
		gojq.WithFunction(mulFunc, 2, 2, multiply))
	if err != nil {
		return nil, &Error{Offset: -1, Msg: err.Error()}
	}
	return &Program{src: src, code: code, readsRequest: reads}, nil
}

// Source returns the program text.
func (p *Program) Source() string { return p.src }

// ErrNoOutput is returned by Run when a program yields no value.
var ErrNoOutput = errors.New("jq: program produced no output")

// Run evaluates the program over input and returns its first output. doc is
// the invocation document whose request, steps, traceId and vars are bound
// to the program's variables; it may be nil. The context cancels a
// long-running program; so does the program's Budget, with a *BudgetError.
func (p *Program) Run(ctx context.Context, input any, doc map[string]any) (any, error) {
	ctx, e := p.budget.start(ctx)
	iter := p.code.RunWithContext(ctx, input, doc["request"], doc["steps"], doc["traceId"], doc["vars"])
	v, ok := iter.Next()
	if !ok {
		e.end(nil)
		return nil, ErrNoOutput
	}
	err, isErr := v.(error)
	if !isErr {
		e.end(nil)
		return v, nil
	}
	if be := e.end(err); be != nil {
		be.Place = p.place
		return nil, be
	}
	var halt *gojq.HaltError
	if errors.As(err, &halt) && halt.Value() == nil {
		return nil, ErrNoOutput
	}
	return nil, fmt.Errorf("jq: %w", err)
}

// Truthy reports jq truthiness: everything but false and null is true.
func Truthy(v any) bool {
	switch b := v.(type) {
	case nil:
		return false
	case bool:
		return b
	}
	return true
}
