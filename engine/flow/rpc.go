package flow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/rpc/protoset"
	"github.com/databus-gateway/databus/engine/tracing"
)

// rpcStep is a gRPC unary call. Its request message is built from JSON
// (the request transform's output, or the current body) by the proto3
// JSON mapping; its response message becomes the JSON body of the raw
// result.
type rpcStep struct {
	env      *Env
	target   string
	service  *config.ServiceRef
	method   string           // package.Service/Method
	fixed    *protoset.Method // from the descriptor set; nil: server reflection
	timeout  time.Duration
	metadata []namedTemplate // names lower-cased, as gRPC sends them
	tls      bool
}

// The proto3 JSON mapping of responses: every field is present (zero
// values too), so transforms read a stable shape; names are lowerCamelCase.
var (
	responseJSON = protojson.MarshalOptions{EmitUnpopulated: true}
	requestJSON  = protojson.UnmarshalOptions{}
)

func compileRPC(cs *config.Step, env *Env, jb jqBinder, ptr string) (*rpcStep, error) {
	r := cs.RPC
	if r.DescriptorSet != "" && r.Descriptor == nil {
		return nil, fmt.Errorf("descriptor set %s was not loaded (load the API with config.Load)", r.DescriptorSet)
	}
	if r.Target == "" && r.Service == nil {
		return nil, errors.New("an rpc step needs target or service")
	}
	s := &rpcStep{env: env, target: r.Target, service: r.Service, method: r.Method, fixed: r.Descriptor, timeout: r.Timeout.D(), tls: r.TLS}
	if s.timeout == 0 {
		s.timeout = env.DefaultTimeout
	}
	md, err := templates(r.Metadata, jb, ptr+"/metadata")
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for i := range md {
		md[i].name = strings.ToLower(md[i].name)
	}
	s.metadata = md
	return s, nil
}

func (s *rpcStep) needsDoc() bool {
	for _, m := range s.metadata {
		if !m.t.IsLiteral() {
			return true
		}
	}
	return false
}

func (s *rpcStep) run(ctx context.Context, inv *Invocation, st *step, res *StepResult) (*Output, *rawResult, error) {
	var doc map[string]any
	if st.reqT != nil || s.needsDoc() {
		var err error
		if doc, err = inv.Doc(); err != nil {
			return nil, nil, err
		}
	}
	body, ferr := s.requestBody(ctx, inv, st, doc)
	if ferr != nil {
		return nil, nil, ferr
	}
	md, ferr := s.outgoing(ctx, inv, st, doc)
	if ferr != nil {
		return nil, nil, ferr
	}
	req := map[string]any{"method": s.method, "body": string(body)}
	res.Request = req
	if s.env.RPC == nil {
		return nil, nil, &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q: rpc steps need the gateway's gRPC client pool, which this gateway does not have", st.id), Step: st.id}
	}
	cctx := ctx
	if s.timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	target, ferr := s.resolve(cctx, st)
	if ferr != nil {
		return nil, nil, ferr
	}
	req["target"] = target
	m := s.fixed
	if m == nil {
		var err error
		if m, err = s.env.RPC.Method(cctx, target, s.tls, s.method); err != nil {
			return nil, nil, s.methodError(ctx, cctx, st, target, err)
		}
	}
	msg := dynamicpb.NewMessage(m.Desc.Input())
	opts := requestJSON
	opts.Resolver = m.Types
	if err := opts.Unmarshal(body, msg); err != nil {
		return nil, nil, messageError(st, m.Desc.Input().FullName(), body, err)
	}
	res.Attempts = 1
	call := rpc.Call{Target: target, TLS: s.tls, Method: m, Request: msg, Metadata: md}
	if n := s.env.MaxResponseBytes; n > 0 && n < 1<<31 {
		call.MaxResponseBytes = int(n)
	}
	ictx := cctx
	var sp *tracing.Span
	if tracing.Recording(cctx) {
		ictx, sp = tracing.Start(cctx, s.method, trace.SpanKindClient, attribute.String("rpc.system.name", "grpc"),
			attribute.String("rpc.method", s.method), attribute.String("server.address", target))
	}
	tracing.InjectMD(ictx, md)
	reply, err := s.env.RPC.Invoke(ictx, call)
	if sp != nil {
		if err != nil {
			st := status.Convert(err)
			sp.Set(attribute.String("rpc.response.status_code", st.Code().String()))
			sp.Fail(st.Code().String())
		} else {
			sp.Set(attribute.String("rpc.response.status_code", "OK"))
		}
		sp.End()
	}
	raw := &rawResult{headers: metadataHeader(reply.Header, reply.Trailer)}
	if err != nil {
		if errors.Is(err, rpc.ErrClosed) {
			return nil, nil, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: %v", st.id, err), Step: st.id, Err: err}
		}
		stat := status.Convert(err)
		raw.status = int(stat.Code())
		raw.body = ValueOutput(map[string]any{"code": stat.Code().String(), "message": stat.Message()})
		res.Status = raw.status
		res.Response = rpcRecord(raw, nil)
		return nil, raw, s.callError(ctx, cctx, st, "", stat)
	}
	ropts := responseJSON
	ropts.Resolver = m.Types
	out, err := ropts.Marshal(reply.Message)
	if err == nil {
		var buf bytes.Buffer
		if err = json.Compact(&buf, out); err == nil {
			out = buf.Bytes()
		}
	}
	if err != nil {
		return nil, nil, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: the response message %s has no JSON form: %v", st.id, m.Desc.Output().FullName(), err), Step: st.id, Err: err}
	}
	raw.body = RawOutput(out, "application/json")
	res.Response = rpcRecord(raw, out)
	return raw.body, raw, nil
}

