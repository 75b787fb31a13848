// Package hooks makes the callouts of DESIGN.md section 6 that the gateway
// makes on its own behalf: client_authentication and site_authentication
// before a portal request, permission after them, and signature before an
// http step that calls another site. Each hook is a registered service of
// the server hooks.server, resolved at call time through the registry.
//
// Every callout is a POST of JSON (the service's method when it names one)
// bounded by hooks.timeout, counted in databus_hook_calls_total and
// databus_hook_duration_seconds, and fails closed: success is HTTP 200 with a
// JSON answer whose code is the number 0; anything else — the service not
// registered, no registry, a timeout, a transport error, another status, an
// answer that is not JSON or has no code — is a failure with a reason.
//
// FATE Flow's own hooks are the model, without their defects: headers go as
// a JSON object of strings, a body that is not JSON goes as a string (never
// as something that cannot be serialised), client and site authentication
// both run when both are on, and every callout has a timeout.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/fault"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/tracing"
)

// The hooks: the service names on hooks.server.
const (
	ClientAuthentication = "client_authentication"
	SiteAuthentication   = "site_authentication"
	Signature            = "signature"
	Permission           = "permission"
)

// Outcomes of a callout: the outcome label of databus_hook_calls_total.
const (
	OutcomeOK            = "ok"
	OutcomeRefused       = "refused"        // HTTP 200, JSON, code != 0
	OutcomeTimeout       = "timeout"        // no answer within hooks.timeout
	OutcomeNotRegistered = "not_registered" // no registry, or the service is not in it
	OutcomeError         = "error"          // transport error, non-200, not JSON, no code
)

// Errors of a callout, wrapped by Result.Err.
var (
	// ErrRefused: the hook answered and said no (code != 0).
	ErrRefused = errors.New("refused")
	// ErrUnavailable: the hook could not be asked or did not answer in
	// the protocol. A timeout also wraps context.DeadlineExceeded.
	ErrUnavailable = errors.New("unavailable")
)

// ErrNoRegistry is the reason when hooks are used but the gateway was given
// no service registry.
var ErrNoRegistry = errors.New("the service registry is not available")

// maxAnswer bounds a hook's answer.
const maxAnswer = 1 << 20

// Options are what a Caller is built from.
type Options struct {
	Services registry.Resolver // nil: every callout fails with ErrNoRegistry
	Client   *http.Client      // nil: a client without connection reuse across Callers
	Settings config.HookSettings
	Metrics  *metrics.Metrics // nil: not counted
}

// Caller makes the callouts for one Snapshot. It is immutable and safe for
// concurrent use; a nil *Caller fails every callout with ErrNoRegistry.
type Caller struct {
	services registry.Resolver
	client   *http.Client
	settings config.HookSettings
	metrics  *metrics.Metrics
	given    *http.Client // Options.Client
}

// Same reports whether c is the Caller New(o) would return: a reload keeps
// it (and the compiled flows that sign through it) when nothing changed.
func (c *Caller) Same(o Options) bool {
	if c == nil {
		return false
	}
	set := o.Settings
	if set.Timeout <= 0 {
		set.Timeout = config.Duration(3 * time.Second)
	}
	return c.services == o.Services && c.metrics == o.Metrics && c.given == o.Client && reflect.DeepEqual(c.settings, set)
}

