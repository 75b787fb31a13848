package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/internal/testredis"
)

// newRegistry is a registry over a real bbolt file, served by the FATE
// endpoints on a loopback server.
func newRegistry(t *testing.T, path string) (*registry.Registry, string) {
	t.Helper()
	db, err := store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := registry.New(db.Registry(), registry.Options{})
	srv := httptest.NewServer(reg.Handler(func(h http.HandlerFunc) http.HandlerFunc { return h }))
	t.Cleanup(srv.Close)
	return reg, srv.URL
}

type reply struct {
	RetCode int             `json:"retcode"`
	RetMsg  string          `json:"retmsg"`
	Data    json.RawMessage `json:"data"`
}

func post(t *testing.T, base, path, body string) reply {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r reply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: not a FATE reply: %v", path, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d", path, resp.StatusCode)
	}
	return r
}

func TestTableNamesMatchTheStore(t *testing.T) {
	if registry.TableServers != store.TableServers || registry.TableServices != store.TableServices {
		t.Fatal("registry and store disagree on the table names")
	}
}

// TestInputChecks sends every kind of wrong registration: each gets its
// FATE return code and a message naming what is wrong, and nothing is
// stored.
func TestInputChecks(t *testing.T) {
	reg, base := newRegistry(t, filepath.Join(t.TempDir(), "r.db"))
	if r := post(t, base, "/v1/server/feat/register", `{"host":"127.0.0.1","port":9090}`); r.RetCode != 0 {
		t.Fatalf("valid server: %+v", r)
	}
	tests := []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/v1/server/x/register", `{"port":80}`, 101, "missing: host"},
		{"/v1/server/x/register", `{"host":"h"}`, 101, "missing: port"},
		{"/v1/server/x/register", `{"host":"h","port":0}`, 100, "port 0"},
		{"/v1/server/x/register", `{"host":"h","port":65536}`, 100, "port 65536"},
		{"/v1/server/x/register", `{"host":"h","port":"eighty"}`, 100, "not a port number"},
		{"/v1/server/x/register", `{"host":"http://h","port":80}`, 100, "not an IP address or host name"},
		{"/v1/server/x/register", `{"host":"h/path","port":80}`, 100, "not an IP address or host name"},
		{"/v1/server/x/register", `{"host":"h","port":80,"protocol":"ftp"}`, 100, `protocol "ftp"`},
		{"/v1/server/x%20y/register", `{"host":"h","port":80}`, 100, "server name"},
		{"/v1/service/registry", `{"service_name":"s","uri":"/a"}`, 101, "missing: server_name"},
		{"/v1/service/registry", `{"server_name":"feat","uri":"/a"}`, 101, "missing: service_name"},
		{"/v1/service/registry", `{"server_name":"feat","service_name":"s"}`, 101, "missing: uri"},
		{"/v1/service/registry", `{"server_name":"feat","service_name":"s","uri":"a"}`, 100, "must start with /"},
		{"/v1/service/registry", `{"server_name":"feat","service_name":"s","uri":"/a","method":"TRACE"}`, 100, `method "TRACE"`},
		{"/v1/service/registry", `{"server_name":"feat","service_name":"s","uri":"/a","protocol":"gopher"}`, 100, `protocol "gopher"`},
		{"/v1/service/registry", `{"server_name":"nobody","service_name":"s","uri":"/a"}`, 100, "server NOBODY is not registered"},
		{"/v1/service/registry", `{"server_name":"feat","service_name":"a/b","uri":"/a"}`, 100, "service name"},
		{"/v1/service/query", `{}`, 101, "missing: service_name"},
		{"/v1/service/delete", `{"server_name":"feat"}`, 101, "missing: service_name"},
		{"/v1/service/delete", `{"server_name":"feat","service_name":"nope"}`, 100, "not registered"},
		{"/v1/server/nobody/get", ``, 100, "NOBODY is not registered"},
		{"/v1/server/nobody/delete", ``, 100, "NOBODY is not registered"},
	}
	for _, tt := range tests {
		r := post(t, base, tt.path, tt.body)
		if r.RetCode != tt.code || !strings.Contains(r.RetMsg, tt.msg) {
			t.Errorf("%s %s: retcode %d %q, want %d containing %q", tt.path, tt.body, r.RetCode, r.RetMsg, tt.code, tt.msg)
		}
	}
	servers, _ := reg.Servers(t.Context())
	services, _ := reg.Services(t.Context(), "", "")
	if len(servers) != 1 || len(services) != 0 {
		t.Errorf("refused registrations were stored: servers %+v services %+v", servers, services)
	}
}

