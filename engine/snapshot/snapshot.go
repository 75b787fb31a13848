// Package snapshot builds the immutable view of a loaded repository that the
// portal serves from: settings, compiled flows, credentials, policies and
// the revision they came from. A Snapshot is built beside the one serving
// and swapped in with one pointer store; it is never modified afterwards,
// so readers need no locks.
package snapshot

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/hooks"
	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/security"
)

// Snapshot is one loaded, fully compiled repository.
type Snapshot struct {
	Repo     *config.Repository
	Settings *config.Settings
	Revision string             // the repository's content hash
	Git      *revision.Revision // the git revision of the checkout; nil when it is not one
	LoadedAt time.Time

	// Portal settings parsed once.
	BasePaths      []string
	AllowedIPs     []netip.Prefix
	DeniedIPs      []netip.Prefix
	TrustedProxies []netip.Prefix

	// Credentials by appId, secrets resolved.
	Credentials map[string]*Credential
	// Env is the upstream client the flows use (the debug invoke compiles
	// drafts with it).
	Env *flow.Env
	// AdminTokens are the admin listener's bearer tokens, resolved.
	AdminTokens []AdminToken
	// AdminTokenProblems lists tokens whose secret did not resolve.
	AdminTokenProblems map[string]string

	// Long-lived stores, owned by the server and handed to every Snapshot.
	Nonces       security.NonceStore
	Limits       ratelimit.Store
	StoreBackend string // "memory" or "redis", for metrics and logs
	FailOpen     bool   // let rate-limited requests through when the store fails
	// StorePing asks the shared stores whether they answer (readiness);
	// nil with the embedded ones, which always do.
	StorePing func(context.Context) error
	// Shared is the Redis copy of the service registry; nil without Redis.
	Shared registry.Tables
	// Tracer makes the server span of each portal request; nil while
	// telemetry is off (and in a sandbox): then no span is made.
	Tracer trace.Tracer
	// Fleet is where the replicas' heartbeats meet (Redis); nil without
	// Redis.
	Fleet fleet.Store

	// Hooks makes the callouts of hooks (DESIGN.md section 6), with this
	// Snapshot's hook settings; nil: every enabled hook fails closed.
	Hooks *hooks.Caller

	// Policies by name, compiled.
	Policies map[string]*ratelimit.Policy

	// JWTKey signs internal JWTs for anonymous callers; nil when
	// apiPortal.security.jwt.key is unset or did not resolve (JWTProblem).
	JWTKey     []byte
	JWTProblem string

	// Reused counts the flows taken over from the previous Snapshot
	// (Deps.Prev) instead of compiled.
	Reused int

	routes    map[routeKey]*Route
	policySrc map[string]*config.RateLimitPolicy // the definitions Policies were compiled from
	life      *life
}

// policyOf returns the compiled policy an API names, or nil.
func (s *Snapshot) policyOf(a *config.Api) *ratelimit.Policy {
	if a.Policies == nil || a.Policies.RateLimit == "" {
		return nil
	}
	return s.Policies[a.Policies.RateLimit]
}

type routeKey struct{ code, version string }

// AdminToken is one resolved bearer token of the admin listener.
type AdminToken struct {
	Name, Role string
	Secret     []byte
}

// Routes returns every API, whatever its status, in repository order.
func (s *Snapshot) Routes() []*Route {
	out := make([]*Route, 0, len(s.routes))
	for _, a := range s.Repo.APIs {
		out = append(out, s.routes[routeKey{a.Code, a.Version}])
	}
	return out
}

// Route is one API as the portal sees it.
type Route struct {
	API     *config.Api
	Flow    *flow.Flow
	Methods map[string]bool
	Allow   string            // the Allow header of a 405
	Callers map[string]bool   // auth.credentials; nil: any enabled credential
	Policy  *ratelimit.Policy // policies.rateLimit; nil: not limited
}

// Allows reports whether appID may call the route.
func (r *Route) Allows(appID string) bool { return r.Callers == nil || r.Callers[appID] }

