package sandbox

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/portal"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

// SessionOptions configure a Session.
type SessionOptions struct {
	// Responder answers the session's outbound calls; nil: every call is
	// answered StatusNoStub.
	Responder Responder
	// Services are what the session's registry holds (service steps and
	// hooks resolve through it); the others are not found, as in a
	// gateway whose registry lacks them.
	Services []registry.Service
	// RemoteAddr is the address every request of the session comes from;
	// default 127.0.0.1:40000.
	RemoteAddr string
	// Trusted takes the caller's ZT-App-Id without proof (portal.Options
	// Trusted): for recorded traffic, whose signatures cannot be made
	// again.
	Trusted bool
	// Now is the portal's clock; nil: time.Now.
	Now func() time.Time
	// Keys are the keys the session's portal knows credentials by, by
	// appId, instead of their own: a sandbox reads no secret outside the
	// repository (config.SecretRef.ResolveInRepo), so a test signs with
	// keys of its own and the portal verifies with them.
	Keys map[string]Keys
}

// Keys are a credential's keys in a session.
type Keys struct {
	Encryption []byte
	Signature  []byte // nil: the encryption key signs (HMAC-SHA256)
}

// Session runs requests with its own portal, stores and stubs.
type Session struct {
	sb      *Sandbox
	snap    *snapshot.Snapshot // the Sandbox's, with the session's keys
	o       SessionOptions
	portal  *portal.Handler
	log     *recorder
	exclude sync.Mutex // one request at a time: its calls are its own

	mu    sync.Mutex
	calls []*Call
}

// Session starts a session on the Sandbox's Snapshot.
func (s *Sandbox) Session(o SessionOptions) *Session {
	if o.RemoteAddr == "" {
		o.RemoteAddr = "127.0.0.1:40000"
	}
	ss := &Session{sb: s, o: o, log: &recorder{}}
	snap := s.snap
	if len(o.Keys) > 0 {
		creds := make(map[string]*snapshot.Credential, len(snap.Credentials))
		for id, c := range snap.Credentials {
			creds[id] = c
			if k, ok := o.Keys[id]; ok {
				creds[id] = snapshot.WithKeys(c, k.Encryption, k.Signature)
			}
		}
		snap = snap.WithCredentials(creds)
	}
	ss.snap = snap
	ss.portal = portal.New(func() *snapshot.Snapshot { return snap }, portal.Options{
		Nonces:    security.NewMemoryNonces(0),
		Limits:    ratelimit.NewMemory(0),
		AccessLog: ss.log,
		Now:       o.Now,
		Trusted:   o.Trusted,
	})
	return ss
}

// Exchange is one request through the session's portal.
type Exchange struct {
	Status int
	Header http.Header
	Body   []byte // as the caller received it (encrypted when the answer is)
	// Record is the request's access-log record; nil when
	// apiPortal.enableAudit is off.
	Record *store.Record
	// Calls are the outbound calls the request made, in order.
	Calls []*Call
}

// Do sends r (a request as a third party sends it, its path under the
// portal's base path) through the session's portal. The requests of one
// session run one at a time.
func (ss *Session) Do(r *http.Request) *Exchange {
	ss.exclude.Lock()
	defer ss.exclude.Unlock()
	ss.mu.Lock()
	ss.calls = nil
	ss.mu.Unlock()
	ss.log.take()
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, ss))
	r.RemoteAddr = ss.o.RemoteAddr // the session's caller, whoever built r
	w := httptest.NewRecorder()
	ss.portal.ServeHTTP(w, r)
	x := &Exchange{Status: w.Code, Header: w.Header(), Body: w.Body.Bytes(), Record: ss.log.take()}
	ss.mu.Lock()
	x.Calls = ss.calls
	ss.calls = nil
	ss.mu.Unlock()
	return x
}

// Snapshot is what the session's requests run on.
func (ss *Session) Snapshot() *snapshot.Snapshot { return ss.snap }

// Credential is the credential appID as the session's portal knows it
// (the session's keys, else its own resolved from the repository), or nil.
func (ss *Session) Credential(appID string) *snapshot.Credential {
	return ss.snap.Credentials[appID]
}

func (ss *Session) record(c *Call) {
	ss.mu.Lock()
	if len(ss.calls) < MaxCalls {
		ss.calls = append(ss.calls, c)
	}
	ss.mu.Unlock()
}