// New returns a Caller.
func New(o Options) *Caller {
	c := &Caller{services: o.Services, client: o.Client, settings: o.Settings, metrics: o.Metrics, given: o.Client}
	if c.client == nil {
		c.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if c.settings.Timeout <= 0 {
		c.settings.Timeout = config.Duration(3 * time.Second)
	}
	return c
}

// Result is one callout, for the access log and the refusal.
type Result struct {
	Hook    string
	Method  string
	URL     string // "" when the service did not resolve
	Status  int    // the answer's HTTP status; 0 without an answer
	Outcome string
	// Message is the hook's own message (message, retmsg or msg), when
	// its answer carried one.
	Message string
	// Reason says in a few words why the callout failed, fit for the
	// caller (no addresses): the hook's message or "code N" for a refusal,
	// "timed out after 3s", "answered HTTP 500", ... "" on success.
	Reason  string
	Answer  map[string]any // the decoded answer; nil when it was not JSON
	Raw     []byte         // the answer's body, bounded
	Elapsed time.Duration
	// Err is nil on success; it wraps ErrRefused or ErrUnavailable and
	// gives the full reason, for logs.
	Err error
}

// OK reports whether the hook said yes.
func (r *Result) OK() bool { return r.Err == nil }

// Refused reports whether the hook answered and said no.
func (r *Result) Refused() bool { return errors.Is(r.Err, ErrRefused) }

// Record is the callout as a step result keeps it: never the request body
// (it holds the caller's headers and signatures).
func (r *Result) Record() map[string]any {
	m := map[string]any{"hook": r.Hook, "outcome": r.Outcome}
	if r.URL != "" {
		m["method"], m["url"] = r.Method, r.URL
	}
	if r.Status != 0 {
		m["status"] = r.Status
	}
	if r.Message != "" {
		m["message"] = r.Message
	}
	m["elapsedMs"] = float64(r.Elapsed.Microseconds()) / 1000
	return m
}

// Call sends body as JSON to the hook service and reads the answer. traceID
// goes out in X-Trace-Id. The call is bounded by hooks.timeout.
func (c *Caller) Call(ctx context.Context, hook, traceID string, body any) *Result {
	return c.call(ctx, hook, traceID, body, nil)
}

// call is Call; check, when given, reads a successful answer and names
// what is missing from it ("" when nothing is), turning it into an error.
func (c *Caller) call(ctx context.Context, hook, traceID string, body any, check func(answer map[string]any) string) *Result {
	started := time.Now()
	res := &Result{Hook: hook, Method: http.MethodPost}
	c.do(ctx, res, traceID, body)
	if res.Err == nil && check != nil {
		if reason := check(res.Answer); reason != "" {
			res.fail(OutcomeError, reason, nil)
		}
	}
	res.Elapsed = time.Since(started)
	if c != nil && c.metrics != nil {
		c.metrics.HookCalls.WithLabelValues(hook, res.Outcome).Inc()
		c.metrics.HookDuration.WithLabelValues(hook).Observe(res.Elapsed.Seconds())
	}
	return res
}

func (c *Caller) do(ctx context.Context, res *Result, traceID string, body any) {
	if c == nil || c.services == nil {
		res.fail(OutcomeNotRegistered, "the service registry is not available", ErrNoRegistry)
		return
	}
	timeout := c.settings.Timeout.D()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ep, err := c.services.Resolve(actx, c.settings.Server, res.Hook)
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			res.fail(OutcomeNotRegistered, fmt.Sprintf("service %s is not registered on server %s", res.Hook, strings.ToUpper(c.settings.Server)), err)
			return
		}
		c.transportFail(ctx, actx, res, timeout, fmt.Errorf("resolving the service: %w", err))
		return
	}
	if ep.Service.Method != "" {
		res.Method = strings.ToUpper(ep.Service.Method)
	}
	res.URL = ep.URL()
	u := res.URL
	if len(ep.Service.Params) > 0 {
		pu, err := url.Parse(u)
		if err != nil {
			res.fail(OutcomeError, "the registered service has a bad address", err)
			return
		}
		q := pu.Query()
		for k, v := range ep.Service.Params {
			q.Set(k, v)
		}
		pu.RawQuery = q.Encode()
		u = pu.String()
	}
	payload, err := encode(body, ep.Service.Data)
	if err != nil {
		// The bodies of this package always marshal: a registered data
		// value must have failed.
		res.fail(OutcomeError, "the request could not be encoded", err)
		return
	}
	var sp *tracing.Span
	if tracing.Recording(actx) {
		actx, sp = tracing.Start(actx, "hook "+res.Hook, trace.SpanKindClient, attribute.String("databus.hook", res.Hook))
		defer endSpan(sp, res)
	}
	req, err := http.NewRequestWithContext(actx, res.Method, u, bytes.NewReader(payload))
	if err != nil {
		res.fail(OutcomeError, "the registered service has a bad address", err)
		return
	}
	if sp != nil {
		sp.Set(tracing.ClientAttrs(res.Method, req.URL)...)
	}
	for k, v := range ep.Service.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if traceID != "" {
		req.Header.Set("X-Trace-Id", traceID)
	}
	tracing.Inject(actx, req.Header)
	resp, err := c.client.Do(req)
	if err != nil {
		c.transportFail(ctx, actx, res, timeout, err)
		return
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		c.transportFail(ctx, actx, res, timeout, err)
		return
	}
	if len(raw) > maxAnswer {
		res.fail(OutcomeError, fmt.Sprintf("the answer is larger than %d bytes", maxAnswer), nil)
		return
	}
	res.Raw = raw
	res.Answer = decodeAnswer(raw)
	res.Message = messageOf(res.Answer)
	if resp.StatusCode != http.StatusOK {
		res.fail(OutcomeError, fmt.Sprintf("answered HTTP %d", resp.StatusCode), nil)
		return
	}
	if res.Answer == nil {
		res.fail(OutcomeError, "the answer is not a JSON object", nil)
		return
	}
	code, ok := res.Answer["code"].(json.Number)
	if !ok {
		res.fail(OutcomeError, "the answer has no numeric code", nil)
		return
	}
	if f, err := code.Float64(); err != nil || f != 0 {
		res.Outcome, res.Reason = OutcomeRefused, res.Message
		if res.Reason == "" {
			res.Reason = "code " + code.String()
		}
		res.Err = fmt.Errorf("%s %w: %s", res.Hook, ErrRefused, res.Reason)
		return
	}
	res.Outcome = OutcomeOK
}

