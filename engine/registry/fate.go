package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Reply is FATE Flow's answer: retcode 0 and "success", or a code and what
// went wrong.
type Reply struct {
	RetCode int    `json:"retcode"`
	RetMsg  string `json:"retmsg"`
	Data    any    `json:"data,omitempty"`
}

// MaxBody bounds a registration's body (1 MiB); a larger one is refused
// with HTTP 413.
const MaxBody = 1 << 20

// Return codes of FATE Flow 1.x (its RetCode) for refusals before the
// endpoint runs.
const (
	RetPermission     = 108 // PERMISSION_ERROR: the token's role does not allow it
	RetAuthentication = 109 // AUTHENTICATION_ERROR: no known token
)

// Prefix is the path prefix of the FATE Flow endpoints: every answer under
// it (and to Prefix without its slash) is a FATE reply.
const Prefix = "/v1/"

// IsFatePath reports whether path belongs to the FATE Flow endpoints.
func IsFatePath(path string) bool {
	return path == "/v1" || strings.HasPrefix(path, Prefix)
}

// Deny answers a refusal in the FATE envelope with status: retcode 109
// for 401, 108 for 403, 100 otherwise. It has the shape of admin.Deny, for
// the admin listener's authentication.
func Deny(w http.ResponseWriter, status int, msg string) {
	code := RetError
	switch status {
	case http.StatusUnauthorized:
		code = RetAuthentication
	case http.StatusForbidden:
		code = RetPermission
	}
	write(w, status, Reply{RetCode: code, RetMsg: msg})
}

// route is one endpoint: its path as segments after /v1/, "{}" matching
// one segment (the server name).
type route struct {
	segs []string
	f    func(req *http.Request, name string, body []byte) (any, error)
}

func (rt route) match(segs []string) (string, bool) {
	if len(segs) != len(rt.segs) {
		return "", false
	}
	name := ""
	for i, s := range rt.segs {
		switch {
		case s == "{}":
			name = segs[i]
		case s != segs[i]:
			return "", false
		}
	}
	return name, true
}

// Handler serves the FATE Flow 1.x registry endpoints (DESIGN.md section
// 6) under Prefix; wrap adds the admin listener's authentication (role
// registry), answering its refusals with Deny. Every answer is a FATE
// reply {retcode, retmsg, data?}: a refused token 401 (retcode 109) or 403
// (108), an unknown path 404, a method other than POST 405 (with Allow),
// a body that cannot be read 400 or, over MaxBody, 413, a body that is not
// the expected JSON 400 (all retcode 100); an endpoint's own outcome,
// success or refusal, HTTP 200 as FATE Flow answers it.
func (r *Registry) Handler(wrap func(http.HandlerFunc) http.HandlerFunc) http.Handler {
	routes := r.routes()
	return wrap(func(w http.ResponseWriter, req *http.Request) {
		segs, ok := segments(req.URL.EscapedPath())
		var rt *route
		name := ""
		for i := range routes {
			if n, m := routes[i].match(segs); ok && m {
				rt, name = &routes[i], n
				break
			}
		}
		if rt == nil {
			write(w, http.StatusNotFound, Reply{RetCode: RetError, RetMsg: fmt.Sprintf("no FATE Flow registry endpoint %s: the endpoints are POST /v1/server/<name>/register|get|delete, /v1/server/get, /v1/service/registry|query|delete", req.URL.Path)})
			return
		}
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			write(w, http.StatusMethodNotAllowed, Reply{RetCode: RetError, RetMsg: fmt.Sprintf("method %s is not allowed on %s: use POST", req.Method, req.URL.Path)})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				write(w, http.StatusRequestEntityTooLarge, Reply{RetCode: RetError, RetMsg: fmt.Sprintf("request body is over %d bytes", MaxBody)})
				return
			}
			write(w, http.StatusBadRequest, Reply{RetCode: RetError, RetMsg: "reading the request body: " + err.Error()})
			return
		}
		data, err := rt.f(req, name, body)
		var bad *badJSON
		if errors.As(err, &bad) {
			write(w, http.StatusBadRequest, Reply{RetCode: RetError, RetMsg: err.Error()})
			return
		}
		reply(w, data, err)
	})
}