// TestFateFlow registers, queries, moves and deletes through the FATE
// shapes, then reopens the file: the registrations survive.
func TestFateFlow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	reg, base := newRegistry(t, path)
	post(t, base, "/v1/server/Features/register", `{"host":"127.0.0.1","port":"9090"}`)
	r := post(t, base, "/v1/service/registry", `{"server_name":"features","service_name":"upload","uri":"/v1/upload","headers":{"X-K":"v"},"params":{"limit":10}}`)
	if r.RetCode != 0 || r.RetMsg != "success" {
		t.Fatalf("service registry: %+v", r)
	}
	// Case-insensitive server names, stored upper-case.
	r = post(t, base, "/v1/server/FEATURES/get", "")
	var srv registry.Server
	json.Unmarshal(r.Data, &srv)
	if r.RetCode != 0 || srv.Name != "FEATURES" || srv.Port != 9090 || srv.Protocol != "http" {
		t.Fatalf("server get: %+v %s", srv, r.Data)
	}
	r = post(t, base, "/v1/server/get", "")
	var all map[string]registry.Server
	json.Unmarshal(r.Data, &all)
	if len(all) != 1 || all["FEATURES"].Host != "127.0.0.1" {
		t.Fatalf("server get all: %s", r.Data)
	}
	r = post(t, base, "/v1/service/query", `{"service_name":"upload"}`)
	var q struct {
		Info []registry.ServiceView `json:"service_info"`
	}
	json.Unmarshal(r.Data, &q)
	if len(q.Info) != 1 || q.Info[0].URL != "http://127.0.0.1:9090/v1/upload" || q.Info[0].Method != "POST" || q.Info[0].Params["limit"] != "10" {
		t.Fatalf("service query: %s", r.Data)
	}
	ep, err := reg.Resolve(context.Background(), "features", "upload")
	if err != nil || ep.URL() != "http://127.0.0.1:9090/v1/upload" || ep.Service.Headers["X-K"] != "v" {
		t.Fatalf("resolve: %+v %v", ep, err)
	}
	// Re-registering the server moves its services.
	post(t, base, "/v1/server/features/register", `{"host":"10.0.0.7","port":8443,"protocol":"https"}`)
	if ep, _ := reg.Resolve(context.Background(), "FEATURES", "upload"); ep.URL() != "https://10.0.0.7:8443/v1/upload" {
		t.Fatalf("after the move: %s", ep.URL())
	}
	if _, err := reg.Resolve(context.Background(), "features", "download"); !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), `"download"`) {
		t.Fatalf("missing service: %v", err)
	}

	// Delete the service, then the server.
	if r := post(t, base, "/v1/service/delete", `{"server_name":"Features","service_name":"upload"}`); r.RetCode != 0 {
		t.Fatalf("service delete: %+v", r)
	}
	if r := post(t, base, "/v1/service/query", `{"service_name":"upload"}`); r.RetCode != 0 || !strings.Contains(string(r.Data), `"service_info":[]`) {
		t.Fatalf("query after delete: %+v %s", r, r.Data)
	}
	if r := post(t, base, "/v1/server/features/delete", ""); r.RetCode != 0 {
		t.Fatalf("server delete: %+v", r)
	}
	if r := post(t, base, "/v1/server/get", ""); string(r.Data) != "{}" {
		t.Fatalf("servers after delete: %s", r.Data)
	}
}