// requestBody is the JSON the request message is read from.
func (s *rpcStep) requestBody(ctx context.Context, inv *Invocation, st *step, doc map[string]any) ([]byte, *Error) {
	var v any
	switch body := inv.Body(); {
	case st.reqT != nil:
		var err error
		v, err = st.reqT.Run(ctx, doc, doc)
		if err != nil && !errors.Is(err, expr.ErrNoOutput) {
			return nil, phaseErr(st, "transforms.request", err)
		}
	case body.isValue:
		v, _ = body.Value()
	default:
		raw := bytes.TrimSpace(body.raw)
		if len(raw) == 0 {
			return []byte("{}"), nil
		}
		if !json.Valid(raw) {
			return nil, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("step %q: the request body is not JSON: an rpc step builds its message from a JSON object (or from its request transform)", st.id), Step: st.id, Phase: "rpc.request"}
		}
		return raw, nil
	}
	if v == nil {
		return []byte("{}"), nil // no value: an empty message
	}
	b, err := marshal(v)
	if err != nil {
		return nil, phaseErr(st, "transforms.request", err)
	}
	return b, nil
}

// outgoing is the call's metadata: the step's, then the trace id and the
// caller's Authorization (as http steps send them) unless the step set them.
func (s *rpcStep) outgoing(ctx context.Context, inv *Invocation, st *step, doc map[string]any) (metadata.MD, *Error) {
	md := make(metadata.MD, len(s.metadata)+2)
	for _, nt := range s.metadata {
		var v string
		var err error
		if nt.t.IsLiteral() {
			v, err = nt.t.Render(ctx, nil, nil)
		} else {
			v, err = nt.t.Render(ctx, doc, doc)
		}
		if err != nil {
			return nil, phaseErr(st, "rpc.metadata."+nt.name, err)
		}
		md.Set(nt.name, v)
	}
	if inv.Req.TraceID != "" && len(md.Get("x-trace-id")) == 0 {
		md.Set("x-trace-id", inv.Req.TraceID)
	}
	if inv.Req.Authorization != "" && len(md.Get("authorization")) == 0 {
		md.Set("authorization", inv.Req.Authorization)
	}
	return md, nil
}

