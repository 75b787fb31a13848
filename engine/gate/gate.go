// Package gate is the one place that decides whether a config repository
// is acceptable. Build turns a folder (a checkout, or a git revision's tree
// written to a temporary folder) into a ready Snapshot or a list of
// positioned findings. databus validate, serve at start, every reload (file
// watch, SIGHUP, the refresh endpoint), git sync, rollback, the debug
// invoke of a draft and databus test all call it, so whatever a gateway
// would refuse, validate refuses at the same file:line:column with the same
// message.
//
// Build has no side effects on the running gateway. In Dry mode nothing is
// dialled or opened. In Live mode the resources that outlive a Snapshot
// (Redis clients with their nonce and rate stores, the upstream HTTP
// transport, the gRPC connection pool) are acquired from a reference-
// counted pool into the Snapshot's lease: a refused build releases it, and
// what it created alone is destroyed at once.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/egress"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/hooks"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/tracing"
)

// Mode says whether a build may acquire live resources.
type Mode int

const (
	// Dry builds check everything and acquire nothing: validate, rollback,
	// git sync, tests.
	Dry Mode = iota
	// Live builds acquire the Snapshot's resources from Options.Pool.
	Live
	// Sandbox builds (databus test, replay) acquire nothing: the Snapshot
	// calls out through Options.Sandbox's client and gRPC pool, marks the
	// step of each call (flow.StepOf), and has no nonce or rate-limit
	// stores: each sandbox session brings its own embedded ones.
	Sandbox
)

// The jq budget of a Sandbox build at most, whatever the repository sets
// (gateway.jq's defaults).
const (
	SandboxJQTimeout = time.Second
	SandboxJQMemory  = 1 << 30
)

// SandboxDeps are what a Sandbox build calls out through.
type SandboxDeps struct {
	Client *http.Client
	RPC    *rpc.Pool
}

// Running describes the gateway a build is for: a reload is checked
// against what cannot change while it runs.
type Running struct {
	Boot config.Boot // the boot settings read at start
	// StoragePathFixed: --storage overrides storage.path, which then does
	// not count as a boot setting of the file.
	StoragePathFixed bool
}

// Options configure one build.
type Options struct {
	Mode Mode
	Pool *pool.Pool // Live: where the Snapshot's resources come from
	// Running is the gateway being reloaded; nil at start and for dry
	// checks (nothing to compare boot settings with).
	Running *Running
	// AdminListen is the admin listener's address; when it is not on
	// loopback, the build needs an admin token that resolves. "": not
	// checked.
	AdminListen string
	// Prev is the Snapshot serving: a repository with the same content
	// hash is reported Unchanged without being compiled again, and the
	// flows of unchanged APIs are reused.
	Prev *snapshot.Snapshot
	// Cache carries what earlier loads learnt (config.Cache): only the
	// files that changed are read and parsed. nil: from Prev's load.
	Cache *config.Cache
	// Changed lists the files a file watcher saw change since the
	// Cache's latest load (config.Cache.LoadChanged); nil: unknown.
	Changed  []string
	Git      *revision.Revision // the checkout's revision; nil outside git
	Services registry.Resolver  // what service steps and hooks resolve through
	// Egress guards the upstream dialer: it holds the admin listener's
	// actual address. nil: no guard (dry builds, tests of the gate).
	Egress  *egress.Guard
	Metrics *metrics.Metrics // hooks count their callouts here; nil: not counted
	// Version names this binary in the spans' service.version.
	Version string
	Logger  *slog.Logger // nil: discard
	// Sandbox is what a Sandbox build calls out through.
	Sandbox SandboxDeps
}

// Result is the outcome of a build.
type Result struct {
	// Repo is what could be read (nil when Err is set).
	Repo *config.Repository
	// Snapshot is ready to serve; nil when Diagnostics hold errors, when
	// Err is set, or when Unchanged. A Live Snapshot holds a lease: serve
	// it (snapshot.Holder.Swap) or Discard it.
	Snapshot *snapshot.Snapshot
	// Diagnostics are every finding, warnings included, sorted.
	Diagnostics config.Diagnostics
	// Unchanged: the content is Prev's; nothing was compiled.
	Unchanged bool
	// Err: the folder could not be read as a repository at all.
	Err error
}

// OK reports whether the build produced something to serve (or found the
// content unchanged).
func (r Result) OK() bool { return r.Err == nil && !r.Diagnostics.HasErrors() }

// Check is the dry build of validate, rollback and git sync: the findings
// of dir, from the loader and every later stage.
func Check(ctx context.Context, dir string) (*config.Repository, config.Diagnostics, error) {
	r := Build(ctx, dir, Options{Mode: Dry})
	return r.Repo, r.Diagnostics, r.Err
}

