package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Table names, shared with engine/store and engine/redisstore.
const (
	TableServers  = "servers"
	TableServices = "services"
)

// Tables is the copy of the registry every replica shares (Redis,
// engine/redisstore): JSON values by key in two tables. Every call takes
// the context of the request it serves, so that a caller that gives up
// stops waiting on the network.
type Tables interface {
	Put(ctx context.Context, table, key string, value []byte) error
	Get(ctx context.Context, table, key string) ([]byte, bool, error)
	All(ctx context.Context, table string) (map[string][]byte, error)
	Delete(ctx context.Context, table, key string) (bool, error)
}

// LocalTables is each node's own copy, the bbolt file (engine/store), with
// the same tables; it can also take a whole table from the shared copy. A
// local file waits on no network, so its calls take no context.
type LocalTables interface {
	Put(table, key string, value []byte) error
	Get(table, key string) ([]byte, bool, error)
	All(table string) (map[string][]byte, error)
	Delete(table, key string) (bool, error)
	Replace(table string, entries map[string][]byte) error
}

// FATE Flow's return codes.
const (
	RetOK              = 0
	RetError           = 100
	RetMissingArgument = 101
	RetFailed          = 103
)

// Error is a refusal with its FATE return code.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

func missing(arg string) error {
	return &Error{RetMissingArgument, "required argument is missing: " + arg}
}

func invalid(format string, a ...any) error {
	return &Error{RetError, fmt.Sprintf(format, a...)}
}

func failed(format string, a ...any) error {
	return &Error{RetFailed, "operation failed: " + fmt.Sprintf(format, a...)}
}

// Options configure a Registry.
type Options struct {
	Logger *slog.Logger
	// StoreError is told of each failed call to the shared copy (for
	// metrics); the Registry logs them itself, at most once per 10s.
	StoreError func(err error)
}

// Registry is the service registry: validation, the local copy in bbolt
// and, with Redis configured, the shared copy. It implements Resolver.
type Registry struct {
	local  LocalTables
	shared atomic.Pointer[sharedTables]
	opts   Options

	logMu     sync.Mutex
	lastLog   time.Time
	unlogged  int
	unhealthy bool
}

type sharedTables struct{ t Tables }

// New returns a registry over local.
func New(local LocalTables, opts Options) *Registry {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Registry{local: local, opts: opts}
}

// SetShared makes t (Redis) the copy that reads and writes go to first;
// nil goes back to the local copy alone. The local copy is refreshed from t
// at once when t answers. That sync serves no request: only t's own
// timeout bounds it.
func (r *Registry) SetShared(t Tables) {
	if t == nil {
		r.shared.Store(nil)
		return
	}
	r.shared.Store(&sharedTables{t})
	r.Sync(context.Background())
}

// Shared reports whether a shared copy is configured.
func (r *Registry) Shared() bool { return r.shared.Load() != nil }

// Sync brings the local copy in line with the shared one, so that a
// restart or a Redis outage serves what the other replicas registered. A
// shared copy that came back empty (a Redis restarted without persistence)
// while the local one is not is seeded from the local one instead: the
// registrations are not lost with Redis's memory.
func (r *Registry) Sync(ctx context.Context) error {
	sh := r.shared.Load()
	if sh == nil {
		return nil
	}
	for _, table := range []string{TableServers, TableServices} {
		if _, err := r.syncTable(ctx, sh, table); err != nil {
			return err
		}
	}
	return nil
}

// syncTable is Sync for one table; it returns the entries now in force.
func (r *Registry) syncTable(ctx context.Context, sh *sharedTables, table string) (map[string][]byte, error) {
	all, err := sh.t.All(ctx, table)
	if err != nil {
		r.sharedFailed(ctx, err)
		return nil, err
	}
	r.sharedOK()
	if len(all) == 0 {
		local, err := r.local.All(table)
		if err != nil {
			return nil, err
		}
		if len(local) > 0 {
			for k, v := range local {
				if err := sh.t.Put(ctx, table, k, v); err != nil {
					r.sharedFailed(ctx, err)
					return nil, err
				}
			}
			r.opts.Logger.Warn("registry: redis holds no "+table+"; seeded it from this node's copy", "entries", len(local))
			return local, nil
		}
	}
	if err := r.local.Replace(table, all); err != nil {
		return nil, err
	}
	return all, nil
}