// resolve returns the host:port to call: the target, or the registered
// server of the step's service as it is now.
func (s *rpcStep) resolve(ctx context.Context, st *step) (string, *Error) {
	if s.service == nil {
		return s.target, nil
	}
	if s.env.Services == nil {
		return "", &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: the service registry is not available", st.id), Step: st.id}
	}
	ep, err := s.env.Services.Resolve(ctx, s.service.Server, s.service.Name)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return "", &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %v", st.id, err), Step: st.id, Err: err}
	case err != nil:
		return "", &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: resolving service %q of server %q: %v", st.id, s.service.Name, s.service.Server, err), Step: st.id, Err: err}
	}
	return ep.Server.Address(), nil
}

// methodError maps a failure to learn the method from server reflection.
func (s *rpcStep) methodError(ctx, cctx context.Context, st *step, target string, err error) *Error {
	switch {
	case errors.Is(err, rpc.ErrNoReflection):
		return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %v: set rpc.descriptorSet to a descriptor set of its services", st.id, err), Step: st.id, Err: err}
	case errors.Is(err, protoset.ErrNoService):
		return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %s", st.id, err), Step: st.id, Err: err}
	case errors.Is(err, protoset.ErrNoMethod), errors.Is(err, protoset.ErrStreaming):
		return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %s (as the reflection service of %s tells)", st.id, err, target), Step: st.id, Err: err}
	case errors.Is(err, rpc.ErrClosed):
		return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: %v", st.id, err), Step: st.id, Err: err}
	}
	return s.callError(ctx, cctx, st, "server reflection: ", status.Convert(err))
}

// callError maps a gRPC status: 504 for a deadline (the step's, the
// caller's or the server's own), 502 for any other code, with the code's
// name and the server's message.
func (s *rpcStep) callError(ctx, cctx context.Context, st *step, what string, stat *status.Status) *Error {
	desc := fmt.Sprintf("%sgRPC %s: %s", what, stat.Code(), dialNoise.ReplaceAllString(stat.Message(), "$1"))
	e := &Error{Status: http.StatusBadGateway, Step: st.id, Err: stat.Err()}
	switch {
	case ctx.Err() != nil:
		e.Status, e.Message = http.StatusGatewayTimeout, fmt.Sprintf("step %q: request cancelled (%s)", st.id, desc)
	case cctx.Err() != nil, stat.Code() == codes.DeadlineExceeded && atDeadline(cctx, s.timeout):
		// The server enforces the deadline the step sent with the call
		// and may cancel the stream before the client's own timer fires:
		// that is still the step's timeout.
		e.Status, e.Message = http.StatusGatewayTimeout, fmt.Sprintf("step %q timed out after %s (%s)", st.id, s.timeout, desc)
	case stat.Code() == codes.DeadlineExceeded:
		e.Status, e.Message = http.StatusGatewayTimeout, fmt.Sprintf("step %q failed: %s", st.id, desc)
	default:
		e.Message = fmt.Sprintf("step %q failed: %s", st.id, desc)
	}
	return e
}

// atDeadline reports whether ctx's deadline, the step's, is in the second
// half of the step's timeout: a DeadlineExceeded then is the step's own
// deadline, enforced by the server (or by gRPC) a moment before the
// client's timer; on a busy machine that moment can be long. One earlier
// is the server's own deadline of some call it made.
func atDeadline(ctx context.Context, timeout time.Duration) bool {
	dl, ok := ctx.Deadline()
	if !ok {
		return false
	}
	return time.Until(dl) <= timeout/2
}

// metadataHeader merges response headers and trailers into the raw
// result's headers; binary (-bin) values are Base64.
func metadataHeader(mds ...metadata.MD) http.Header {
	h := http.Header{}
	for _, md := range mds {
		for k, vs := range md {
			for _, v := range vs {
				if strings.HasSuffix(k, "-bin") {
					v = base64.StdEncoding.EncodeToString([]byte(v))
				}
				h[k] = append(h[k], v)
			}
		}
	}
	return h
}

