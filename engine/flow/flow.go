package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/egress"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/tracing"
	"github.com/databus-gateway/databus/schema"
)

// Env holds the long-lived resources a flow uses: they belong to the
// server, outlive reloads and are shared by every Snapshot.
type Env struct {
	Client           *http.Client // shared, pooled upstream client
	DefaultTimeout   time.Duration
	MaxResponseBytes int64
	// Hooks signs the requests of http steps that set site (the signature
	// hook of DESIGN.md section 6); nil: such steps fail closed.
	Hooks Signer
	// RPC is the gRPC connection pool of rpc steps; nil: rpc steps fail
	// with 500.
	RPC *rpc.Pool
	// Services resolves registry services (service: {server, name}) at
	// call time; nil: such steps fail with 502.
	Services registry.Resolver
	// AllowedHosts are the hosts an http step whose url takes its scheme
	// or host from an interpolation may call (gateway.webClient.allowedHosts);
	// nil: none.
	AllowedHosts *egress.AllowList
	// JQ is the budget of every jq evaluation of the flow; nil: bounded
	// by the request's context only.
	JQ *expr.Budget
	// MarkSteps puts the running step's id in the context of its calls
	// (StepOf), so that a sandbox can tell which step made an outbound
	// call. Off in the gateway: it costs a context per step.
	MarkSteps bool
}

type stepKey struct{}

// StepOf is the id of the step whose call ctx belongs to, when the flow
// was compiled with Env.MarkSteps; "" otherwise (and for hook callouts).
func StepOf(ctx context.Context) string {
	id, _ := ctx.Value(stepKey{}).(string)
	return id
}

// Same reports whether a flow compiled with e behaves as one compiled
// with o: the same shared resources and the same settings. A reload reuses
// the compiled flows of unchanged APIs only then.
func (e *Env) Same(o *Env) bool {
	if e == nil || o == nil {
		return e == o
	}
	jqSame := e.JQ == o.JQ || (e.JQ != nil && o.JQ != nil && *e.JQ == *o.JQ)
	return e.Client == o.Client && e.DefaultTimeout == o.DefaultTimeout && e.MaxResponseBytes == o.MaxResponseBytes &&
		e.Hooks == o.Hooks && e.RPC == o.RPC && e.Services == o.Services && jqSame && e.MarkSteps == o.MarkSteps &&
		reflect.DeepEqual(e.AllowedHosts, o.AllowedHosts)
}

// Flow is a compiled API.
type Flow struct {
	API   *config.Api
	steps []*step
	input *jsonschema.Schema
	reqT  *expr.Program
	respT *expr.Program
	errT  *expr.Program
	mark  bool // Env.MarkSteps
}

// runner is the part of a step that differs by type.
type runner interface {
	run(ctx context.Context, inv *Invocation, st *step, res *StepResult) (*Output, *rawResult, error)
}

type step struct {
	id, typ string
	when    *expr.Program
	reqT    *expr.Program
	respT   *expr.Program
	errT    *expr.Program
	cont    bool // onError: continue
	runner  runner
}

// rawResult is the {status, headers, body} of a call, as transforms see it.
type rawResult struct {
	status  int
	headers http.Header
	body    *Output
}

func (r *rawResult) value() (map[string]any, error) {
	body, err := r.body.Value()
	if err != nil {
		return nil, err
	}
	h := make(map[string]any, len(r.headers))
	for k, v := range r.headers {
		h[k] = strings.Join(v, ", ")
	}
	return map[string]any{"status": r.status, "headers": h, "body": body}, nil
}