// sharedFailed counts and logs (throttled) a failed call to the shared
// copy; a call cut short because its caller gave up (ctx done) is not the
// shared copy's failure.
func (r *Registry) sharedFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	if r.opts.StoreError != nil {
		r.opts.StoreError(err)
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	r.unhealthy = true
	if time.Since(r.lastLog) < 10*time.Second {
		r.unlogged++
		return
	}
	r.opts.Logger.Warn("registry: redis unavailable; reads are served from the local copy, registrations are refused",
		"error", err, "notLogged", r.unlogged)
	r.lastLog, r.unlogged = time.Now(), 0
}

func (r *Registry) sharedOK() {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.unhealthy {
		r.unhealthy = false
		r.opts.Logger.Info("registry: redis available again")
	}
}

// get reads key: from the shared copy when there is one (refreshing the
// local copy when they differ), from the local copy otherwise or when the
// shared copy fails. When ctx ends first, get returns ctx's error.
func (r *Registry) get(ctx context.Context, table, key string) ([]byte, bool, error) {
	if sh := r.shared.Load(); sh != nil {
		v, ok, err := sh.t.Get(ctx, table, key)
		if err == nil {
			r.sharedOK()
			if ok {
				r.mirror(table, key, v)
				return v, true, nil
			}
			// Missing from Redis but kept here: deleted through another
			// replica, or lost by a Redis that restarted empty. Syncing the
			// table tells which (and seeds Redis in the second case).
			if _, lok, lerr := r.local.Get(table, key); lerr != nil || !lok {
				return nil, false, lerr
			}
			all, err := r.syncTable(ctx, sh, table)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return nil, false, cerr
				}
				return r.local.Get(table, key)
			}
			v, ok := all[key]
			return v, ok, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, false, cerr
		}
		r.sharedFailed(ctx, err)
	}
	return r.local.Get(table, key)
}

// mirror copies a shared entry into the local copy when they differ.
func (r *Registry) mirror(table, key string, v []byte) {
	if lv, lok, err := r.local.Get(table, key); err == nil && lok && string(lv) == string(v) {
		return
	}
	r.local.Put(table, key, v)
}

func (r *Registry) all(ctx context.Context, table string) (map[string][]byte, error) {
	if sh := r.shared.Load(); sh != nil {
		m, err := r.syncTable(ctx, sh, table)
		if err == nil {
			return m, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
	}
	return r.local.All(table)
}

// put writes the shared copy first (every replica must see a registration
// or none does), then the local one.
func (r *Registry) put(ctx context.Context, table, key string, value []byte) error {
	if sh := r.shared.Load(); sh != nil {
		// A Redis that restarted empty is seeded before the first write
		// makes it look populated.
		if _, err := r.syncTable(ctx, sh, table); err != nil {
			return failed("the shared registry (redis) did not take it: %v", err)
		}
		if err := sh.t.Put(ctx, table, key, value); err != nil {
			r.sharedFailed(ctx, err)
			return failed("the shared registry (redis) did not take it: %v", err)
		}
		r.sharedOK()
	}
	if err := r.local.Put(table, key, value); err != nil {
		return failed("writing the local registry: %v", err)
	}
	return nil
}

func (r *Registry) del(ctx context.Context, table, key string) (bool, error) {
	found := false
	if sh := r.shared.Load(); sh != nil {
		if _, err := r.syncTable(ctx, sh, table); err != nil {
			return false, failed("the shared registry (redis) did not take it: %v", err)
		}
		ok, err := sh.t.Delete(ctx, table, key)
		if err != nil {
			r.sharedFailed(ctx, err)
			return false, failed("the shared registry (redis) did not take it: %v", err)
		}
		r.sharedOK()
		found = ok
	}
	ok, err := r.local.Delete(table, key)
	if err != nil {
		return false, failed("writing the local registry: %v", err)
	}
	return found || ok, nil
}

// ServerKey is how a server name is stored: upper-case, as FATE Flow does.
func ServerKey(name string) string { return strings.ToUpper(strings.TrimSpace(name)) }

func serviceKey(server, name string) string { return ServerKey(server) + "/" + name }

// names: letters, digits, '.', '_' and '-'.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validHost accepts an IP address or a DNS host name (no scheme, port or
// path).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

var (
	protocols = []string{"http", "https", "grpc"}
	methods   = []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// ServerInput is a server registration as it arrives.
type ServerInput struct {
	Host     string          `json:"host"`
	Port     json.RawMessage `json:"port"`
	Protocol string          `json:"protocol"`
}

// parsePort takes a JSON number or a numeric string.
func parsePort(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, missing("port")
	}
	s = strings.Trim(s, `"`)
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, invalid("port %s is not a port number (1-65535)", string(raw))
	}
	return p, nil
}