// encode marshals body, adding the registered service's data fields beside
// the hook's own, which win (FATE Flow merges them the same way).
func encode(body any, data map[string]any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil || len(data) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return b, nil // not an object: nothing to merge into
	}
	for k, v := range data {
		if _, own := m[k]; own {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = raw
	}
	return json.Marshal(m)
}

// fail marks res failed without an answer in the protocol. Err adds the
// hook's own message, when an error answer carried one, and the cause.
func (r *Result) fail(outcome, reason string, cause error) {
	r.Outcome, r.Reason = outcome, reason
	detail := reason
	if r.Message != "" {
		detail += " (" + r.Message + ")"
	}
	if cause != nil {
		r.Err = fmt.Errorf("%s %w: %s: %w", r.Hook, ErrUnavailable, detail, cause)
		return
	}
	r.Err = fmt.Errorf("%s %w: %s", r.Hook, ErrUnavailable, detail)
}

// transportFail names a call that got no answer: a timeout (also wrapping
// context.DeadlineExceeded), the caller gone, or a transport error.
func (c *Caller) transportFail(parent, actx context.Context, res *Result, timeout time.Duration, err error) {
	switch {
	case parent.Err() != nil:
		res.fail(OutcomeError, "the request was cancelled", parent.Err())
	case actx.Err() != nil || fault.Of(err) == fault.Timeout:
		res.fail(OutcomeTimeout, fmt.Sprintf("timed out after %s", timeout), fmt.Errorf("%w (%v)", context.DeadlineExceeded, err))
	default:
		res.fail(OutcomeError, transportReason(err), err)
	}
}

// transportReason shortens a transport error for the caller: no addresses.
// endSpan ends a callout's span with its outcome.
func endSpan(sp *tracing.Span, res *Result) {
	sp.Set(attribute.String("databus.hook.outcome", res.Outcome))
	if res.Status != 0 {
		sp.Set(attribute.Int("http.response.status_code", res.Status))
	}
	if res.Err != nil {
		sp.Fail(res.Reason)
	}
	sp.End()
}

func transportReason(err error) string {
	switch fault.Of(err) {
	case fault.Refused:
		return "the hook service refused the connection"
	case fault.Closed:
		return "the hook service closed the connection"
	case fault.HostNotFound:
		return "the hook service's host was not found"
	}
	return "the hook service could not be reached"
}

// decodeAnswer decodes a JSON object, numbers kept as json.Number; nil when
// raw is not one.
func decodeAnswer(raw []byte) map[string]any {
	if !json.Valid(raw) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil
	}
	return m
}

// messageOf is the answer's message: message, retmsg or msg, the first
// that is a non-empty string.
func messageOf(answer map[string]any) string {
	for _, k := range []string{"message", "retmsg", "msg"} {
		if s, ok := answer[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}