// Compile builds a flow from a validated API definition. Its errors are
// *config.Fault, placed at the field at fault.
func Compile(api *config.Api, env *Env) (*Flow, error) {
	if env == nil {
		env = &Env{} // no upstream client, no budget beyond the request's context
	}
	f := &Flow{API: api, mark: env.MarkSteps}
	jb := jqBinder{api: api, budget: env.JQ}
	compileOpt := func(src, ptr string) (*expr.Program, error) {
		if src == "" {
			return nil, nil
		}
		p := api.Compiled(ptr) // what the loader compiled checking the file
		if p == nil {
			var err error
			if p, err = expr.Compile(src); err != nil {
				return nil, err
			}
		}
		return jb.program(p, ptr), nil
	}
	var err error
	fail := func(ptr string, e error) (*Flow, error) {
		ce := &config.Fault{File: api.Source.File, Pointer: ptr, Err: e}
		var se *scriptError
		if errors.As(e, &se) {
			ce.ScriptLine, ce.ScriptColumn = se.line, se.column
		}
		return nil, ce
	}
	if api.Input != nil {
		if f.input, err = schema.CompileUser(api.Input); err != nil {
			return fail("/input", err)
		}
	}
	if t := api.Transforms; t != nil {
		if f.reqT, err = compileOpt(t.Request, "/transforms/request"); err != nil {
			return fail("/transforms/request", err)
		}
		if f.respT, err = compileOpt(t.Response, "/transforms/response"); err != nil {
			return fail("/transforms/response", err)
		}
		if f.errT, err = compileOpt(t.Error, "/transforms/error"); err != nil {
			return fail("/transforms/error", err)
		}
	}
	for i := range api.Steps {
		cs := &api.Steps[i]
		ptr := fmt.Sprintf("/steps/%d", i)
		st := &step{id: cs.ID, typ: cs.Type, cont: cs.OnError == "continue"}
		if st.when, err = compileOpt(cs.When, ptr+"/when"); err != nil {
			return fail(ptr+"/when", err)
		}
		if t := cs.Transforms; t != nil {
			if st.reqT, err = compileOpt(t.Request, ptr+"/transforms/request"); err != nil {
				return fail(ptr+"/transforms/request", err)
			}
			if st.respT, err = compileOpt(t.Response, ptr+"/transforms/response"); err != nil {
				return fail(ptr+"/transforms/response", err)
			}
			if st.errT, err = compileOpt(t.Error, ptr+"/transforms/error"); err != nil {
				return fail(ptr+"/transforms/error", err)
			}
		}
		switch cs.Type {
		case config.StepHTTP:
			if st.runner, err = compileHTTP(cs, env, jb, ptr+"/http"); err != nil {
				return fail(ptr+"/http", err)
			}
		case config.StepScript:
			if st.runner, err = compileScript(cs); err != nil {
				return fail(ptr+"/script/source", err)
			}
		case config.StepRPC:
			if st.runner, err = compileRPC(cs, env, jb, ptr+"/rpc"); err != nil {
				return fail(ptr+"/rpc", err)
			}
		}
		f.steps = append(f.steps, st)
	}
	return f, nil
}

// jqBinder binds a flow's compiled programs to the jq budget and to their
// place in the API's file, which a budget error names.
type jqBinder struct {
	api    *config.Api
	budget *expr.Budget
}

func (jb jqBinder) program(p *expr.Program, ptr string) *expr.Program {
	return p.Bind(jb.api.Place(ptr), jb.budget)
}

func (jb jqBinder) template(t *expr.Template, ptr string) *expr.Template {
	if t.IsLiteral() {
		return t
	}
	return t.Bind(jb.api.Place(ptr), jb.budget)
}

// escapePointer escapes a key for a JSON pointer.
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// Result is the outcome of a run. Call Close when done with it.
type Result struct {
	Output *Output // the envelope's response (or a stream) on success
	Err    *Error  // set on failure
	// ErrResponse is the envelope's response on failure: the output of the
	// API's error transform, or nil.
	ErrResponse any
	Inv         *Invocation
}

// Close releases any stream the result still holds.
func (r *Result) Close() {
	if r.Output != nil {
		r.Output.Close()
	}
	if r.Inv != nil {
		r.Inv.close(nil)
	}
}