// RegisterServer registers (or moves) server name.
func (r *Registry) RegisterServer(ctx context.Context, name string, in ServerInput) (Server, error) {
	key := ServerKey(name)
	if key == "" {
		return Server{}, missing("server_name")
	}
	if !validName(key) {
		return Server{}, invalid("server name %q: use letters, digits, '.', '_' and '-'", name)
	}
	in.Host = strings.TrimSpace(in.Host)
	if in.Host == "" {
		return Server{}, missing("host")
	}
	if !validHost(in.Host) {
		return Server{}, invalid("host %q is not an IP address or host name (no scheme, port or path)", in.Host)
	}
	port, err := parsePort(in.Port)
	if err != nil {
		return Server{}, err
	}
	proto := strings.ToLower(strings.TrimSpace(in.Protocol))
	if proto == "" {
		proto = "http"
	}
	if !oneOf(proto, protocols) {
		return Server{}, invalid("protocol %q: expected one of %s", in.Protocol, strings.Join(protocols, ", "))
	}
	srv := Server{Name: key, Host: in.Host, Port: port, Protocol: proto}
	b, _ := json.Marshal(srv)
	return srv, r.put(ctx, TableServers, key, b)
}

// Server returns server name.
func (r *Registry) Server(ctx context.Context, name string) (Server, bool, error) {
	b, ok, err := r.get(ctx, TableServers, ServerKey(name))
	if err != nil || !ok {
		return Server{}, false, err
	}
	var s Server
	if err := json.Unmarshal(b, &s); err != nil {
		return Server{}, false, fmt.Errorf("registry: server %s: %w", ServerKey(name), err)
	}
	return s, true, nil
}

