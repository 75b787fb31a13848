package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
)

// Reply is FATE Flow's answer: retcode 0 and "success", or a code and what
// went wrong.
type Reply struct {
	RetCode int    `json:"retcode"`
	RetMsg  string `json:"retmsg"`
	Data    any    `json:"data,omitempty"`
}

// maxBody bounds a registration's body.
const maxBody = 1 << 20

// Register mounts the FATE Flow 1.x registry endpoints (DESIGN.md section
// 6) on mux; wrap adds the admin listener's authentication (role
// registry).
func (r *Registry) Register(mux *http.ServeMux, wrap func(http.HandlerFunc) http.HandlerFunc) {
	h := func(pattern string, f func(*http.Request, []byte) (any, error)) {
		mux.HandleFunc(pattern, wrap(func(w http.ResponseWriter, req *http.Request) {
			body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
			if err != nil {
				reply(w, nil, invalid("request body: %v", err))
				return
			}
			data, err := f(req, body)
			reply(w, data, err)
		}))
	}
	h("POST /v1/server/{name}/register", func(req *http.Request, body []byte) (any, error) {
		var in ServerInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return r.RegisterServer(req.Context(), req.PathValue("name"), in)
	})
	h("POST /v1/server/{name}/get", func(req *http.Request, _ []byte) (any, error) {
		s, ok, err := r.Server(req.Context(), req.PathValue("name"))
		if err != nil {
			return nil, failed("%v", err)
		}
		if !ok {
			return nil, invalid("server %s is not registered", ServerKey(req.PathValue("name")))
		}
		return s, nil
	})
	h("POST /v1/server/get", func(req *http.Request, _ []byte) (any, error) {
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
	h("POST /v1/server/{name}/delete", func(req *http.Request, _ []byte) (any, error) {
		name := ServerKey(req.PathValue("name"))
		ok, err := r.DeleteServer(req.Context(), name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, invalid("server %s is not registered", name)
		}
		return map[string]string{"server_name": name}, nil
	})
	h("POST /v1/service/registry", func(req *http.Request, body []byte) (any, error) {
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
	h("POST /v1/service/query", func(req *http.Request, body []byte) (any, error) {
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
	h("POST /v1/service/delete", func(req *http.Request, body []byte) (any, error) {
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
		return invalid("request body is not the expected JSON object: %v", err)
	}
	return nil
}

func reply(w http.ResponseWriter, data any, err error) {
	rep := Reply{RetCode: RetOK, RetMsg: "success", Data: data}
	if err != nil {
		rep = Reply{RetCode: RetFailed, RetMsg: "operation failed: " + err.Error()}
		if code, ok := IsError(err); ok {
			rep = Reply{RetCode: code, RetMsg: err.Error()}
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(rep)
}