// Run executes the flow for one request.
func (f *Flow) Run(ctx context.Context, req *Request) *Result {
	inv := newInvocation(req)
	res := &Result{Inv: inv}
	out, ferr := f.run(ctx, inv)
	if ferr != nil {
		budgetStopped(ferr)
		inv.close(nil)
		res.Err = ferr
		if f.errT != nil {
			res.ErrResponse = f.errorResponse(ctx, inv, ferr)
		}
		return res
	}
	inv.close(out)
	res.Output = out
	return res
}

// budgetStopped rewrites the error of a run that a jq budget stopped: 504
// for its time budget (like a script's timeout), 500 for the memory guard,
// and a message naming the program's file, line and path.
func budgetStopped(ferr *Error) {
	var be *expr.BudgetError
	if !errors.As(ferr.Err, &be) {
		return
	}
	ferr.Status = http.StatusInternalServerError
	if be.Reason == expr.ReasonTime {
		ferr.Status = http.StatusGatewayTimeout
	}
	ferr.Message = be.Error()
	if ferr.Step != "" {
		ferr.Message = fmt.Sprintf("step %q: %s", ferr.Step, ferr.Message)
	}
}

func (f *Flow) errorResponse(ctx context.Context, inv *Invocation, ferr *Error) any {
	doc, err := inv.Doc()
	if err != nil {
		return nil
	}
	in := make(map[string]any, len(doc)+1)
	for k, v := range doc {
		in[k] = v
	}
	in["error"] = map[string]any{"status": ferr.Status, "message": ferr.Message, "step": ferr.Step, "phase": ferr.Phase}
	v, err := f.errT.Run(ctx, in, doc)
	if err != nil {
		return nil
	}
	return v
}

func (f *Flow) run(ctx context.Context, inv *Invocation) (*Output, *Error) {
	var last *Output
	// Spans only when the request's span records (tracing on, sampled).
	traced := tracing.Recording(ctx)
	for _, st := range f.steps {
		started := time.Now()
		res := StepResult{ID: st.id, Type: st.typ}
		sctx := ctx
		var sp *tracing.Span
		if traced {
			sctx, sp = tracing.Start(ctx, "step "+st.id, trace.SpanKindInternal, AttrStepID.String(st.id), AttrStepType.String(st.typ))
		}
		switch st.typ {
		case config.StepStart:
			err := f.start(sctx, inv)
			res.Elapsed = time.Since(started)
			if err != nil {
				res.Error = err.Message
				endStep(sp, &res)
				inv.Results = append(inv.Results, res)
				return nil, err
			}
			endStep(sp, &res)
			inv.Results = append(inv.Results, res)
			continue
		case config.StepEnd:
			out, err := f.end(sctx, inv, st, last)
			res.Elapsed = time.Since(started)
			if err != nil {
				res.Error = err.Message
			}
			endStep(sp, &res)
			inv.Results = append(inv.Results, res)
			return out, err
		}
		if st.when != nil {
			ok, err := st.cond(sctx, inv)
			if err != nil {
				res.Error = err.Message
				res.Elapsed = time.Since(started)
				endStep(sp, &res)
				inv.Results = append(inv.Results, res)
				return nil, err
			}
			if !ok {
				res.Skipped = true
				endStep(sp, &res)
				inv.Results = append(inv.Results, res)
				continue
			}
		}
		if f.mark {
			sctx = context.WithValue(sctx, stepKey{}, st.id)
		}
		out, ferr := st.exec(sctx, inv, &res)
		res.Elapsed = time.Since(started)
		if ferr != nil {
			res.Error = ferr.Message
			endStep(sp, &res)
			inv.Results = append(inv.Results, res)
			return nil, ferr
		}
		endStep(sp, &res)
		inv.Results = append(inv.Results, res)
		inv.setOutput(st.id, out)
		last = out
	}
	return last, nil
}