// Servers returns every server, by name.
func (r *Registry) Servers(ctx context.Context) ([]Server, error) {
	all, err := r.all(ctx, TableServers)
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(all))
	for _, b := range all {
		var s Server
		if json.Unmarshal(b, &s) == nil {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteServer removes server name; its services stay registered and
// resolve again once the server is registered again.
func (r *Registry) DeleteServer(ctx context.Context, name string) (bool, error) {
	key := ServerKey(name)
	if key == "" {
		return false, missing("server_name")
	}
	return r.del(ctx, TableServers, key)
}

// ServiceInput is a service registration as it arrives.
type ServiceInput struct {
	ServerName  string            `json:"server_name"`
	ServiceName string            `json:"service_name"`
	URI         string            `json:"uri"`
	Method      string            `json:"method"`
	Protocol    string            `json:"protocol"`
	Headers     map[string]string `json:"headers"`
	Params      map[string]any    `json:"params"`
	Data        map[string]any    `json:"data"`
}

// RegisterService registers (or replaces) a service on a registered server.
func (r *Registry) RegisterService(ctx context.Context, in ServiceInput) (Service, error) {
	switch {
	case strings.TrimSpace(in.ServerName) == "":
		return Service{}, missing("server_name")
	case in.ServiceName == "":
		return Service{}, missing("service_name")
	case in.URI == "":
		return Service{}, missing("uri")
	}
	if !validName(in.ServiceName) {
		return Service{}, invalid("service name %q: use letters, digits, '.', '_' and '-'", in.ServiceName)
	}
	if !strings.HasPrefix(in.URI, "/") || strings.ContainsAny(in.URI, " \t\r\n#") {
		return Service{}, invalid("uri %q must start with / and hold no spaces or fragment", in.URI)
	}
	method := strings.ToUpper(strings.TrimSpace(in.Method))
	if method == "" {
		method = "POST"
	}
	if !oneOf(method, methods) {
		return Service{}, invalid("method %q: expected one of %s", in.Method, strings.Join(methods, ", "))
	}
	proto := strings.ToLower(strings.TrimSpace(in.Protocol))
	if proto != "" && !oneOf(proto, protocols) {
		return Service{}, invalid("protocol %q: expected one of %s", in.Protocol, strings.Join(protocols, ", "))
	}
	server := ServerKey(in.ServerName)
	if _, ok, err := r.Server(ctx, server); err != nil {
		return Service{}, failed("%v", err)
	} else if !ok {
		return Service{}, invalid("server %s is not registered: register it first (POST /v1/server/%s/register)", server, server)
	}
	params := map[string]string{}
	for k, v := range in.Params {
		switch x := v.(type) {
		case string:
			params[k] = x
		default:
			b, _ := json.Marshal(x)
			params[k] = string(b)
		}
	}
	if len(params) == 0 {
		params = nil
	}
	svc := Service{ServerName: server, ServiceName: in.ServiceName, URI: in.URI, Method: method, Protocol: proto,
		Headers: in.Headers, Params: params, Data: in.Data}
	b, _ := json.Marshal(svc)
	return svc, r.put(ctx, TableServices, serviceKey(server, in.ServiceName), b)
}

// Services returns the services named name (all when empty) on server (all
// when empty), by server and name.
func (r *Registry) Services(ctx context.Context, server, name string) ([]Service, error) {
	all, err := r.all(ctx, TableServices)
	if err != nil {
		return nil, err
	}
	server = ServerKey(server)
	out := []Service{}
	for _, b := range all {
		var s Service
		if json.Unmarshal(b, &s) != nil {
			continue
		}
		if (server == "" || s.ServerName == server) && (name == "" || s.ServiceName == name) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ServerName != out[j].ServerName {
			return out[i].ServerName < out[j].ServerName
		}
		return out[i].ServiceName < out[j].ServiceName
	})
	return out, nil
}

// DeleteService removes a service.
func (r *Registry) DeleteService(ctx context.Context, server, name string) (bool, error) {
	switch {
	case strings.TrimSpace(server) == "":
		return false, missing("server_name")
	case name == "":
		return false, missing("service_name")
	}
	return r.del(ctx, TableServices, serviceKey(server, name))
}

// Resolve implements Resolver: the service and the current entry of its
// server, read at call time.
func (r *Registry) Resolve(ctx context.Context, server, name string) (Endpoint, error) {
	if err := ctx.Err(); err != nil {
		return Endpoint{}, err
	}
	b, ok, err := r.get(ctx, TableServices, serviceKey(server, name))
	if err != nil {
		return Endpoint{}, err
	}
	if !ok {
		return Endpoint{}, NotFound(server, name)
	}
	var svc Service
	if err := json.Unmarshal(b, &svc); err != nil {
		return Endpoint{}, fmt.Errorf("registry: service %s: %w", serviceKey(server, name), err)
	}
	srv, ok, err := r.Server(ctx, server)
	if err != nil {
		return Endpoint{}, err
	}
	if !ok {
		return Endpoint{}, fmt.Errorf("server %q of service %q: %w", ServerKey(server), name, ErrNotFound)
	}
	return Endpoint{Server: srv, Service: svc}, nil
}

// IsError reports whether err is a refusal with a FATE return code, and
// which.
func IsError(err error) (int, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
