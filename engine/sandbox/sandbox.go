// Package sandbox runs portal requests against a config repository in
// process, with every outbound call answered by stubs on loopback. The one
// gate builds the Snapshot (gate.Sandbox mode); each Session has its own
// portal handler (the real chain: security, tenant, anonymous user, hooks,
// rate limits on embedded stores private to the session) and records what
// its requests did. databus test and databus replay run on it; nothing
// outside the machine is called.
//
// Outbound HTTP calls (http steps, registry services, hook callouts) go
// through a transport that sends each one to the sandbox's HTTP stub server
// on 127.0.0.1, whatever host it names; gRPC calls of rpc steps go to its
// gRPC stub server. The stub servers ask the Session that made the call
// what to answer (its Responder) and record what they received.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/rpc/protoset"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Call kinds.
const (
	KindHTTP    = "http"    // an http step's url
	KindService = "service" // an http or rpc step's registry service
	KindHook    = "hook"    // a hook callout through the registry
	KindRPC     = "rpc"     // an rpc step's target
)

// Call is one outbound call as the stub server received it.
type Call struct {
	Step string // the flow step that made it; "" for a hook callout
	Kind string
	// Server and Service name the registry entry of a service or hook call.
	Server, Service string
	Method          string // HTTP method; rpc: the full method /pkg.Svc/Method
	URL             string // what the flow called, before rerouting; rpc: the target
	Header          http.Header
	Body            []byte // rpc: the request message as JSON
	// Truncated: the body was longer than MaxStubBody and was cut.
	Truncated bool
}

// Answer is what a stub answers.
type Answer struct {
	Status int // HTTP status; 0: 200
	Code   int // rpc: the gRPC status code; 0: OK
	Header http.Header
	Body   []byte // rpc: the reply message as JSON
	// Delay waits before answering; the wait ends early when the caller
	// gives up.
	Delay time.Duration
	Hang  bool // never answer: the caller's timeout fires
	Reset bool // close the connection without answering
}

// Responder decides what a session's stubs answer.
type Responder interface {
	Answer(ctx context.Context, c *Call) Answer
}

// ResponderFunc adapts a function to Responder.
type ResponderFunc func(ctx context.Context, c *Call) Answer

// Answer calls f.
func (f ResponderFunc) Answer(ctx context.Context, c *Call) Answer { return f(ctx, c) }

var _ Responder = ResponderFunc(nil)

// StatusNoStub answers a call no stub matched (a Session without a
// Responder): a status no real upstream sends, so it is recognised.
const StatusNoStub = 599

// Bounds of what the stubs hold.
const (
	// MaxStubBody bounds a request body the stub server keeps of one call.
	MaxStubBody = 4 << 20
	// MaxCalls bounds the calls a session records; later ones are answered
	// but not kept.
	MaxCalls = 10000
)

// Options configure a Sandbox.
type Options struct {
	Logger *slog.Logger // nil: discard
}

// Sandbox is a config repository built for sessions to run requests on.
type Sandbox struct {
	snap    *snapshot.Snapshot
	httpSrv *http.Server
	httpLn  net.Listener
	grpc    *grpcStub
	rpcPool *rpc.Pool
	client  *http.Client

	mu      sync.Mutex
	pending map[string]*pending // calls on their way to the stub server, by token
	seq     uint64
	methods map[string]*protoset.Method // rpc steps' descriptors, by full method
}

// Open builds dir through the gate (gate.Sandbox mode) and starts the stub
// servers. When the repository is refused, the Sandbox is nil and the
// result holds the findings; err is for what could not be started.
func Open(ctx context.Context, dir string, o Options) (*Sandbox, gate.Result, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sandbox{pending: map[string]*pending{}, methods: map[string]*protoset.Method{}}
	if err := s.startHTTP(); err != nil {
		return nil, gate.Result{}, err
	}
	g, err := startGRPC(s)
	if err != nil {
		s.httpSrv.Close()
		return nil, gate.Result{}, err
	}
	s.grpc = g
	s.client = &http.Client{Transport: &reroute{s: s, base: s.loopTransport()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	s.rpcPool = rpc.NewPool(g.dialOptions()...)
	res := gate.Build(ctx, dir, gate.Options{Mode: gate.Sandbox, Services: services{}, Logger: o.Logger,
		Sandbox: gate.SandboxDeps{Client: s.client, RPC: s.rpcPool}})
	if res.Snapshot == nil {
		s.stop()
		return nil, res, nil
	}
	s.snap = res.Snapshot
	s.indexMethods()
	return s, res, nil
}

// Snapshot is what the gate built.
func (s *Sandbox) Snapshot() *snapshot.Snapshot { return s.snap }

// Close stops the stub servers.
func (s *Sandbox) Close() {
	s.stop()
	if s.snap != nil {
		s.snap.Discard()
	}
}

func (s *Sandbox) stop() {
	s.httpSrv.Close()
	if s.grpc != nil {
		s.grpc.stop()
	}
	if s.rpcPool != nil {
		s.rpcPool.Close()
	}
	s.client.CloseIdleConnections()
}

// indexMethods learns the descriptors of rpc steps that name a descriptor
// set: the gRPC stub decodes and encodes their messages with them.
func (s *Sandbox) indexMethods() {
	for _, api := range s.snap.Repo.APIs {
		for i := range api.Steps {
			if r := api.Steps[i].RPC; r != nil && r.Descriptor != nil {
				s.methods[r.Descriptor.FullName()] = r.Descriptor
			}
		}
	}
}

func (s *Sandbox) startHTTP() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("sandbox: http stub server: %w", err)
	}
	s.httpLn = ln
	s.httpSrv = &http.Server{Handler: http.HandlerFunc(s.serveStub), ReadHeaderTimeout: 10 * time.Second}
	go s.httpSrv.Serve(ln)
	return nil
}

// loopTransport dials the HTTP stub server, whatever address it is asked
// for.
func (s *Sandbox) loopTransport() *http.Transport {
	addr := s.httpLn.Addr().String()
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
}

// pending is a call between the transport and the stub server.
type pending struct {
	sess *Session
	call *Call
}

// tokenHeader carries a call's token from the transport to the stub
// server, which removes it before anyone sees the call.
const tokenHeader = "X-Databus-Sandbox-Call"

func (s *Sandbox) register(p *pending) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	tok := strconv.FormatUint(s.seq, 36)
	s.pending[tok] = p
	return tok
}

func (s *Sandbox) take(tok string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[tok]
	delete(s.pending, tok)
	return p
}

func (s *Sandbox) forget(tok string) {
	s.mu.Lock()
	delete(s.pending, tok)
	s.mu.Unlock()
}

// serviceHost is the host a session's registry gives its i-th service:
// the transport knows the call by it.
const serviceSuffix = ".sandbox.invalid"

func serviceHost(i int) string { return "svc" + strconv.Itoa(i) + serviceSuffix }

func serviceIndex(host string) (int, bool) {
	h, ok := strings.CutSuffix(strings.ToLower(host), serviceSuffix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimPrefix(h, "svc"))
	return n, err == nil && strings.HasPrefix(h, "svc")
}

// ErrNoSession is the failure of an outbound call made outside a session.
var ErrNoSession = errors.New("sandbox: outbound call outside a session")