func (ss *Session) answer(ctx context.Context, c *Call) Answer {
	ss.record(c)
	if ss.o.Responder == nil {
		return Answer{Status: StatusNoStub, Body: []byte(`{"error":"no stub answers this call"}`)}
	}
	return ss.o.Responder.Answer(ctx, c)
}

// recorder is the session's access log: the last request's record.
type recorder struct {
	mu  sync.Mutex
	rec *store.Record
}

func (r *recorder) Append(rec *store.Record) {
	r.mu.Lock()
	r.rec = rec
	r.mu.Unlock()
}

func (r *recorder) take() *store.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.rec
	r.rec = nil
	return rec
}

type sessionKey struct{}

func sessionOf(ctx context.Context) *Session {
	ss, _ := ctx.Value(sessionKey{}).(*Session)
	return ss
}

// services is the registry of service steps and hooks: the services of
// the session the call belongs to, each at a host of its own that the
// transport recognises.
type services struct{}

func (services) Resolve(ctx context.Context, server, name string) (registry.Endpoint, error) {
	ss := sessionOf(ctx)
	if ss == nil {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	for i, svc := range ss.o.Services {
		if strings.EqualFold(svc.ServerName, server) && svc.ServiceName == name {
			uri := svc.URI
			if uri == "" {
				uri = "/" + name
			}
			svc.URI = uri
			return registry.Endpoint{Server: registry.Server{Name: strings.ToUpper(server), Host: serviceHost(i), Port: 80, Protocol: "http"}, Service: svc}, nil
		}
	}
	return registry.Endpoint{}, registry.NotFound(server, name)
}

// reroute sends every request to the HTTP stub server, with a token that
// tells it which session's call it is.
type reroute struct {
	s    *Sandbox
	base *http.Transport
}

func (t *reroute) RoundTrip(r *http.Request) (*http.Response, error) {
	ss := sessionOf(r.Context())
	if ss == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ErrNoSession
	}
	c := &Call{Step: flow.StepOf(r.Context()), Kind: KindHTTP, Method: r.Method, URL: r.URL.String()}
	if i, ok := serviceIndex(r.URL.Hostname()); ok && i < len(ss.o.Services) {
		svc := ss.o.Services[i]
		c.Server, c.Service = strings.ToUpper(svc.ServerName), svc.ServiceName
		c.Kind = KindService
		if c.Step == "" {
			c.Kind = KindHook
		}
	}
	tok := t.s.register(&pending{sess: ss, call: c})
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host = "http", t.s.httpLn.Addr().String()
	out.Host = r.URL.Host
	out.Header = r.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Header.Set(tokenHeader, tok)
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		t.s.forget(tok)
	}
	return resp, err
}

// serveStub is the HTTP stub server: it finds the call by its token,
// records what arrived and answers what the session's Responder says.
func (s *Sandbox) serveStub(w http.ResponseWriter, r *http.Request) {
	p := s.take(r.Header.Get(tokenHeader))
	if p == nil {
		http.Error(w, "not a sandbox call", http.StatusBadGateway)
		return
	}
	r.Header.Del(tokenHeader)
	c := p.call
	c.Header = r.Header
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxStubBody+1))
	if err == nil && len(body) > MaxStubBody {
		body, c.Truncated = body[:MaxStubBody], true
	}
	c.Body = body
	a := p.sess.answer(r.Context(), c)
	if !wait(r.Context(), a) {
		return
	}
	if a.Reset {
		reset(w)
		return
	}
	for k, vs := range a.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	if w.Header().Get("Content-Type") == "" && len(a.Body) > 0 {
		w.Header().Set("Content-Type", sniff(a.Body))
	}
	w.WriteHeader(status)
	w.Write(a.Body)
}

// wait holds the answer for its delay, or for ever when it hangs; false
// when the caller gave up first.
func wait(ctx context.Context, a Answer) bool {
	if a.Hang {
		<-ctx.Done()
		return false
	}
	if a.Delay <= 0 {
		return true
	}
	t := time.NewTimer(a.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reset closes the connection without an answer; with SO_LINGER 0 the
// peer sees a reset.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func sniff(b []byte) string {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return "application/json"
	}
	return http.DetectContentType(b)
}