// Attributes of step spans.
const (
	AttrStepID       = attribute.Key("databus.step.id")
	AttrStepType     = attribute.Key("databus.step.type")
	AttrStepAttempts = attribute.Key("databus.step.attempts")
	AttrStepSkipped  = attribute.Key("databus.step.skipped")
	AttrStepStatus   = attribute.Key("databus.step.status")
)

// endStep ends a step's span with what the step's result says: status,
// attempts, skipped, and its error (the step's message, never a body).
func endStep(sp *tracing.Span, res *StepResult) {
	if sp == nil {
		return
	}
	if res.Skipped {
		sp.Set(AttrStepSkipped.Bool(true))
	}
	if res.Attempts > 0 {
		sp.Set(AttrStepAttempts.Int(res.Attempts))
	}
	if res.Status != 0 {
		sp.Set(AttrStepStatus.Int(res.Status))
	}
	if res.Error != "" {
		sp.Fail(res.Error)
	}
	sp.End()
}

// start validates the input and applies the API-level request transform.
func (f *Flow) start(ctx context.Context, inv *Invocation) *Error {
	if e := f.checkInput(inv.body); e != nil {
		return e
	}
	if f.reqT != nil {
		v, err := f.runProgram(ctx, inv, f.reqT, nil)
		if err != nil {
			return &Error{Status: http.StatusInternalServerError, Message: "transforms.request: " + err.Error(), Phase: "transforms.request", Err: err}
		}
		inv.setBody(v)
	}
	return nil
}

// HasInput reports whether the API declares an input schema.
func (f *Flow) HasInput() bool { return f.input != nil }

// CheckInput judges a (decrypted) request body as the start step does:
// nil when the API has no input schema or the body passes it, else the
// 400 the portal would answer. Tools that replay recorded bodies against
// a revision (databus diff --traffic) use it, so that they refuse exactly
// what the gateway would.
func (f *Flow) CheckInput(body []byte) *Error {
	return f.checkInput(RawOutput(body, ""))
}

func (f *Flow) checkInput(body *Output) *Error {
	if f.input == nil {
		return nil
	}
	if len(body.raw) > 0 && !json.Valid(body.raw) {
		return &Error{Status: http.StatusBadRequest, Message: "request body is not valid JSON", Phase: "input"}
	}
	v, _ := body.Value()
	if err := f.input.Validate(v); err != nil {
		return &Error{Status: http.StatusBadRequest, Message: inputMessage(err), Phase: "input", Err: err}
	}
	return nil
}

// inputMessage names the first field that violates the input schema.
func inputMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "request body does not match the input schema: " + err.Error()
	}
	leaves := leafErrors(ve)
	sort.SliceStable(leaves, func(i, j int) bool { return leaves[i].InstanceLocation < leaves[j].InstanceLocation })
	var parts []string
	for i, l := range leaves {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(leaves)-3))
			break
		}
		field := fieldName(l.InstanceLocation)
		msg := l.Message
		if strings.HasPrefix(msg, "missing properties: ") {
			names := strings.TrimPrefix(msg, "missing properties: ")
			parts = append(parts, fmt.Sprintf("missing required field %s", prefixField(field, names)))
			continue
		}
		if field == "" {
			field = "body"
		}
		parts = append(parts, fmt.Sprintf("field %s: %s", field, msg))
	}
	return "invalid request body: " + strings.Join(parts, "; ")
}

func prefixField(parent, names string) string {
	if parent == "" {
		return names
	}
	var out []string
	for _, n := range strings.Split(names, ", ") {
		out = append(out, "'"+parent+"."+strings.Trim(n, "'")+"'")
	}
	return strings.Join(out, ", ")
}

func leafErrors(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leafErrors(c)...)
	}
	return out
}