// TestRestartKeepsRegistrations closes and reopens the bbolt file.
func TestRestartKeepsRegistrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(db.Registry(), registry.Options{})
	if _, err := reg.RegisterServer(t.Context(), "a", registry.ServerInput{Host: "127.0.0.1", Port: json.RawMessage("81")}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RegisterService(t.Context(), registry.ServiceInput{ServerName: "A", ServiceName: "s", URI: "/s", Method: "get"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg = registry.New(db.Registry(), registry.Options{})
	ep, err := reg.Resolve(context.Background(), "a", "s")
	if err != nil || ep.URL() != "http://127.0.0.1:81/s" || ep.Service.Method != "GET" {
		t.Fatalf("after reopening: %+v %v", ep, err)
	}
	// Deleting the server leaves the service, which no longer resolves.
	if ok, err := reg.DeleteServer(t.Context(), "A"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, err := reg.Resolve(context.Background(), "a", "s"); !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), `server "A"`) {
		t.Fatalf("service of a deleted server: %v", err)
	}
}

// failingTables is a shared copy whose every call fails, as Redis does
// when it is down.
type failingTables struct{}

var errDown = errors.New("dial tcp 127.0.0.1:1: connect: connection refused")

func (failingTables) Put(context.Context, string, string, []byte) error { return errDown }
func (failingTables) Get(context.Context, string, string) ([]byte, bool, error) {
	return nil, false, errDown
}
func (failingTables) All(context.Context, string) (map[string][]byte, error) { return nil, errDown }
func (failingTables) Delete(context.Context, string, string) (bool, error)   { return false, errDown }

// TestSharedDown: with the shared copy failing, reads come from the local
// copy and are counted; registrations are refused with 103.
func TestSharedDown(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	errs := 0
	reg := registry.New(db.Registry(), registry.Options{StoreError: func(error) { errs++ }})
	reg.RegisterServer(t.Context(), "a", registry.ServerInput{Host: "127.0.0.1", Port: json.RawMessage("81")})
	reg.RegisterService(t.Context(), registry.ServiceInput{ServerName: "a", ServiceName: "s", URI: "/s"})
	reg.SetShared(failingTables{})
	if _, err := reg.Resolve(context.Background(), "a", "s"); err != nil {
		t.Fatalf("resolve with redis down: %v", err)
	}
	_, err = reg.RegisterServer(t.Context(), "b", registry.ServerInput{Host: "127.0.0.1", Port: json.RawMessage("82")})
	if code, ok := registry.IsError(err); !ok || code != registry.RetFailed || !strings.Contains(err.Error(), "redis") {
		t.Fatalf("register with redis down: %v", err)
	}
	if errs < 3 {
		t.Errorf("%d store errors counted, want one per failed call (sync, 2 reads, 1 write)", errs)
	}
}

// TestRedisRestartedEmpty: a Redis that comes back without its data is
// seeded from the local copy on the first read that misses, so a service
// registered before keeps resolving; a service deleted through Redis while
// Redis keeps its data is gone from the local copy after the next sync.
func TestRedisRestartedEmpty(t *testing.T) {
	rs := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg := registry.New(db.Registry(), registry.Options{})
	reg.SetShared(redisstore.NewRegistry(c, time.Second))
	if _, err := reg.RegisterServer(t.Context(), "a", registry.ServerInput{Host: "127.0.0.1", Port: json.RawMessage("81")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kept", "gone"} {
		if _, err := reg.RegisterService(t.Context(), registry.ServiceInput{ServerName: "a", ServiceName: name, URI: "/" + name}); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted through Redis directly, as another replica would.
	redisstore.NewRegistry(c, time.Second).Delete(t.Context(), registry.TableServices, "A/gone")
	if err := reg.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Resolve(context.Background(), "a", "gone"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("deleted by another replica: %v", err)
	}

	rs.Restart() // empty: no persistence
	if ep, err := reg.Resolve(context.Background(), "a", "kept"); err != nil || ep.URL() != "http://127.0.0.1:81/kept" {
		t.Fatalf("after redis restarted empty: %+v %v", ep, err)
	}
	n, err := c.HLen(context.Background(), redisstore.RegistryKeyPrefix+registry.TableServices).Result()
	if err != nil || n != 1 {
		t.Fatalf("redis was not seeded: %d services, %v", n, err)
	}
}

// cancelOnSend is a go-redis hook that cancels a context as a command is
// about to be sent: the call is then in flight when its context ends.
type cancelOnSend struct{ cancel context.CancelFunc }

func (h cancelOnSend) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cancelOnSend) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cancel()
		return next(ctx, cmd)
	}
}
func (h cancelOnSend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLookupEndsWithTheContext: a lookup through a Redis that does not
// answer (CLIENT PAUSE) returns as soon as the request's context ends —
// cancelled while the command is in flight, or at its deadline — with the
// context's error, long before the Redis timeout (10s). The request gave
// up: Redis is not counted as failed and the local copy is not read.
func TestLookupEndsWithTheContext(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctx  func(c *redis.Client) context.Context
		want error
	}{
		{"cancelled in flight", func(c *redis.Client) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			c.AddHook(cancelOnSend{cancel})
			return ctx
		}, context.Canceled},
		{"deadline", func(*redis.Client) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A private server: a paused Redis cannot be unpaused (CLIENT
			// UNPAUSE waits too); closing the client and killing the
			// server end the calls still waiting.
			rs := testredis.Start(t)
			const redisTimeout = 10 * time.Second
			c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, ReadTimeout: redisTimeout, WriteTimeout: redisTimeout})
			t.Cleanup(func() { c.Close() })
			db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			storeErrors := 0
			reg := registry.New(db.Registry(), registry.Options{StoreError: func(error) { storeErrors++ }})
			reg.SetShared(redisstore.NewRegistry(c, redisTimeout))
			if _, err := reg.RegisterServer(t.Context(), "a", registry.ServerInput{Host: "127.0.0.1", Port: json.RawMessage("81")}); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.RegisterService(t.Context(), registry.ServiceInput{ServerName: "a", ServiceName: "s", URI: "/s"}); err != nil {
				t.Fatal(err)
			}

			admin := redis.NewClient(&redis.Options{Addr: rs.Addr})
			t.Cleanup(func() { admin.Close() })
			if err := admin.Do(t.Context(), "CLIENT", "PAUSE", "60000", "ALL").Err(); err != nil {
				t.Fatalf("pausing redis: %v", err)
			}

			ctx := tt.ctx(c)
			start := time.Now()
			ep, err := reg.Resolve(ctx, "a", "s")
			if elapsed := time.Since(start); elapsed > redisTimeout/2 {
				t.Errorf("the lookup took %v: it waited for redis, not for the context", elapsed)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Resolve = %+v, %v; want the context's error %v", ep, err, tt.want)
			}
			if storeErrors != 0 {
				t.Errorf("%d store errors counted for a request that gave up", storeErrors)
			}
		})
	}
}

