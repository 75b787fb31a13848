package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/sandbox"
	"github.com/databus-gateway/databus/internal/jsonvalue"
)

// portalHost is the host the case's requests name; the session's portal
// answers whatever the host.
const portalHost = "http://databus.test"

// stubs answers a case's outbound calls from its stubs and records which
// stub answered what.
type stubs struct {
	list []config.TestStub
	// steps of the API that use a registry service: a step stub answers
	// them too.
	mu        sync.Mutex
	got       [][]*sandbox.Call // by stub
	unmatched []*sandbox.Call
}

// match returns the stub that answers c: the stub of its step first, then
// one whose url (and method) it called, then one of its registry service.
func (s *stubs) match(c *sandbox.Call) int {
	if c.Step != "" {
		for i, st := range s.list {
			if st.Step == c.Step {
				return i
			}
		}
	}
	for i, st := range s.list {
		if st.URL != "" && urlMatches(st.URL, c.URL) && methodMatches(st.Method, c.Method) {
			return i
		}
	}
	for i, st := range s.list {
		if st.Service != nil && strings.EqualFold(st.Service.Server, c.Server) && st.Service.Name == c.Service && methodMatches(st.Method, c.Method) {
			return i
		}
	}
	return -1
}

func urlMatches(want, got string) bool {
	if want == got {
		return true
	}
	if !strings.Contains(want, "?") {
		got, _, _ = strings.Cut(got, "?")
	}
	return strings.TrimSuffix(want, "/") == strings.TrimSuffix(got, "/")
}

func methodMatches(want, got string) bool {
	return want == "" || strings.EqualFold(want, got) || strings.TrimPrefix(want, "/") == strings.TrimPrefix(got, "/")
}