// Build loads dir and, when it is valid, compiles it into a Snapshot.
func Build(ctx context.Context, dir string, o Options) (res Result) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var (
		repo  *config.Repository
		diags config.Diagnostics
		err   error
	)
	switch {
	case o.Cache != nil:
		repo, diags, err = o.Cache.LoadChanged(dir, o.Changed)
	case o.Prev != nil:
		repo, diags, err = config.Reload(dir, o.Prev.Repo)
	default:
		repo, diags, err = config.Load(dir)
	}
	if err == nil && o.Prev != nil && repo.Hash == o.Prev.Revision {
		// The same bytes as the Snapshot serving (found without parsing
		// what did not change): what the gate checked of them then (boot
		// settings, the admin listener) still holds.
		return Result{Repo: o.Prev.Repo, Unchanged: true}
	}
	res.Repo, res.Diagnostics, res.Err = repo, diags, err
	if err != nil || diags.HasErrors() {
		return res
	}
	defer res.Diagnostics.Sort()
	fail := func(d ...config.Diagnostic) Result {
		res.Diagnostics = append(res.Diagnostics, d...)
		return res
	}
	if ds := bootChanges(repo, o.Running); len(ds) > 0 {
		return fail(ds...)
	}
	if err := ctx.Err(); err != nil {
		res.Err = err
		return res
	}
	var lease *pool.Lease
	if o.Mode == Live {
		lease = o.Pool.NewLease()
	}
	deps, fault := acquire(ctx, repo, o, lease)
	if fault != nil {
		lease.Release()
		return fail(fault.Diagnostic(repo))
	}
	deps.Git = o.Git
	deps.Lease = lease
	deps.Prev = o.Prev
	snap, err := snapshot.Build(repo, deps)
	if err != nil {
		lease.Release()
		var f *config.Fault
		if errors.As(err, &f) {
			return fail(f.Diagnostic(repo))
		}
		return fail(config.Diagnostic{File: config.SettingsFile, Line: 1, Column: 1, Severity: config.SevError, Message: err.Error()})
	}
	if d, bad := adminBind(repo, snap, o.AdminListen); bad {
		snap.Discard()
		return fail(d)
	}
	res.Snapshot = snap
	return res
}

// bootChanges refuses a reload that changes a boot setting.
func bootChanges(repo *config.Repository, run *Running) []config.Diagnostic {
	if run == nil {
		return nil
	}
	var out []config.Diagnostic
	for _, c := range run.Boot.Changes(repo.Settings.Boot(), run.StoragePathFixed) {
		out = append(out, repo.Place(config.SettingsFile, c.Pointer, 0, 0, config.SevError,
			fmt.Sprintf("%s is a boot setting: the gateway runs with %q; restart to apply %q", c.Key, c.From, c.To)))
	}
	return out
}

// adminBind: an admin listener that is not on loopback needs a token.
func adminBind(repo *config.Repository, snap *snapshot.Snapshot, addr string) (config.Diagnostic, bool) {
	if addr == "" || len(snap.AdminTokens) > 0 || Loopback(addr) {
		return config.Diagnostic{}, false
	}
	msg := fmt.Sprintf("the admin listener %s is not on loopback: admin.tokens needs at least one token whose secret resolves (or bind it to loopback, e.g. --admin-listen 127.0.0.1:8081)", addr)
	if len(snap.AdminTokenProblems) > 0 {
		var names []string
		for n, p := range snap.AdminTokenProblems {
			names = append(names, n+": "+p)
		}
		msg += "; unresolved: " + strings.Join(names, "; ")
	}
	return repo.Place(config.SettingsFile, "/admin/tokens", 0, 0, config.SevError, msg), true
}