// fieldName turns a JSON pointer into a dotted field name: /items/0/qty →
// items[0].qty.
func fieldName(ptr string) string {
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if isIndex(tok) {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func isIndex(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// end produces the flow's output: the last step's output, shaped by the end
// step's and then the API's response transform.
func (f *Flow) end(ctx context.Context, inv *Invocation, st *step, last *Output) (*Output, *Error) {
	out := last
	if st.respT != nil {
		v, err := f.runProgram(ctx, inv, st.respT, outputValue(last))
		if err != nil {
			return nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q transforms.response: %v", st.id, err), Step: st.id, Phase: "transforms.response", Err: err}
		}
		out = ValueOutput(v)
	}
	if f.respT != nil {
		v, err := f.runProgram(ctx, inv, f.respT, nil)
		if err != nil {
			return nil, &Error{Status: http.StatusInternalServerError, Message: "transforms.response: " + err.Error(), Phase: "transforms.response", Err: err}
		}
		out = ValueOutput(v)
	}
	return out, nil
}

// outputValue defers decoding: the end transform's input is the last output.
func outputValue(o *Output) func() (any, error) {
	return func() (any, error) { return o.Value() }
}

// runProgram runs p over the invocation document, or over input() when
// given; the document binds the program's variables either way.
func (f *Flow) runProgram(ctx context.Context, inv *Invocation, p *expr.Program, input func() (any, error)) (any, error) {
	doc, err := inv.docFor(p)
	if err != nil {
		return nil, err
	}
	var in any = doc
	if input != nil {
		if in, err = input(); err != nil {
			return nil, err
		}
	}
	v, err := p.Run(ctx, in, doc)
	if errors.Is(err, expr.ErrNoOutput) {
		return nil, nil
	}
	return v, err
}

// cond evaluates a step's when condition.
func (st *step) cond(ctx context.Context, inv *Invocation) (bool, *Error) {
	doc, err := inv.docFor(st.when)
	if err == nil {
		var v any
		v, err = st.when.Run(ctx, doc, doc)
		if err == nil || errors.Is(err, expr.ErrNoOutput) {
			return expr.Truthy(v), nil
		}
	}
	return false, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q when: %v", st.id, err), Step: st.id, Phase: "when", Err: err}
}

// exec runs a step: its call, then its response transform, or its error
// transform when it failed and onError is continue.
func (st *step) exec(ctx context.Context, inv *Invocation, res *StepResult) (*Output, *Error) {
	out, raw, err := st.runner.run(ctx, inv, st, res)
	if err != nil {
		var ferr *Error
		if !errors.As(err, &ferr) {
			ferr = &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: %v", st.id, err), Step: st.id, Err: err}
		}
		if ferr.Step == "" {
			ferr.Step = st.id
		}
		// A bad request (an rpc message the caller's values do not fit)
		// is the caller's mistake, not a failed upstream: never continued.
		if !st.cont || ctx.Err() != nil || ferr.Status == http.StatusBadRequest {
			return nil, ferr
		}
		// onError: continue. The step's output is its error transform's
		// output over the raw result, or null.
		res.Error = ferr.Message
		if st.errT == nil || raw == nil {
			return ValueOutput(nil), nil
		}
		v, terr := st.transform(ctx, inv, st.errT, raw)
		if terr != nil {
			return nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q transforms.error: %v", st.id, terr), Step: st.id, Phase: "transforms.error", Err: terr}
		}
		return ValueOutput(v), nil
	}
	if st.respT == nil {
		return out, nil
	}
	v, terr := st.transform(ctx, inv, st.respT, raw)
	if terr != nil {
		return nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q transforms.response: %v", st.id, terr), Step: st.id, Phase: "transforms.response", Err: terr}
	}
	return ValueOutput(v), nil
}

func (st *step) transform(ctx context.Context, inv *Invocation, p *expr.Program, raw *rawResult) (any, error) {
	doc, err := inv.docFor(p)
	if err != nil {
		return nil, err
	}
	in, err := raw.value()
	if err != nil {
		return nil, err
	}
	v, err := p.Run(ctx, in, doc)
	if errors.Is(err, expr.ErrNoOutput) {
		return nil, nil
	}
	return v, err
}