func (s *stubs) Answer(_ context.Context, c *sandbox.Call) sandbox.Answer {
	i := s.match(c)
	s.mu.Lock()
	n := 0
	if i < 0 {
		s.unmatched = append(s.unmatched, c)
	} else {
		n = len(s.got[i])
		s.got[i] = append(s.got[i], c)
	}
	s.mu.Unlock()
	if i < 0 {
		return sandbox.Answer{Status: sandbox.StatusNoStub, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"error":"no stub of the test answers this call"}`)}
	}
	seq := s.list[i].Answers()
	st := &seq[min(n, len(seq)-1)] // the nth call gets the nth answer; the last repeats
	a := sandbox.Answer{Status: st.Status, Code: st.Code, Delay: st.Delay.D(), Hang: st.Hang, Reset: st.Reset, Header: http.Header{}}
	for k, v := range st.Headers {
		a.Header.Set(k, v)
	}
	switch {
	case st.RawBody != nil:
		a.Body = []byte(*st.RawBody)
	case st.HasBody:
		a.Body, _ = json.Marshal(st.Body)
		if a.Header.Get("Content-Type") == "" {
			a.Header.Set("Content-Type", "application/json")
		}
	}
	return a
}

// runCase runs one case and records its outcome in r.
func runCase(ctx context.Context, sb *sandbox.Sandbox, t *config.ApiTest, c *config.TestCase, r *CaseResult) {
	defer r.finish()
	snap := sb.Snapshot()
	repo := snap.Repo
	pl := c.Places
	code, version, _ := config.ParseAPIRef(r.API)
	api := repo.API(code, version)
	if api == nil { // validate refuses this; a Snapshot built elsewhere might not
		r.mistake(pl.Case, "api", "API %s not found in %s/", r.API, config.APIsDir)
		return
	}
	e := c.Expect
	if e == nil {
		e = &config.TestExpect{}
	}
	if api.Status != config.StatusOnline && e.Code != http.StatusNotFound {
		r.mistake(pl.Case, "api", "API %s is %s: only online APIs are served, every call answers 404 (set status: online, or expect code 404)", r.API, api.Status)
		return
	}
	timeout := c.Timeout.D()
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r.redact = newRedactor(snap.Settings.Storage.AccessLog.RedactHeaders)
	st := &stubs{list: c.Stubs, got: make([][]*sandbox.Call, len(c.Stubs))}
	so := sandbox.SessionOptions{Responder: st, Services: services(api, c.Stubs)}
	if ra := c.Request.RemoteAddr; ra != "" {
		if !strings.Contains(ra, ":") || strings.Count(ra, ":") > 1 && !strings.HasPrefix(ra, "[") {
			ra = joinHostPort(ra)
		}
		so.RemoteAddr = ra
	}
	send, decode, keys, err := newSender(repo, snap.Settings, t, c, api)
	if err != nil {
		r.mistake(pl.Case, "credential", "%v", err)
		return
	}
	if keys != nil {
		// The portal verifies with the case's keys: in a sandbox the
		// credential's own secret (env:, a file elsewhere) is not read.
		so.Keys = map[string]sandbox.Keys{t.CredentialOf(c): *keys}
	}
	ss := sb.Session(so)
	repeat := max(c.Repeat, 1)
	var last *sandbox.Exchange
	var answers []int
	for i := 0; i < repeat; i++ {
		req, err := send(ctx)
		if err != nil {
			r.mistake(pl.Case, "request", "%v", err)
			return
		}
		last = ss.Do(req)
		answers = append(answers, last.Status)
		if ctx.Err() != nil {
			r.fail(pl.Case, "timeout", "the case did not finish within its timeout %s (send %d of %d)", timeout, i+1, repeat)
			return
		}
	}
	env, err := decode(last)
	if err != nil {
		r.fail(pl.Case, "answer", "%v", err)
		return
	}
	checkExpect(r, pl, e, c.ExpectPrograms(), api, env, last, answers)
	checkStubs(ctx, r, pl, c, st)
}

// services lists what the session's registry holds: the services of the
// stubs, and those of the steps the stubs answer by id.
func services(api *config.Api, list []config.TestStub) []registry.Service {
	var out []registry.Service
	seen := map[string]bool{}
	add := func(server, name, method string) {
		k := strings.ToUpper(server) + "/" + name
		if !seen[k] {
			seen[k] = true
			out = append(out, registry.Service{ServerName: server, ServiceName: name, Method: strings.ToUpper(method)})
		}
	}
	for _, s := range list {
		if s.Service != nil {
			add(s.Service.Server, s.Service.Name, s.Method)
		}
		if s.Step == "" {
			continue
		}
		for _, step := range api.Steps {
			if step.ID != s.Step {
				continue
			}
			switch {
			case step.HTTP != nil && step.HTTP.Service != nil:
				add(step.HTTP.Service.Server, step.HTTP.Service.Name, step.HTTP.Method)
			case step.RPC != nil && step.RPC.Service != nil:
				add(step.RPC.Service.Server, step.RPC.Service.Name, "")
			}
		}
	}
	return out
}

func joinHostPort(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:40000"
	}
	return host + ":40000"
}

// envelope is the decoded answer.
type envelope struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	Response any    `json:"response"`
	TraceID  string `json:"traceId"`
	// encrypted: the answer came encrypted with the credential's key.
	encrypted bool
}

// newSender prepares how the case's requests are made and answers read:
// signed and encrypted with the credential (its own keys, or the case's),
// or plain when the case names no credential. keys is what the session's
// portal must know the credential by: the keys signing, when the case
// gives keys of its own; nil otherwise.
func newSender(repo *config.Repository, st *config.Settings, t *config.ApiTest, c *config.TestCase, api *config.Api) (send func(context.Context) (*http.Request, error), decode func(*sandbox.Exchange) (*envelope, error), keys *sandbox.Keys, err error) {
	q := &c.Request
	method := q.Method
	if method == "" {
		method = api.Methods[0]
		for _, m := range api.Methods {
			if m == http.MethodPost {
				method = m
			}
		}
	}
	var body []byte
	switch {
	case q.RawBody != nil:
		body = []byte(*q.RawBody)
	case q.HasBody:
		body, _ = json.Marshal(q.Body)
	}
	var query url.Values
	if len(q.Query) > 0 {
		query = url.Values{}
		for k, v := range q.Query {
			query.Set(k, v)
		}
	}
	tenantHeader := st.APIPortal.TenantHeader
	base := portalHost + st.APIPortal.BasePath
	finish := func(req *http.Request) {
		if q.Tenant != "" {
			req.Header.Set(tenantHeader, q.Tenant)
		}
		for k, v := range q.Headers {
			req.Header.Set(k, v)
		}
	}
	app := t.CredentialOf(c)
	if app == "" {
		u := base + "/" + url.PathEscape(api.Code) + "/" + url.PathEscape(api.Version)
		if len(query) > 0 {
			u += "?" + query.Encode()
		}
		send = func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			if len(body) > 0 {
				req.Header.Set("Content-Type", "application/json")
			}
			finish(req)
			return req, nil
		}
		decode = func(x *sandbox.Exchange) (*envelope, error) { return decodePlain(x.Status, x.Body) }
		return send, decode, nil, nil
	}
	cred := repo.Credential(app)
	if cred == nil {
		return nil, nil, nil, fmt.Errorf("credential %q not found in %s/", app, config.CredentialsDir)
	}
	cc := client.Credential{AppID: app, SignatureType: cred.SignatureType, EncryptionType: cred.EncryptionType}
	if cc.EncryptionKey, err = key(repo.Dir, c, "encryption", cred.EncryptionKey); err != nil {
		return nil, nil, nil, err
	}
	if cc.SignatureKey, err = key(repo.Dir, c, "signature", cred.SignatureKey); err != nil {
		return nil, nil, nil, err
	}
	if c.Keys != nil && (c.Keys.Encryption != nil || c.Keys.Signature != nil) {
		keys = &sandbox.Keys{Encryption: cc.EncryptionKey, Signature: cc.SignatureKey}
	}
	cl := &client.Client{BaseURL: base, Credential: cc}
	if off := time.Duration(q.ClockOffset); off != 0 {
		cl.Now = func() time.Time { return time.Now().Add(off) }
	}
	if q.Nonce != "" {
		cl.Nonce = func() string { return q.Nonce }
	}
	send = func(ctx context.Context) (*http.Request, error) {
		p, err := cl.Prepare(method, api.ID(), query, body)
		if err != nil {
			return nil, fmt.Errorf("signing with credential %s: %v", app, err)
		}
		req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, bytes.NewReader(p.Body))
		if err != nil {
			return nil, err
		}
		req.Header = p.Header
		finish(req)
		return req, nil
	}
	decode = func(x *sandbox.Exchange) (*envelope, error) {
		if !strings.HasPrefix(x.Header.Get("Content-Type"), "text/plain") {
			return decodePlain(x.Status, x.Body)
		}
		resp, err := cl.Decode(x.Status, x.Header, x.Body)
		if err != nil {
			return nil, err
		}
		env, err := decodePlain(x.Status, resp.Raw)
		if env != nil {
			env.encrypted = true
		}
		return env, err
	}
	return send, decode, keys, nil
}

// key returns the case's key of kind when it gives one, else the
// credential's (nil when the credential has none).
func key(dir string, c *config.TestCase, kind string, ref *config.SecretRef) ([]byte, error) {
	if c.Keys != nil {
		k := c.Keys.Encryption
		if kind == "signature" {
			k = c.Keys.Signature
		}
		if k != nil {
			b, err := k.Resolve(dir)
			if err != nil {
				return nil, fmt.Errorf("keys.%s: %v", kind, err)
			}
			return b, nil
		}
	}
	if ref == nil {
		return nil, nil
	}
	b, err := ref.ResolveInRepo(dir) // as the sandbox's portal reads it
	if err != nil {
		return nil, fmt.Errorf("the credential's %s key does not resolve (%v): provide it, or give the case keys.%s", kind, err, kind)
	}
	return b, nil
}

func decodePlain(status int, b []byte) (*envelope, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("the answer (HTTP %d) is not an envelope: %.200s", status, b)
	}
	env.Response = normalize(env.Response)
	return &env, nil
}

// checkExpect compares the last answer with the case's expectations.
func checkExpect(r *CaseResult, pl *config.TestPlaces, e *config.TestExpect, compiledAsserts []*expr.Program, api *config.Api, env *envelope, x *sandbox.Exchange, answers []int) {
	if e.Code != 0 && env.Code != e.Code {
		f := r.fail(pl.Line("code"), "expect.code", "expected code %d, got %d (%s)", e.Code, env.Code, env.Message)
		if len(answers) > 1 {
			f.Message += fmt.Sprintf("; the %d answers: %s", len(answers), statuses(answers))
		}
	}
	if len(e.Answers) > 0 {
		if want := config.ExpandAnswers(e.Answers); !slices.Equal(want, answers) {
			r.fail(pl.Line("answers"), "expect.answers", "expected the %d answers %s, got %s", len(want), runs(want), runs(answers))
		}
	}
	if e.Encrypted != nil && env.encrypted != *e.Encrypted {
		how := map[bool]string{true: "encrypted", false: "in plain text"}
		r.fail(pl.Line("encrypted"), "expect.encrypted", "expected the answer %s, it came %s (apiPortal.security.encryptResponse)", how[*e.Encrypted], how[env.encrypted])
	}
	if e.Message != nil && env.Message != *e.Message {
		r.fail(pl.Line("message"), "expect.message", "expected message %q, got %q", *e.Message, env.Message)
	}
	if e.HasResponse {
		want := normalize(e.Response)
		if !jsonvalue.Equal(want, env.Response) {
			f := r.fail(pl.Line("response"), "expect.response", "the response differs")
			f.Expected, f.Actual = pretty(want), pretty(env.Response)
		}
	}
	steps := stepsOf(api, x)
	if e.RanSet {
		var ran []string
		for _, s := range steps {
			if !s.skipped {
				ran = append(ran, s.id)
			}
		}
		if x.Record == nil {
			r.mistake(pl.Line("ran"), "expect.ran", "the steps are read from the access log, which apiPortal.enableAudit turns off")
		} else if !slices.Equal(ran, e.Ran) {
			r.fail(pl.Line("ran"), "expect.ran", "expected the steps [%s] to run, ran [%s]", strings.Join(e.Ran, ", "), strings.Join(ran, ", "))
		}
	}
	if e.SkippedSet {
		var skipped []string
		for _, s := range steps {
			if s.skipped {
				skipped = append(skipped, s.id)
			}
		}
		want := append([]string(nil), e.Skipped...)
		sort.Strings(want)
		sort.Strings(skipped)
		if x.Record == nil {
			r.mistake(pl.Line("skipped"), "expect.skipped", "the steps are read from the access log, which apiPortal.enableAudit turns off")
		} else if !slices.Equal(skipped, want) {
			r.fail(pl.Line("skipped"), "expect.skipped", "expected [%s] skipped, skipped [%s]", strings.Join(want, ", "), strings.Join(skipped, ", "))
		}
	}
	var record map[string]any
	if x.Record != nil {
		b, _ := json.Marshal(x.Record)
		record, _ = decodeJSON(b).(map[string]any)
	}
	if len(e.AccessLog) > 0 {
		if record == nil {
			r.mistake(pl.Line("accessLog"), "expect.accessLog", "no access-log record: apiPortal.enableAudit is off")
		} else {
			keys := make([]string, 0, len(e.AccessLog))
			for k := range e.AccessLog {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				want := normalize(e.AccessLog[k])
				got, ok := record[k]
				if !ok {
					r.mistake(pl.Line("accessLog."+k), "expect.accessLog."+k, "the access-log record has no field %q (fields: %s)", k, strings.Join(sortedKeys(record), ", "))
					continue
				}
				if !jsonvalue.Equal(want, got) {
					f := r.fail(pl.Line("accessLog."+k), "expect.accessLog."+k, "expected %s, got %s", compact(want), compact(got))
					if isComposite(want) || isComposite(got) {
						f.Expected, f.Actual = pretty(want), pretty(got)
					}
				}
			}
		}
	}
	if progs := e.Assert; len(progs) > 0 {
		doc := map[string]any{
			"code": env.Code, "message": env.Message, "response": env.Response, "traceId": env.TraceID,
			"encrypted": env.encrypted, "answers": intsDoc(answers),
			"http":  map[string]any{"status": x.Status, "headers": flatHeader(x.Header)},
			"steps": stepsDoc(steps),
		}
		if record != nil {
			doc["accessLog"] = record
		}
		compiled := programs(e.Assert, compiledAsserts)
		for i, p := range compiled {
			key := fmt.Sprintf("assert[%d]", i)
			if msg := r.assert(p, doc); msg != "" {
				r.fail(pl.Line(key), "expect."+key, "%s", msg)
			}
		}
	}
}

// step is what a flow step did, read from the access-log record.
type step struct {
	id      string
	skipped bool
	status  int
	err     string
	resp    any
}

// stepsOf returns the flow's steps of x, in order (the record also holds
// the chain's hooks and rate limit, which are not steps of the API).
func stepsOf(api *config.Api, x *sandbox.Exchange) []step {
	if x.Record == nil {
		return nil
	}
	ids := map[string]bool{}
	for _, s := range api.Steps {
		ids[s.ID] = true
	}
	var out []step
	for _, s := range x.Record.StepResults {
		if !ids[s.ID] || s.Type == "hook" || s.Type == "policy" {
			continue
		}
		out = append(out, step{id: s.ID, skipped: s.Skipped, status: s.Status, err: s.Error, resp: normalize(roundTrip(s.Response))})
	}
	return out
}

func stepsDoc(steps []step) map[string]any {
	out := map[string]any{}
	for _, s := range steps {
		m := map[string]any{"skipped": s.skipped, "status": s.status, "response": s.resp}
		if s.err != "" {
			m["error"] = s.err
		}
		out[s.id] = m
	}
	return out
}

// checkStubs checks what each stub received, and reports the calls no
// stub answered and the stubs never called.
func checkStubs(ctx context.Context, r *CaseResult, pl *config.TestPlaces, c *config.TestCase, st *stubs) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, call := range st.unmatched {
		r.redact.collect(call.Header)
	}
	for _, got := range st.got {
		for _, call := range got {
			r.redact.collect(call.Header)
		}
	}
	for _, call := range st.unmatched {
		hint := "add a stub with url: " + call.URL
		switch {
		case call.Step != "":
			hint = "add a stub with step: " + call.Step
		case call.Service != "":
			hint = fmt.Sprintf("add a stub with service: {server: %s, name: %s}", call.Server, call.Service)
		}
		r.fail(pl.Case, "stubs", "the flow called %s, which no stub answers (it got %d): %s", describeCall(call), sandbox.StatusNoStub, hint)
	}
	for i := range c.Stubs {
		s := &c.Stubs[i]
		what := fmt.Sprintf("stubs[%d] (%s)", i, s.Describe())
		got := st.got[i]
		e := s.Expect
		if e != nil && e.Calls != nil {
			if len(got) != *e.Calls {
				r.fail(pl.StubLine(i, "expect.calls"), what+": expect.calls", "expected %d calls, got %d", *e.Calls, len(got))
			}
		} else if len(got) == 0 {
			r.mistake(pl.StubLine(i, ""), what, "never called: the flow made no call this stub matches (check step, url and method, or set expect.calls: 0)").consequential = true
			continue
		}
		if e == nil {
			continue
		}
		progs := programs(e.Assert, c.StubPrograms(i))
		for n, call := range got {
			which := what
			if len(got) > 1 {
				which = fmt.Sprintf("%s call %d", what, n+1)
			}
			checkCall(ctx, r, pl, i, which, e, progs, call)
		}
	}
}

// received is what a stub received, as assertions see it.
func received(c *sandbox.Call) map[string]any {
	u, _ := url.Parse(c.URL)
	path, query := c.URL, map[string]any{}
	if u != nil {
		path = u.Path
		for k, vs := range u.Query() {
			query[k] = vs[0]
		}
	}
	if c.Kind == sandbox.KindRPC || (c.Kind == sandbox.KindService && strings.HasPrefix(c.Method, "/")) {
		path = c.Method
	}
	return map[string]any{"method": c.Method, "path": path, "query": query, "headers": flatHeader(c.Header), "body": decodeJSONOrText(c.Body)}
}

func checkCall(_ context.Context, r *CaseResult, pl *config.TestPlaces, i int, what string, e *config.StubExpect, progs []*expr.Program, c *sandbox.Call) {
	got := received(c)
	if e.Method != "" && !methodMatches(e.Method, c.Method) {
		r.fail(pl.StubLine(i, "expect.method"), what+": expect.method", "expected method %s, got %s", e.Method, c.Method)
	}
	if e.Path != "" && got["path"] != e.Path {
		r.fail(pl.StubLine(i, "expect.path"), what+": expect.path", "expected path %s, got %s", e.Path, got["path"])
	}
	q := got["query"].(map[string]any)
	for _, k := range sortedStringKeys(e.Query) {
		if v, ok := q[k]; !ok || v != e.Query[k] {
			r.fail(pl.StubLine(i, "expect.query"), what+": expect.query."+k, "expected query %s=%q, got %s", k, e.Query[k], present(v, ok))
		}
	}
	for _, k := range sortedStringKeys(e.Headers) {
		v, ok := c.Header[http.CanonicalHeaderKey(k)]
		if !ok || len(v) == 0 || v[0] != e.Headers[k] {
			var got any
			if ok && len(v) > 0 {
				got = v[0]
				if r.redact.sensitive(k) {
					got = "***"
				}
			}
			r.fail(pl.StubLine(i, "expect.headers"), what+": expect.headers."+k, "expected header %s: %q, got %s", k, e.Headers[k], present(got, ok))
		}
	}
	if e.HasBody {
		want := normalize(e.Body)
		if !jsonvalue.Equal(want, got["body"]) {
			f := r.fail(pl.StubLine(i, "expect.body"), what+": expect.body", "the body it received differs")
			f.Expected, f.Actual = pretty(want), pretty(got["body"])
		}
	}
	for n, p := range progs {
		key := fmt.Sprintf("expect.assert[%d]", n)
		if msg := r.assert(p, got); msg != "" {
			r.fail(pl.StubLine(i, key), what+": "+key, "%s", msg)
		}
	}
}

func present(v any, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

func describeCall(c *sandbox.Call) string {
	s := c.Method + " " + c.URL
	if c.Step != "" {
		s += " (step " + c.Step + ")"
	} else if c.Kind == sandbox.KindHook {
		s += fmt.Sprintf(" (hook, service %s/%s)", c.Server, c.Service)
	}
	return s
}

// programs compiles assertions the loader did not hand over compiled.
func programs(src []string, compiled []*expr.Program) []*expr.Program {
	out := make([]*expr.Program, len(src))
	for i, s := range src {
		if i < len(compiled) && compiled[i] != nil {
			out[i] = compiled[i]
			continue
		}
		p, err := expr.Compile(s)
		if err != nil {
			continue // validate reports it; the gate refuses the repository
		}
		out[i] = p
	}
	return out
}

// Bounds of one assertion (expect.assert, a stub's expect.assert): a
// contract test compares small values, so a program that runs longer or
// grows the heap further is stopped and fails its case.
const (
	AssertTimeout  = time.Second
	AssertMaxBytes = 64 << 20
)

// assertGuard watches the heap while assertions run.
var assertGuard = expr.NewGuard(nil)

// newAssertBudget returns the budget of a run's assertions. The guard
// watches the whole heap, so the ceiling is AssertMaxBytes above what the
// run held when it started (its Snapshot, the other cases' bodies).
func newAssertBudget() *expr.Budget {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	var base uint64
	if s[0].Value.Kind() == metrics.KindUint64 {
		base = s[0].Value.Uint64()
	}
	return &expr.Budget{Timeout: AssertTimeout, MaxMemoryBytes: base + AssertMaxBytes, Guard: assertGuard}
}

// assert runs an assertion over doc under the run's budget; "" when it
// produced true.
func (r *CaseResult) assert(p *expr.Program, doc map[string]any) string {
	if p == nil {
		return "the assertion does not compile"
	}
	b := r.budget
	if b == nil {
		b = newAssertBudget()
	}
	v, err := p.Bind("", b).Run(context.Background(), doc, nil)
	var be *expr.BudgetError
	switch {
	case errors.As(err, &be) && be.Reason == expr.ReasonMemory:
		return fmt.Sprintf("%s stopped: it grew the heap past the %d MiB an assertion may use (assertions compare small values)", p.Source(), AssertMaxBytes>>20)
	case errors.As(err, &be):
		return fmt.Sprintf("%s stopped: it ran past the %s an assertion may take", p.Source(), AssertTimeout)
	case errors.Is(err, expr.ErrNoOutput):
		return fmt.Sprintf("%s produced no value, not true", p.Source())
	case err != nil:
		return fmt.Sprintf("%s failed: %v", p.Source(), err)
	case v != true:
		return fmt.Sprintf("%s produced %s, not true", p.Source(), compact(v))
	}
	return ""
}

func statuses(list []int) string {
	var b strings.Builder
	for i, s := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, s)
	}
	return b.String()
}

// runs renders statuses compactly: [200 x10, 429].
func runs(list []int) string {
	var parts []string
	for i := 0; i < len(list); {
		j := i
		for j < len(list) && list[j] == list[i] {
			j++
		}
		if j-i == 1 {
			parts = append(parts, fmt.Sprint(list[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d x%d", list[i], j-i))
		}
		i = j
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func intsDoc(list []int) []any {
	out := make([]any, len(list))
	for i, v := range list {
		out[i] = v
	}
	return out
}

func flatHeader(h http.Header) map[string]any {
	out := map[string]any{}
	for k, vs := range h {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedStringKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