// TestProtocolFaults: what the endpoints refuse before they run answers
// the FATE envelope with its HTTP status, and Deny maps the admin
// listener's refusals to FATE Flow's return codes.
func TestProtocolFaults(t *testing.T) {
	_, base := newRegistry(t, filepath.Join(t.TempDir(), "r.db"))
	tests := []struct {
		method, path, body string
		status, code       int
		msg                string
	}{
		{"GET", "/v1/server/get", "", 405, 100, "method GET is not allowed on /v1/server/get"},
		{"DELETE", "/v1/server/x/delete", "", 405, 100, "use POST"},
		{"POST", "/v1/server/x", "", 404, 100, "no FATE Flow registry endpoint /v1/server/x"},
		{"POST", "/v1/server/x/y/register", "", 404, 100, "no FATE Flow registry endpoint"},
		{"POST", "/v1/service/registry/x", "", 404, 100, "no FATE Flow registry endpoint"},
		{"POST", "/v1/server/x/register", `{"host":`, 400, 100, "not the expected JSON object"},
		{"POST", "/v1/service/registry", `{"server_name":1}`, 400, 100, "not the expected JSON object"},
		{"POST", "/v1/server/x/register", strings.Repeat(" ", registry.MaxBody+1), 413, 100, "request body is over 1048576 bytes"},
		{"POST", "/v1/server/x/register", strings.Repeat(" ", registry.MaxBody) + `{"host":"h","port":1}`, 413, 100, "over"},
		{"POST", "/v1/server/x/register", strings.Repeat(" ", registry.MaxBody-21) + `{"host":"h","port":1}`, 200, 0, "success"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r reply
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tt.status || r.RetCode != tt.code || !strings.Contains(r.RetMsg, tt.msg) {
			t.Errorf("%s %s: HTTP %d retcode %d %q (%v); want HTTP %d retcode %d containing %q", tt.method, tt.path, resp.StatusCode, r.RetCode, r.RetMsg, err, tt.status, tt.code, tt.msg)
		}
	}

	for status, code := range map[int]int{401: registry.RetAuthentication, 403: registry.RetPermission, 503: registry.RetError} {
		w := httptest.NewRecorder()
		registry.Deny(w, status, "why")
		var r reply
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || w.Code != status || r.RetCode != code || r.RetMsg != "why" {
			t.Errorf("Deny(%d): HTTP %d %s; want retcode %d", status, w.Code, w.Body, code)
		}
	}
}