// Deps are the long-lived resources a Snapshot uses: they belong to the
// server and outlive reloads.
type Deps struct {
	Env          *flow.Env           // the upstream HTTP client
	Nonces       security.NonceStore // nil: the portal's own embedded store
	Limits       ratelimit.Store     // nil: the portal's own embedded store
	StoreBackend string
	// StorePing asks the shared stores whether they answer; nil with the
	// embedded ones.
	StorePing func(context.Context) error
	Git       *revision.Revision // the checkout's revision; nil outside git
	// Hooks is the callout client built from this repository's hook
	// settings; it also signs the http steps that set site.
	Hooks *hooks.Caller
	// Shared is the Redis copy of the service registry for these redis
	// settings; nil without Redis.
	Shared registry.Tables
	// Fleet is the replicas' heartbeats in that Redis; nil without Redis.
	Fleet fleet.Store
	// Tracer is the pooled tracer of the telemetry settings; nil: off.
	Tracer trace.Tracer
	// Lease holds the pool references of the resources above; the
	// Snapshot releases it when it is retired and its last request ends.
	Lease *pool.Lease
	// Prev is the Snapshot serving, whose compiled flows are reused for
	// the APIs whose definitions are the very same objects (config.Reload
	// reuses unchanged documents) when the Env is the same; nil: compile
	// every flow.
	Prev *Snapshot
	// Untrusted: the repository is a change under review (databus test,
	// databus replay): secrets resolve only from files inside it
	// (config.SecretRef.ResolveInRepo), admin tokens are not read, and the
	// internal JWT is signed with a random key of this Snapshot's own, so
	// nothing the machine holds can be read or forged through it.
	Untrusted bool
}

// Build compiles every API of repo into a new Snapshot. Its errors are
// *config.Fault, placed at the field at fault. Build has no side effects:
// the resources in deps were acquired by the caller (engine/gate).
func Build(repo *config.Repository, deps Deps) (*Snapshot, error) {
	s := &Snapshot{
		Repo:         repo,
		Settings:     repo.Settings,
		Revision:     repo.Hash,
		LoadedAt:     time.Now(),
		Nonces:       deps.Nonces,
		Limits:       deps.Limits,
		StoreBackend: deps.StoreBackend,
		StorePing:    deps.StorePing,
		Shared:       deps.Shared,
		Fleet:        deps.Fleet,
		Tracer:       deps.Tracer,
		Git:          deps.Git,
		FailOpen:     *repo.Settings.Redis.FailOpen,
		Policies:     make(map[string]*ratelimit.Policy, len(repo.Policies)),
		routes:       make(map[routeKey]*Route, len(repo.APIs)),
		life:         &life{lease: deps.Lease},
	}
	if s.StoreBackend == "" {
		s.StoreBackend = "memory"
	}
	env := deps.Env
	if env != nil && deps.Hooks != nil {
		// The Env is shared across Snapshots; the signer is this one's.
		e := *env
		e.Hooks = deps.Hooks
		env = &e
	}
	reuse := deps.Prev != nil && deps.Prev.Env != nil && deps.Prev.Env.Same(env)
	if reuse {
		env = deps.Prev.Env
	}
	s.Env = env
	s.Hooks = deps.Hooks
	resolve := config.SecretRef.Resolve
	if deps.Untrusted {
		resolve = config.SecretRef.ResolveInRepo
	}
	for _, t := range repo.Settings.Admin.Tokens {
		if deps.Untrusted {
			break
		}
		v, err := t.Secret.Resolve(repo.Dir)
		if err != nil {
			if s.AdminTokenProblems == nil {
				s.AdminTokenProblems = map[string]string{}
			}
			s.AdminTokenProblems[t.Name] = err.Error()
			continue
		}
		s.AdminTokens = append(s.AdminTokens, AdminToken{Name: t.Name, Role: t.Role, Secret: v})
	}
	s.policySrc = make(map[string]*config.RateLimitPolicy, len(repo.Policies))
	for _, p := range repo.Policies {
		s.policySrc[p.Name] = p
		if deps.Prev != nil && deps.Prev.policySrc[p.Name] == p {
			// The same definition (config.Reload kept the document): its
			// compiled form is immutable and carries no state.
			s.Policies[p.Name] = deps.Prev.Policies[p.Name]
			continue
		}
		cp, err := ratelimit.Compile(p)
		if err != nil {
			return nil, &config.Fault{File: p.Source.File, Pointer: "/keyTemplate", Err: err}
		}
		s.Policies[p.Name] = cp
	}
	p := repo.Settings.APIPortal
	s.BasePaths = append([]string{p.BasePath}, p.LegacyBasePaths...)
	var err error
	if s.AllowedIPs, err = prefixes(p.AllowedIPs); err != nil {
		return nil, &config.Fault{File: config.SettingsFile, Pointer: "/apiPortal/allowedIps", Err: err}
	}
	if s.DeniedIPs, err = prefixes(p.DeniedIPs); err != nil {
		return nil, &config.Fault{File: config.SettingsFile, Pointer: "/apiPortal/deniedIps", Err: err}
	}
	if s.TrustedProxies, err = prefixes(p.TrustedProxies); err != nil {
		return nil, &config.Fault{File: config.SettingsFile, Pointer: "/apiPortal/trustedProxies", Err: err}
	}
	s.Credentials = make(map[string]*Credential, len(repo.Credentials))
	for _, c := range repo.Credentials {
		s.Credentials[c.AppID] = resolveCredential(repo.Dir, c, resolve)
	}
	if deps.Untrusted {
		s.JWTKey = make([]byte, 32)
		rand.Read(s.JWTKey)
	} else if k := p.Security.JWT.Key; k != nil {
		key, err := k.Resolve(repo.Dir)
		if err != nil {
			s.JWTProblem = "apiPortal.security.jwt.key: " + err.Error()
		}
		s.JWTKey = key
	} else {
		s.JWTProblem = "apiPortal.security.jwt.key is not set"
	}
	var sets routeSets // routes with the same lists share their sets (read only)
	for _, a := range repo.APIs {
		key := routeKey{a.Code, a.Version}
		var f *flow.Flow
		if reuse {
			if pr := deps.Prev.routes[key]; pr != nil && pr.API == a {
				f = pr.Flow
				s.Reused++
				if pr.Policy == s.policyOf(a) {
					s.routes[key] = pr // the route is made of these and the definition
					continue
				}
			}
		}
		if f == nil {
			var err error
			if f, err = flow.Compile(a, env); err != nil {
				return nil, err
			}
		}
		r := &Route{API: a, Flow: f}
		if a.Policies != nil && a.Policies.RateLimit != "" {
			r.Policy = s.Policies[a.Policies.RateLimit]
			if r.Policy == nil {
				return nil, &config.Fault{File: a.Source.File, Pointer: "/policies/rateLimit", Err: fmt.Errorf("rate-limit policy %q not found", a.Policies.RateLimit)}
			}
		}
		if a.Auth != nil && a.Auth.Credentials != nil {
			r.Callers = sets.callers(a.Auth.Credentials)
		}
		r.Methods, r.Allow = sets.methods(a.Methods)
		s.routes[routeKey{a.Code, a.Version}] = r
	}
	return s, nil
}

