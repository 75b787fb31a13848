package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/databus-gateway/databus/engine/admin"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/ui"
)

// Health returns the health listener's handler (--health-listen):
// /healthz, /readyz and /metrics and nothing else, so it may bind any
// address without tokens (a kubelet probe or a Prometheus scrape reaches
// the pod's address). Its /readyz says whether each check passed but not
// the details the admin listener's shows (commit messages and authors, the
// storage path, reload and check errors): nothing there is for whoever can
// reach the pod.
func (s *Server) Health() http.Handler {
	mux := http.NewServeMux()
	s.health(mux, false)
	return mux
}

// health registers /healthz, /readyz and /metrics; detail: /readyz shows
// the revision, reloads, git state, storage and check errors.
func (s *Server) health(mux *http.ServeMux, detail bool) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		snap := s.Current()
		ready, checks := s.readiness(snap)
		body := map[string]any{"ready": ready, "checks": checks}
		if detail {
			s.readyDetail(body, snap)
		} else {
			for k, c := range checks {
				c.Error = ""
				checks[k] = c
			}
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
}

// readyDetail adds to the admin listener's /readyz what only operators
// see: the revision, the last reload and git sync, the storage path and
// the access log's state.
func (s *Server) readyDetail(body map[string]any, snap *snapshot.Snapshot) {
	if snap != nil {
		body["revision"] = snap.Revision
		if snap.Git != nil {
			body["git"] = snap.Git
		}
	}
	if last := s.LastReload(); last != nil {
		body["lastReload"] = last
	}
	if sync := s.LastSync(); sync != nil {
		body["lastGitSync"] = sync
	}
	if s.storagePath != "" {
		body["storage"] = s.storagePath
	}
	if s.acc != nil {
		// A degraded access log (records being lost, a full disk say)
		// shows here but does not make the gateway unready: the portal
		// keeps answering.
		body["accessLog"] = s.acc.Health()
	}
}

// Admin returns the admin listener's handler: health, readiness and the
// last reload. The read-only REST API and pages extend it.
func (s *Server) Admin() http.Handler {
	mux := http.NewServeMux()
	s.health(mux, true)
	var acc admin.AccessLog
	if s.acc != nil {
		acc = s.acc
	}
	api := admin.New(adminView{s}, acc, s.log)
	reg := s.Registry()
	if reg != nil {
		api.SetRegistry(reg)
	}
	api.SetFleet(s.Fleet)
	api.Register(mux)
	if s.opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", api.Require(admin.RoleOperator, pprof.Index))
		mux.HandleFunc("GET /debug/pprof/cmdline", api.Require(admin.RoleOperator, pprof.Cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", api.Require(admin.RoleOperator, pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/symbol", api.Require(admin.RoleOperator, pprof.Symbol))
		mux.HandleFunc("GET /debug/pprof/trace", api.Require(admin.RoleOperator, pprof.Trace))
	}
	ui.New(ui.Source{
		Current: s.Current,
		LastReload: func() *ui.Reload {
			last := s.LastReload()
			if last == nil {
				return nil
			}
			return &ui.Reload{At: last.At, Reason: last.Reason, OK: last.OK, Revision: last.Revision, Errors: last.Errors, Error: last.Error}
		},
		Git:       func() *gitops.Repo { return s.git },
		AccessLog: acc,
		Traffic:   s.metrics.Traffic.Window,
		Registry:  uiRegistry(reg),
		Fleet:     s.Fleet,
		Logger:    s.log,
		Sessions:  api.Sessions(),
	}).Register(mux)
	if reg == nil {
		return mux
	}
	// The FATE Flow compatible registry (DESIGN.md section 6) owns every
	// path under /v1/, ahead of the mux: its clients read {retcode,
	// retmsg} from every answer, including the refusals of authentication,
	// a wrong method, an unknown or unclean path.
	fate := reg.Handler(func(h http.HandlerFunc) http.HandlerFunc {
		return api.RequireWith(admin.RoleRegistry, registry.Deny, h)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if registry.IsFatePath(r.URL.Path) {
			fate.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// adminView adapts the Server to what the admin API reads.
type adminView struct{ s *Server }

func (v adminView) Current() *snapshot.Snapshot { return v.s.Current() }
func (v adminView) Acquire() *snapshot.Snapshot { return v.s.snap.Acquire() }
func (v adminView) Reload(ctx context.Context, reason string) any {
	return v.s.Refresh(ctx, reason)
}
func (v adminView) Git() *gitops.Repo { return v.s.git }
func (v adminView) LastReload() any   { return v.s.LastReload() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// uiRegistry is reg for the pages (a nil interface when there is none).
func uiRegistry(reg *registry.Registry) admin.Registry {
	if reg == nil {
		return nil
	}
	return reg
}
