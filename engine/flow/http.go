package flow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/egress"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/fault"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/tracing"
)

// Defaults of an http step.
const (
	defaultBackoff      = 100 * time.Millisecond
	defaultPollInterval = time.Second
	defaultPollTimeout  = 60 * time.Second
)

type httpStep struct {
	env     *Env
	method  string
	url     *expr.Template
	headers []namedTemplate
	query   []namedTemplate
	timeout time.Duration
	retries int
	backoff time.Duration
	force   bool
	poll    *pollSpec
	stream  bool
	site    string // party id of the remote site: signed through env.Hooks
	// service is the registry service the step calls (instead of url),
	// resolved at each call; methodSet: the step names its method, else
	// the service's registered one applies.
	service   *config.ServiceRef
	methodSet bool
	multipart *multipartSpec
}

type namedTemplate struct {
	name string
	t    *expr.Template
}

type pollSpec struct {
	until, failWhen   *expr.Program
	interval, timeout time.Duration
}

func compileHTTP(cs *config.Step, env *Env, jb jqBinder, ptr string) (*httpStep, error) {
	h := cs.HTTP
	s := &httpStep{env: env, method: h.Method, methodSet: h.Method != "", timeout: h.Timeout.D(), stream: h.Stream, service: h.Service}
	if s.method == "" {
		s.method = http.MethodGet
	}
	if s.timeout == 0 {
		s.timeout = env.DefaultTimeout
	}
	var err error
	if s.url, err = expr.ParseURLTemplate(h.URL); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	s.url = jb.template(s.url, ptr+"/url")
	if s.headers, err = templates(h.Headers, jb, ptr+"/headers"); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if h.Multipart != nil {
		if s.multipart, err = compileMultipart(h.Multipart, jb, ptr+"/multipart"); err != nil {
			return nil, fmt.Errorf("multipart.%w", err)
		}
		if !s.methodSet {
			s.method = http.MethodPost
		}
	}
	if s.query, err = templates(h.Query, jb, ptr+"/query"); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if r := h.Retry; r != nil {
		s.retries, s.backoff, s.force = r.Attempts, r.Backoff.D(), r.Force
		if s.backoff == 0 {
			s.backoff = defaultBackoff
		}
	}
	if p := h.Poll; p != nil {
		ps := &pollSpec{interval: p.Interval.D(), timeout: p.Timeout.D()}
		if ps.interval == 0 {
			ps.interval = defaultPollInterval
		}
		if ps.timeout == 0 {
			ps.timeout = defaultPollTimeout
		}
		if ps.until, err = expr.Compile(p.Until); err != nil {
			return nil, fmt.Errorf("poll.until: %w", err)
		}
		ps.until = jb.program(ps.until, ptr+"/poll/until")
		if p.FailWhen != "" {
			if ps.failWhen, err = expr.Compile(p.FailWhen); err != nil {
				return nil, fmt.Errorf("poll.failWhen: %w", err)
			}
			ps.failWhen = jb.program(ps.failWhen, ptr+"/poll/failWhen")
		}
		s.poll = ps
	}
	s.site = h.Site
	return s, nil
}