// routeSets interns the method and caller sets of a Snapshot's routes:
// thousands of APIs share a handful of method lists and credential lists.
type routeSets struct {
	byMethods map[string]methodSet
	byCallers map[string]map[string]bool
}

type methodSet struct {
	set   map[string]bool
	allow string
}

func (rs *routeSets) methods(list []string) (map[string]bool, string) {
	key := strings.Join(list, ", ")
	if m, ok := rs.byMethods[key]; ok {
		return m.set, m.allow
	}
	m := methodSet{set: make(map[string]bool, len(list)), allow: key}
	for _, x := range list {
		m.set[x] = true
	}
	if rs.byMethods == nil {
		rs.byMethods = map[string]methodSet{}
	}
	rs.byMethods[key] = m
	return m.set, m.allow
}

func (rs *routeSets) callers(list []string) map[string]bool {
	key := strings.Join(list, "\x00")
	if c, ok := rs.byCallers[key]; ok {
		return c
	}
	c := make(map[string]bool, len(list))
	for _, x := range list {
		c[x] = true
	}
	if rs.byCallers == nil {
		rs.byCallers = map[string]map[string]bool{}
	}
	rs.byCallers[key] = c
	return c
}

func prefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Route returns the API code:version whatever its status, or nil.
func (s *Snapshot) Route(code, version string) *Route {
	return s.routes[routeKey{code, version}]
}

// KeyProblems lists the credentials whose secrets did not resolve, for
// logs and the admin view (the reason names the reference, not a value).
func (s *Snapshot) KeyProblems() map[string]string {
	out := map[string]string{}
	for id, c := range s.Credentials {
		if c.KeyProblem != "" {
			out[id] = c.KeyProblem
		}
	}
	return out
}

// Online returns the API code:version when it is served, or nil.
func (s *Snapshot) Online(code, version string) *Route {
	r := s.routes[routeKey{code, version}]
	if r == nil || r.API.Status != config.StatusOnline {
		return nil
	}
	return r
}