// Loopback reports whether a listen address binds only to loopback.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// acquire gathers what the Snapshot needs: in Live mode from the pool into
// lease, in Dry mode only checked.
func acquire(ctx context.Context, repo *config.Repository, o Options, lease *pool.Lease) (snapshot.Deps, *config.Fault) {
	st := repo.Settings
	wc := st.Gateway.WebClient
	env := &flow.Env{DefaultTimeout: wc.Timeout.D(), MaxResponseBytes: wc.MaxResponseBytes, Services: o.Services,
		JQ: &expr.Budget{Timeout: st.Gateway.JQ.Timeout.D(), MaxMemoryBytes: st.Gateway.JQ.MaxMemoryBytes}}
	if len(wc.AllowedHosts) > 0 {
		hosts, err := egress.ParseAllowList(wc.AllowedHosts)
		if err != nil {
			return snapshot.Deps{}, &config.Fault{File: config.SettingsFile, Pointer: "/gateway/webClient/allowedHosts", Err: err}
		}
		env.AllowedHosts = hosts
	}
	deps := snapshot.Deps{Env: env, StoreBackend: "memory"}
	r := st.Redis
	if r.Enabled() {
		// The same resolution a live client makes, so that a dry build
		// refuses what serving would.
		deps.StoreBackend = "redis"
		if _, err := redisstore.ClientOptions(r, repo.Dir); err != nil {
			return deps, redisFault(err)
		}
	}
	if o.Mode == Live {
		hk := httpKey{pool: *wc.ConnectionPoolEnabled, maxIdle: wc.MaxIdleConnsPerHost, guard: o.Egress != nil && !wc.AllowAdminListener}
		v, err := lease.Acquire(hk.String(), func() (any, func(), error) {
			var guard *egress.Guard
			if hk.guard {
				guard = o.Egress
			}
			c := &http.Client{Transport: newTransport(hk, guard), CheckRedirect: noRedirect}
			return c, c.CloseIdleConnections, nil
		})
		if err != nil {
			return deps, &config.Fault{File: config.SettingsFile, Pointer: "/gateway/webClient", Err: err}
		}
		env.Client = v.(*http.Client)
		v, _ = lease.Acquire("grpc", func() (any, func(), error) {
			p := rpc.NewPool()
			return p, p.Close, nil
		})
		env.RPC = v.(*rpc.Pool)
		// One heap guard per gateway, whatever the Snapshot: each
		// evaluation carries its own Snapshot's ceiling.
		v, _ = lease.Acquire("jq", func() (any, func(), error) {
			g := expr.NewGuard(jqKills(o.Metrics))
			return g, nil, nil
		})
		env.JQ.Guard = v.(*expr.Guard)
		var st *Stores
		if r.Enabled() {
			v, err = lease.Acquire("redis:"+RedisKey(r), func() (any, func(), error) {
				return newRedisStores(ctx, r, repo.Dir, o.Logger)
			})
			if err != nil {
				return deps, &config.Fault{File: config.SettingsFile, Pointer: "/redis", Err: err}
			}
		} else {
			v, _ = lease.Acquire("memory", func() (any, func(), error) {
				return &Stores{Nonces: security.NewMemoryNonces(0), Limits: ratelimit.NewMemory(0), Backend: "memory"}, nil, nil
			})
		}
		st = v.(*Stores)
		deps.Nonces, deps.Limits, deps.StoreBackend, deps.Shared, deps.StorePing = st.Nonces, st.Limits, st.Backend, st.Registry, st.Ping
		deps.Fleet = st.Fleet
		if tel := repo.Settings.Telemetry; tel.Enabled() {
			t, fault := acquireTracer(tel, repo.Dir, o, lease)
			if fault != nil {
				return deps, fault
			}
			deps.Tracer = t
		}
	}
	if o.Mode == Sandbox {
		env.Client, env.RPC, env.MarkSteps = o.Sandbox.Client, o.Sandbox.RPC, true
		// The change under review sets its own budget: the sandbox holds
		// it to the defaults at most.
		env.JQ.Timeout = min(env.JQ.Timeout, SandboxJQTimeout)
		env.JQ.MaxMemoryBytes = min(env.JQ.MaxMemoryBytes, SandboxJQMemory)
		env.JQ.Guard = expr.NewGuard(nil)
		deps.StoreBackend = "memory"
		deps.Untrusted = true
	}
	ho := hooks.Options{Services: o.Services, Client: env.Client, Settings: st.Hooks, Metrics: o.Metrics}
	if o.Prev != nil && o.Prev.Hooks.Same(ho) {
		deps.Hooks = o.Prev.Hooks // the compiled flows that sign through it stay valid
	} else {
		deps.Hooks = hooks.New(ho)
	}
	return deps, nil
}