// templates compiles a map of templates (headers, query, form fields) whose
// map stands at ptr.
func templates(m map[string]string, jb jqBinder, ptr string) ([]namedTemplate, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]namedTemplate, 0, len(m))
	for _, k := range names {
		t, err := expr.ParseTemplate(m[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out = append(out, namedTemplate{k, jb.template(t, ptr+"/"+escapePointer(k))})
	}
	return out, nil
}

// needsDoc reports whether building the request needs the invocation
// document (any interpolation); a plain passthrough step does not.
func (s *httpStep) needsDoc() bool {
	if !s.url.IsLiteral() || s.multipart != nil {
		return true
	}
	for _, h := range append(s.headers, s.query...) {
		if !h.t.IsLiteral() {
			return true
		}
	}
	return false
}

func hasBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

// prepared is a request ready to be sent (and re-sent on retry or poll).
type prepared struct {
	method      string
	url         string
	header      http.Header
	body        []byte
	contentType string
	resend      bool // sent more than once (poll): every attempt gets a copy of header
}

func (s *httpStep) prepare(ctx context.Context, inv *Invocation, st *step) (*prepared, error) {
	var doc map[string]any
	if st.reqT != nil || s.needsDoc() {
		var err error
		if doc, err = inv.Doc(); err != nil {
			return nil, err
		}
	}
	render := func(t *expr.Template) (string, error) {
		if t.IsLiteral() {
			return t.Render(ctx, nil, nil)
		}
		return t.Render(ctx, doc, doc)
	}
	p := &prepared{method: s.method, header: make(http.Header, len(s.headers)+2)}
	var u string
	var ep *registry.Endpoint
	if s.service != nil {
		e, err := s.resolve(ctx, st)
		if err != nil {
			return nil, err
		}
		ep, u = &e, e.URL()
		if !s.methodSet {
			p.method = strings.ToUpper(e.Service.Method)
			if p.method == "" {
				p.method = http.MethodPost
			}
		}
		for k, v := range e.Service.Headers {
			p.header.Set(k, v) // the step's own headers, set below, win
		}
	} else {
		var err error
		if u, err = render(s.url); err != nil {
			if errors.Is(err, expr.ErrUnsafeValue) {
				return nil, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("step %q http.url: %v", st.id, err), Step: st.id, Phase: "http.url", Err: err}
			}
			return nil, phaseErr(st, "http.url", err)
		}
		if s.url.AuthorityTemplated() {
			if err := s.checkHost(u); err != nil {
				return nil, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %v", st.id, err), Step: st.id, Phase: "http.url", Err: err}
			}
		}
	}
	if len(s.query) > 0 || (ep != nil && len(ep.Service.Params) > 0) {
		parsed, err := url.Parse(u)
		if err != nil {
			return nil, phaseErr(st, "http.url", err)
		}
		q := parsed.Query()
		if ep != nil {
			for k, v := range ep.Service.Params {
				q.Set(k, v) // the step's own query, set below, wins
			}
		}
		for _, nt := range s.query {
			v, err := render(nt.t)
			if err != nil {
				return nil, phaseErr(st, "http.query."+nt.name, err)
			}
			q.Set(nt.name, v)
		}
		parsed.RawQuery = q.Encode()
		u = parsed.String()
	}
	p.url = u
	for _, nt := range s.headers {
		v, err := render(nt.t)
		if err != nil {
			return nil, phaseErr(st, "http.headers."+nt.name, err)
		}
		p.header.Set(nt.name, v)
	}
	if inv.Req.Authorization != "" && p.header.Get("Authorization") == "" {
		p.header.Set("Authorization", inv.Req.Authorization)
	}
	if inv.Req.TraceID != "" && p.header.Get("X-Trace-Id") == "" {
		p.header.Set("X-Trace-Id", inv.Req.TraceID)
	}
	switch {
	case s.multipart != nil:
		var err error
		if p.body, p.contentType, err = s.multipart.build(ctx, doc, render); err != nil {
			return nil, phaseErr(st, "http.multipart", err)
		}
	case st.reqT != nil:
		v, err := st.reqT.Run(ctx, doc, doc)
		if err != nil && !errors.Is(err, expr.ErrNoOutput) {
			return nil, phaseErr(st, "transforms.request", err)
		}
		if str, ok := v.(string); ok {
			p.body, p.contentType = []byte(str), "text/plain; charset=utf-8"
		} else if p.body, err = marshal(v); err != nil {
			return nil, phaseErr(st, "transforms.request", err)
		} else {
			p.contentType = "application/json"
		}
	case hasBody(p.method):
		// No request transform: the caller's body passes through as it is,
		// unless the API's request transform replaced it with a value.
		body := inv.Body()
		if body.isValue {
			v, _ := body.Value()
			b, err := marshal(v)
			if err != nil {
				return nil, phaseErr(st, "body", err)
			}
			p.body, p.contentType = b, "application/json"
		} else {
			p.body, p.contentType = body.raw, body.contentType
		}
	}
	if p.contentType != "" && p.header.Get("Content-Type") == "" && len(p.body) > 0 {
		p.header.Set("Content-Type", p.contentType)
	}
	return p, nil
}

// checkHost holds a url whose scheme or host came from an interpolation
// to gateway.webClient.allowedHosts: http or https, no userinfo, a listed
// host.
func (s *httpStep) checkHost(u string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("bad upstream url: %v", err)
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return fmt.Errorf("upstream url scheme %q is not http or https", pu.Scheme)
	}
	if pu.User != nil {
		return fmt.Errorf("upstream url for host %q carries userinfo: send credentials in a header", pu.Hostname())
	}
	if !s.env.AllowedHosts.Allows(pu.Hostname()) {
		return fmt.Errorf("upstream host %q is not in gateway.webClient.allowedHosts", pu.Hostname())
	}
	return nil
}

