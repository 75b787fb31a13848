package flow

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/databus-gateway/databus/engine/registry"
)

// httpRegistry is a Resolver over servers and services a test registers,
// standing for the gateway's registry (engine/registry, tested there and
// end to end in engine/gateway).
type httpRegistry struct {
	mu       sync.Mutex
	servers  map[string]registry.Server
	services map[string]registry.Service
}

func newHTTPRegistry() *httpRegistry {
	return &httpRegistry{servers: map[string]registry.Server{}, services: map[string]registry.Service{}}
}

func (r *httpRegistry) server(name, rawURL string) {
	u, _ := url.Parse(rawURL)
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servers[strings.ToUpper(name)] = registry.Server{Name: strings.ToUpper(name), Host: host, Port: p, Protocol: "http"}
}

func (r *httpRegistry) service(s registry.Service) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.ServerName = strings.ToUpper(s.ServerName)
	r.services[s.ServerName+"/"+s.ServiceName] = s
}

func (r *httpRegistry) Resolve(_ context.Context, server, name string) (registry.Endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	svc, ok := r.services[strings.ToUpper(server)+"/"+name]
	if !ok {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	srv, ok := r.servers[strings.ToUpper(server)]
	if !ok {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	return registry.Endpoint{Server: srv, Service: svc}, nil
}

const serviceSteps = `
steps:
  - {id: start, type: start}
  - id: q
    type: http
    http:
      service: {server: features, name: query}
      headers: {X-Step: step, X-Both: step}
      query: {page: '${.request.body.page}'}
  - {id: end, type: end}
`

// TestServiceStep calls a registry service: the URL, method, headers and
// params come from the registration, the step's own headers and query win,
// the URL is resolved at every call (a moved server is followed), and a
// missing service or registry is a 502 naming it.
func TestServiceStep(t *testing.T) {
	first := newUpstream(t, jsonReply(200, `{"from":"first"}`))
	second := newUpstream(t, jsonReply(200, `{"from":"second"}`))
	reg := newHTTPRegistry()
	env := testEnv(t)
	env.Services = reg
	f := compileFlow(t, env, serviceSteps, "")

	mustFail(t, run(t, f, jsonReq(`{"page":2}`)), http.StatusBadGateway, `step "q"`, `service "query" of server "FEATURES"`, "not registered")

	reg.server("features", first.URL)
	reg.service(registry.Service{ServerName: "features", ServiceName: "query", URI: "/v1/query?fixed=1", Method: "PUT",
		Headers: map[string]string{"X-Reg": "reg", "X-Both": "reg"}, Params: map[string]string{"limit": "10", "page": "1"}})
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"page":2}`))), `{"from":"first"}`)
	got := first.requests()[0]
	if got.Method != http.MethodPut || got.Path != "/v1/query" {
		t.Errorf("request: %s %s, want PUT /v1/query (the registered method and uri)", got.Method, got.Path)
	}
	q, _ := url.ParseQuery(got.Query)
	if q.Get("fixed") != "1" || q.Get("limit") != "10" || q.Get("page") != "2" {
		t.Errorf("query %q: want the uri's, the registered params and the step's page winning", got.Query)
	}
	if got.Header.Get("X-Reg") != "reg" || got.Header.Get("X-Step") != "step" || got.Header.Get("X-Both") != "step" {
		t.Errorf("headers %v: want the registered ones and the step's winning", got.Header)
	}
	if u := result(t, run(t, f, jsonReq(`{"page":3}`)), "q").Request.(map[string]any)["url"]; !strings.HasPrefix(u.(string), first.URL+"/v1/query?") {
		t.Errorf("recorded url %v", u)
	}

	// The server moves: the next call goes to it.
	reg.server("FEATURES", second.URL)
	jsonEqual(t, mustOK(t, run(t, f, jsonReq(`{"page":2}`))), `{"from":"second"}`)

	// A step that names its method keeps it.
	g := compileFlow(t, env, strings.Replace(serviceSteps, "service: {server: features, name: query}", "service: {server: features, name: query}\n      method: GET", 1), "")
	mustOK(t, run(t, g, jsonReq(`{"page":2}`)))
	if m := second.requests()[len(second.requests())-1].Method; m != http.MethodGet {
		t.Errorf("method %s, want the step's GET", m)
	}

	env.Services = nil
	f = compileFlow(t, env, serviceSteps, "")
	mustFail(t, run(t, f, jsonReq(`{}`)), http.StatusBadGateway, `step "q"`, "the service registry is not available")
}