// acquireTracer takes the tracer provider of the telemetry settings from
// the pool: a reload with the same settings (and the same header values)
// shares it; otherwise a new one is built, and the old one flushes and
// stops (within tracing.ShutdownTimeout) once its last Snapshot is retired.
// A Sandbox build never gets here: a change under review exports nothing.
func acquireTracer(tel config.TelemetrySettings, dir string, o Options, lease *pool.Lease) (trace.Tracer, *config.Fault) {
	headers := make(map[string]string, len(tel.OTLP.Headers))
	for name, ref := range tel.OTLP.Headers {
		v, err := ref.Resolve(dir)
		if err != nil {
			return nil, &config.Fault{File: config.SettingsFile, Pointer: "/telemetry/otlp/headers/" + name, Err: err}
		}
		headers[name] = string(v)
	}
	var count tracing.Counter
	if m := o.Metrics; m != nil {
		count = func(result string, n int) { m.TraceSpans.WithLabelValues(result).Add(float64(n)) }
	}
	v, err := lease.Acquire(tracing.Key(tel, headers, o.Version), func() (any, func(), error) {
		p, err := tracing.New(tel, headers, o.Version, count)
		if err != nil {
			return nil, nil, err
		}
		log := o.Logger
		log.Info("tracing on: spans are exported over OTLP", "protocol", tel.OTLP.Protocol, "endpoint", tel.OTLP.Endpoint, "sampleRatio", *tel.OTLP.SampleRatio)
		return p, func() {
			// Whoever releases the last Snapshot (often a request's
			// deferred release) must not wait for the flush.
			go func() {
				if err := p.Shutdown(tracing.ShutdownTimeout); err != nil {
					log.Warn("tracing: the exporter did not flush before it stopped", "error", err)
				}
			}()
		}, nil
	})
	if err != nil {
		return nil, &config.Fault{File: config.SettingsFile, Pointer: "/telemetry/otlp", Err: err}
	}
	return v.(*tracing.Provider).Tracer, nil
}

// jqKills counts the evaluations a jq budget stopped; nil without metrics.
func jqKills(m *metrics.Metrics) func(reason string) {
	if m == nil {
		return nil
	}
	return func(reason string) { m.JQBudgetKills.WithLabelValues(reason).Inc() }
}

// redisFault places a refusal of the redis settings at the key it names.
func redisFault(err error) *config.Fault {
	if msg, ok := strings.CutPrefix(err.Error(), "redis.password: "); ok {
		return &config.Fault{File: config.SettingsFile, Pointer: "/redis/password", Err: errors.New(msg)}
	}
	return &config.Fault{File: config.SettingsFile, Pointer: "/redis", Err: err}
}

// Stores are the nonce and rate-limit stores of one redis configuration
// (or the embedded ones), with the registry's shared tables.
type Stores struct {
	Nonces  security.NonceStore
	Limits  ratelimit.Store
	Backend string
	// Registry is the shared copy of the service registry; nil without
	// Redis.
	Registry registry.Tables
	// Fleet is where the replicas' heartbeats meet; nil without Redis.
	Fleet fleet.Store
	// Ping asks Redis whether it answers, within redis.timeout; nil with
	// the embedded stores.
	Ping func(context.Context) error
}

func newRedisStores(ctx context.Context, r config.RedisSettings, dir string, log *slog.Logger) (any, func(), error) {
	c, err := redisstore.NewClient(r, dir)
	if err != nil {
		return nil, nil, err
	}
	timeout := r.Timeout.D()
	st := &Stores{Nonces: redisstore.NewNonces(c, timeout), Limits: ratelimit.NewRedis(c, timeout), Backend: "redis",
		Registry: redisstore.NewRegistry(c, timeout), Fleet: redisstore.NewFleet(c, timeout), Ping: redisstore.Pinger(c, timeout)}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		mode := "closed"
		if *r.FailOpen {
			mode = "open"
		}
		log.Warn("redis does not answer yet: nonces are refused (503) and rate limits fail "+mode+" until it does", "error", err)
	} else {
		log.Info("shared stores on redis", "addrs", strings.Join(append([]string{r.Addr}, r.Addrs...), " "))
	}
	return st, func() { c.Close() }, nil
}

// RedisKey identifies a redis configuration (the password by reference).
func RedisKey(r config.RedisSettings) string {
	pw := ""
	if r.Password != nil {
		pw = r.Password.Ref
	}
	return fmt.Sprintf("%s|%v|%s|%s|%s|%d|%v|%s", r.Addr, r.Addrs, r.MasterName, r.Username, pw, r.DB, r.TLS, r.Timeout.D())
}

// httpKey identifies an upstream transport.
type httpKey struct {
	pool    bool
	maxIdle int
	guard   bool // the dialer refuses the admin listener
}

func (k httpKey) String() string {
	s := fmt.Sprintf("http:pool=%v,maxIdle=%d", k.pool, k.maxIdle)
	if k.guard {
		s += ",guarded"
	}
	return s
}

// newTransport builds the upstream transport. With guard, the dialer
// refuses the admin listener's address, checked after name resolution.
func newTransport(k httpKey, guard *egress.Guard) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if guard != nil {
		d.Control = guard.Control
	}
	return &http.Transport{
		Proxy:                 nil, // upstreams are addressed directly, never through the environment's proxy
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * k.maxIdle,
		MaxIdleConnsPerHost:   k.maxIdle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     !k.pool,
		ForceAttemptHTTP2:     true,
	}
}

// noRedirect hands 3xx answers to the flow instead of following them.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