func phaseErr(st *step, phase string, err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("step %q %s: %v", st.id, phase, err), Step: st.id, Phase: phase, Err: err}
}

func (s *httpStep) run(ctx context.Context, inv *Invocation, st *step, res *StepResult) (*Output, *rawResult, error) {
	p, err := s.prepare(ctx, inv, st)
	if err != nil {
		return nil, nil, err
	}
	res.Request = map[string]any{"method": p.method, "url": p.url, "body": bodyText(p.body)}
	if s.site != "" {
		if err := s.signSite(ctx, inv, st, p, res); err != nil {
			return nil, nil, err
		}
	}
	if s.poll != nil {
		return s.runPoll(ctx, inv, st, p, res)
	}
	raw, err := s.callWithRetry(ctx, st, p, res, s.stream && st.respT == nil)
	if raw != nil {
		res.Status = raw.status
		res.Response = responseRecord(raw)
	}
	if err != nil {
		return nil, raw, err
	}
	return raw.body, raw, nil
}

func bodyText(b []byte) string { return string(b) }

func responseRecord(raw *rawResult) map[string]any {
	r := map[string]any{"status": raw.status}
	if raw.body != nil {
		if raw.body.stream != nil {
			r["body"] = "(streamed)"
		} else {
			r["body"] = string(raw.body.raw)
		}
	}
	return r
}

// callWithRetry sends p, retrying connection failures and 502/503/504 for
// idempotent methods (or any method with retry.force).
func (s *httpStep) callWithRetry(ctx context.Context, st *step, p *prepared, res *StepResult, stream bool) (*rawResult, error) {
	attempts := 1
	if s.retries > 0 && (s.force || idempotent(p.method)) {
		attempts += s.retries
	}
	backoff := s.backoff
	var raw *rawResult
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			tracing.Event(ctx, "retry", attribute.Int("attempt", i+1), attribute.String("backoff", backoff.String()))
			if werr := sleep(ctx, backoff); werr != nil {
				break
			}
			backoff *= 2
		}
		res.Attempts++
		// The only attempt may hand header itself to the client, which
		// may add to it; a request sent again gets a fresh copy each time.
		raw, err = s.call(ctx, st, p, stream, attempts == 1 && !p.resend)
		if err == nil || !retryable(raw, err) || ctx.Err() != nil {
			break
		}
	}
	return raw, err
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

func retryable(raw *rawResult, err error) bool {
	if raw == nil {
		// No answer: connection refused, reset, timeout; but not the
		// gateway's refusal to dial its own admin listener.
		return !errors.Is(err, egress.ErrAdminListener)
	}
	switch raw.status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call makes one attempt. A non-2xx answer is an error that still carries
// the raw result, so the error transform can read it.
func (s *httpStep) call(ctx context.Context, st *step, p *prepared, stream, once bool) (*rawResult, error) {
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	var sp *tracing.Span
	if tracing.Recording(actx) { // (the name is built only for a span)
		actx, sp = tracing.Start(actx, "HTTP "+p.method, trace.SpanKindClient)
		defer sp.End()
	}
	req, err := http.NewRequestWithContext(actx, p.method, p.url, body)
	if err != nil {
		cancel()
		sp.Fail("bad upstream request")
		return nil, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: bad upstream request: %v", st.id, err), Step: st.id, Err: err}
	}
	if req.Header = p.header; !once {
		req.Header = p.header.Clone()
	}
	if sp != nil {
		sp.Set(tracing.ClientAttrs(p.method, req.URL)...)
	}
	// traceparent (tracestate, baggage) with this call's span as parent;
	// unsampled, with the request's.
	tracing.Inject(actx, req.Header)
	resp, err := s.env.Client.Do(req)
	if err != nil {
		cancel()
		e := s.transportError(ctx, st, err)
		sp.Fail(e.Message)
		return nil, e
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if sp != nil {
		sp.Set(attribute.Int("http.response.status_code", resp.StatusCode))
		if !ok {
			sp.Fail("HTTP " + strconv.Itoa(resp.StatusCode))
		}
	}
	if stream && ok {
		out := &Output{stream: &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, contentType: resp.Header.Get("Content-Type"), limit: s.env.MaxResponseBytes}
		return &rawResult{status: resp.StatusCode, headers: resp.Header, body: out}, nil
	}
	defer cancel()
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, s.env.MaxResponseBytes+1))
	if err != nil {
		e := s.transportError(ctx, st, err)
		sp.Fail(e.Message)
		return nil, e
	}
	if int64(len(b)) > s.env.MaxResponseBytes {
		sp.Fail("response too large")
		return nil, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: upstream response larger than %d bytes", st.id, s.env.MaxResponseBytes), Step: st.id}
	}
	raw := &rawResult{status: resp.StatusCode, headers: resp.Header, body: RawOutput(b, resp.Header.Get("Content-Type"))}
	if !ok {
		return raw, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: upstream answered HTTP %d", st.id, resp.StatusCode), Step: st.id}
	}
	return raw, nil
}