// segments splits an escaped path under Prefix into its unescaped
// segments; false for a path outside it or a bad escape.
func segments(escaped string) ([]string, bool) {
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok {
		return nil, false
	}
	parts := strings.Split(rest, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

func (r *Registry) routes() []route {
	var routes []route
	h := func(pattern string, f func(*http.Request, string, []byte) (any, error)) {
		routes = append(routes, route{segs: strings.Split(strings.TrimPrefix(pattern, Prefix), "/"), f: f})
	}
	h("/v1/server/{}/register", func(req *http.Request, name string, body []byte) (any, error) {
		var in ServerInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return r.RegisterServer(req.Context(), name, in)
	})
	h("/v1/server/{}/get", func(req *http.Request, name string, _ []byte) (any, error) {
		s, ok, err := r.Server(req.Context(), name)
		if err != nil {
			return nil, failed("%v", err)
		}
		if !ok {
			return nil, invalid("server %s is not registered", ServerKey(name))
		}
		return s, nil
	})
	h("/v1/server/get", func(req *http.Request, name string, _ []byte) (any, error) {
		all, err := r.Servers(req.Context())
		if err != nil {
			return nil, failed("%v", err)
		}
		out := make(map[string]Server, len(all))
		for _, s := range all {
			out[s.Name] = s
		}
		return out, nil
	})
	h("/v1/server/{}/delete", func(req *http.Request, name string, _ []byte) (any, error) {
		name = ServerKey(name)
		ok, err := r.DeleteServer(req.Context(), name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalid("server %s is not registered", name)
		}
		return map[string]string{"server_name": name}, nil
	})
	h("/v1/service/registry", func(req *http.Request, name string, body []byte) (any, error) {
		var in ServiceInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		svc, err := r.RegisterService(req.Context(), in)
		if err != nil {
			return nil, err
		}
		return r.view(req.Context(), svc), nil
	})
	h("/v1/service/query", func(req *http.Request, name string, body []byte) (any, error) {
		var in struct {
			ServerName  string `json:"server_name"`
			ServiceName string `json:"service_name"`
		}
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		if in.ServiceName == "" {
			return nil, missing("service_name")
		}
		list, err := r.Services(req.Context(), in.ServerName, in.ServiceName)
		if err != nil {
			return nil, failed("%v", err)
		}
		info := make([]ServiceView, 0, len(list))
		for _, s := range list {
			info = append(info, r.view(req.Context(), s))
		}
		return map[string]any{"service_info": info}, nil
	})
	h("/v1/service/delete", func(req *http.Request, name string, body []byte) (any, error) {
		var in struct {
			ServerName  string `json:"server_name"`
			ServiceName string `json:"service_name"`
		}
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		ok, err := r.DeleteService(req.Context(), in.ServerName, in.ServiceName)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalid("service %s of server %s is not registered", in.ServiceName, ServerKey(in.ServerName))
		}
		return map[string]string{"server_name": ServerKey(in.ServerName), "service_name": in.ServiceName}, nil
	})
	return routes
}

// ServiceView is a service with the URL it resolves to now ("" when its
// server is not registered).
type ServiceView struct {
	Service
	URL string `json:"url"`
}

func (r *Registry) view(ctx context.Context, s Service) ServiceView {
	v := ServiceView{Service: s}
	if srv, ok, err := r.Server(ctx, s.ServerName); err == nil && ok {
		v.URL = Endpoint{Server: srv, Service: s}.URL()
	}
	return v
}

// Views returns the services (all of them) with their URLs, for the admin
// view.
func (r *Registry) Views(ctx context.Context) ([]ServiceView, error) {
	list, err := r.Services(ctx, "", "")
	if err != nil {
		return nil, err
	}
	servers, err := r.Servers(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]Server, len(servers))
	for _, s := range servers {
		byName[s.Name] = s
	}
	out := make([]ServiceView, 0, len(list))
	for _, s := range list {
		v := ServiceView{Service: s}
		if srv, ok := byName[s.ServerName]; ok {
			v.URL = Endpoint{Server: srv, Service: s}.URL()
		}
		out = append(out, v)
	}
	return out, nil
}

func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &badJSON{err}
	}
	return nil
}

// badJSON: the body is not the JSON object the endpoint takes (HTTP 400).
type badJSON struct{ err error }

func (e *badJSON) Error() string {
	return "request body is not the expected JSON object: " + e.err.Error()
}

func reply(w http.ResponseWriter, data any, err error) {
	rep := Reply{RetCode: RetOK, RetMsg: "success", Data: data}
	if err != nil {
		rep = Reply{RetCode: RetFailed, RetMsg: "operation failed: " + err.Error()}
		if code, ok := IsError(err); ok {
			rep = Reply{RetCode: code, RetMsg: err.Error()}
		}
	}
	write(w, http.StatusOK, rep)
}

func write(w http.ResponseWriter, status int, rep Reply) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(rep)
}