// rpcRecord is the step's response as the access log shows it.
func rpcRecord(raw *rawResult, body []byte) map[string]any {
	r := map[string]any{"status": raw.status, "code": codes.Code(raw.status).String()}
	if len(raw.headers) > 0 {
		h := make(map[string]string, len(raw.headers))
		for k, v := range raw.headers {
			h[k] = strings.Join(v, ", ")
		}
		r["metadata"] = h
	}
	if body != nil {
		r["body"] = string(body)
	} else if raw.body != nil {
		v, _ := raw.body.Value()
		r["body"] = v
	}
	return r
}

// dialNoise is how gRPC wraps a dial error: the dial error says it all.
var dialNoise = regexp.MustCompile(`^connection error: desc = "transport: (?:Error while dialing: )?(.*)"$`)

var (
	protoPosRE      = regexp.MustCompile(`\(line (\d+):(\d+)\): (.*)$`)
	invalidValueRE  = regexp.MustCompile(`^invalid value for (.+?) field \S+: (.*)$`)
	unknownFieldRE  = regexp.MustCompile(`^unknown field "`)
	duplicateJSONRE = regexp.MustCompile(`^duplicate field "`)
)

// messageError names the field of the request JSON that does not fit the
// message: a caller's value of the wrong type is a bad request.
func messageError(st *step, name protoreflect.FullName, body []byte, err error) *Error {
	text := err.Error()
	field := ""
	if m := protoPosRE.FindStringSubmatch(text); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		field = jsonPathAt(body, byteOffset(body, line, col))
		text = m[3]
	} else if i := strings.IndexAny(text, " \u00a0"); strings.HasPrefix(text, "proto:") && i > 0 {
		text = strings.TrimSpace(text[i:])
	}
	switch m := invalidValueRE.FindStringSubmatch(text); {
	case m != nil:
		text = fmt.Sprintf("expected %s, got %s", m[1], tokenName(m[2]))
	case field == "" && strings.HasPrefix(text, "unexpected token "):
		text = "expected a JSON object, got " + tokenName(strings.TrimPrefix(text, "unexpected token "))
	case unknownFieldRE.MatchString(text):
		text = "no such field in the message"
	case duplicateJSONRE.MatchString(text):
		text = "given twice (by its JSON name and its proto name)"
	}
	msg := fmt.Sprintf("step %q: invalid request message %s: %s", st.id, name, text)
	if field != "" {
		msg = fmt.Sprintf("step %q: invalid request message %s: field %s: %s", st.id, name, field, text)
	}
	return &Error{Status: http.StatusBadRequest, Message: msg, Step: st.id, Phase: "rpc.request", Err: err}
}

// tokenName names a JSON token as protojson quotes it: values as written,
// an array or an object by name.
func tokenName(tok string) string {
	switch tok {
	case "[":
		return "an array"
	case "{":
		return "an object"
	}
	return tok
}

// byteOffset turns protojson's line and column (counted in characters)
// into an offset in data.
func byteOffset(data []byte, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return len(data)
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(data); c++ {
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off
}

// jsonPathAt returns the dotted path (items[0].qty) of the JSON value or
// key that starts at offset off of data.
func jsonPathAt(data []byte, off int) string {
	type frame struct {
		obj     bool
		key     string
		idx     int
		wantKey bool
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.idx)
			}
		}
		return b.String()
	}
	afterValue := func() {
		if n := len(stack); n > 0 {
			if top := stack[n-1]; top.obj {
				top.wantKey = true
			} else {
				top.idx++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		end := int(dec.InputOffset())
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if key, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = key, false
				if end > off {
					return path()
				}
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if end > off {
					return path()
				}
				stack = append(stack, &frame{obj: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				afterValue()
			}
			continue
		}
		if end > off {
			return path()
		}
		afterValue()
	}
}