func (s *httpStep) transportError(ctx context.Context, st *step, err error) *Error {
	if ctx.Err() != nil {
		return &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q: request cancelled: %v", st.id, ctx.Err()), Step: st.id, Err: err}
	}
	if fault.Of(err) == fault.Timeout {
		return &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q timed out after %s", st.id, s.timeout), Step: st.id, Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: %s", st.id, upstreamReason(err)), Step: st.id, Err: err}
}

// upstreamReason shortens a transport error to what an operator needs.
func upstreamReason(err error) string {
	switch fault.Of(err) {
	case fault.Refused:
		return "upstream refused the connection"
	case fault.Closed:
		return "upstream closed the connection"
	case fault.HostNotFound:
		return "upstream host not found"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// runPoll repeats the call until poll.until holds, poll.failWhen holds, or
// poll.timeout passes.
func (s *httpStep) runPoll(ctx context.Context, inv *Invocation, st *step, p *prepared, res *StepResult) (*Output, *rawResult, error) {
	p.resend = true
	doc, err := inv.Doc()
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(s.poll.timeout)
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// stopped is the error once pctx is done: the caller went away, or the
	// poll timed out (also while a condition was being evaluated).
	stopped := func() *Error {
		if ctx.Err() != nil {
			return &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q: request cancelled", st.id), Step: st.id, Err: ctx.Err()}
		}
		return s.pollTimeout(st)
	}
	for n := 1; ; n++ {
		tracing.Event(ctx, "poll", attribute.Int("iteration", n))
		raw, err := s.callWithRetry(pctx, st, p, res, false)
		if raw != nil {
			res.Status = raw.status
			res.Response = responseRecord(raw)
		}
		if err != nil {
			if pctx.Err() != nil && ctx.Err() == nil {
				return nil, raw, s.pollTimeout(st)
			}
			return nil, raw, err
		}
		in, verr := raw.value()
		if verr != nil {
			return nil, raw, verr
		}
		if s.poll.failWhen != nil {
			v, err := s.poll.failWhen.Run(pctx, in, doc)
			if err != nil && !errors.Is(err, expr.ErrNoOutput) {
				if pctx.Err() != nil {
					return nil, raw, stopped()
				}
				return nil, raw, phaseErr(st, "http.poll.failWhen", err)
			}
			if expr.Truthy(v) {
				return nil, raw, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q failed: poll.failWhen matched after %d calls", st.id, res.Attempts), Step: st.id}
			}
		}
		v, err := s.poll.until.Run(pctx, in, doc)
		if err != nil && !errors.Is(err, expr.ErrNoOutput) {
			if pctx.Err() != nil {
				return nil, raw, stopped()
			}
			return nil, raw, phaseErr(st, "http.poll.until", err)
		}
		if expr.Truthy(v) {
			return raw.body, raw, nil
		}
		if sleep(pctx, s.poll.interval) != nil {
			return nil, raw, stopped()
		}
	}
}

func (s *httpStep) pollTimeout(st *step) *Error {
	return &Error{Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("step %q timed out: poll.until not reached within %s", st.id, s.poll.timeout), Step: st.id}
}

// resolve finds the step's registry service now: re-registering a server
// moves its services, so nothing is cached between calls.
func (s *httpStep) resolve(ctx context.Context, st *step) (registry.Endpoint, error) {
	if s.env.Services == nil {
		return registry.Endpoint{}, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: the service registry is not available", st.id), Step: st.id}
	}
	ep, err := s.env.Services.Resolve(ctx, s.service.Server, s.service.Name)
	if err != nil {
		return registry.Endpoint{}, &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: %v", st.id, err), Step: st.id, Err: err}
	}
	return ep, nil
}
