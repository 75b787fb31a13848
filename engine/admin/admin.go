// Package admin is the read-only admin REST API of DESIGN.md section 5, on
// the admin listener: what is deployed (definitions, credentials without
// secrets, policies), what happened (the access log), a debug invoke and a
// reload. Nothing here changes the configuration: mutations answer 405 and
// name the file to change through a pull request.
package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/view"
)

// Gateway is what the admin API reads from the running gateway.
type Gateway interface {
	// Current is the Snapshot serving, for views that read it.
	Current() *snapshot.Snapshot
	// Acquire is the Snapshot serving, held for a call that uses its
	// resources (the debug invoke) until the caller's Release.
	Acquire() *snapshot.Snapshot
	// Reload loads the repository now, bounded by ctx (in git-sync mode
	// it fetches first); the result is answered as it is.
	Reload(ctx context.Context, reason string) any
	// LastReload is the latest reload attempt.
	LastReload() any
	// Git is the checkout the configuration comes from; nil outside git.
	Git() *gitops.Repo
}

// AccessLog is the part of the access log the admin API uses.
type AccessLog interface {
	Page(f store.Filter, pageNo, pageSize int) ([]*store.Record, int, error)
	Before(f store.Filter, cursor string, pageSize int) ([]*store.Record, string, error)
	Get(id string) (*store.Record, error)
	Append(r *store.Record)
}

// Registry is the service registry as the admin API shows it.
type Registry interface {
	Servers(ctx context.Context) ([]registry.Server, error)
	Views(ctx context.Context) ([]registry.ServiceView, error)
	Shared() bool
}

// Prefix is the path prefix of the admin REST API.
const Prefix = "/databus/gateway"

// API serves the admin REST endpoints.
type API struct {
	gw  Gateway
	log *slog.Logger
	acc AccessLog // nil: the access log is off
	reg Registry  // nil: no registry endpoints
	// fleet is the replicas as this one sees them; nil: no fleet endpoint.
	fleet func() fleet.View

	sessions *Sessions
}

// SetRegistry adds the registry's read-only endpoints; call it before
// Register.
func (a *API) SetRegistry(r Registry) { a.reg = r }

// SetFleet adds GET /databus/gateway/fleet, which answers f's view; f
// must make no slow call (the gateway's answers from what its heartbeat
// loop last read). Call it before Register.
func (a *API) SetFleet(f func() fleet.View) { a.fleet = f }

// New returns the admin API. acc may be nil.
func New(gw Gateway, acc AccessLog, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{gw: gw, acc: acc, log: log, sessions: NewSessions(0, 0, nil)}
}

// Sessions is the store of signed-in browsers the API accepts cookies
// from; the pages sign in and out through it.
func (a *API) Sessions() *Sessions { return a.sessions }

// Register mounts the endpoints on mux.
func (a *API) Register(mux *http.ServeMux) {
	allow := map[string]string{} // exact paths and their method, for the catch-all below
	get := func(path string, h http.HandlerFunc) {
		mux.HandleFunc("GET "+Prefix+path, a.Require(RoleViewer, h))
		if !strings.Contains(path, "{") {
			allow[Prefix+path] = http.MethodGet
		}
	}
	get("/definition/page", a.definitionPage)
	get("/definition/{id}", a.definitionGet)
	get("/definitions", a.definitions)
	get("/credential/page", a.credentialPage)
	get("/credential/get", a.credentialGet)
	get("/credential/list-simple", a.credentialSimple)
	get("/policy/rate-limit/page", a.policyPage)
	get("/policy/rate-limit/simple-list", a.policySimple)
	get("/policy/rate-limit/{id}", a.policyGet)
	get("/access-log/page", a.accessLogPage)
	get("/access-log/get", a.accessLogGet)
	get("/reload/last", a.lastReload)
	get("/overview", a.overview)
	get("/version/list", a.versionList)
	get("/version/get", a.versionGet)
	get("/version/page", a.versionPage)
	get("/version/compare", a.versionCompare)
	if a.fleet != nil {
		get("/fleet", func(w http.ResponseWriter, r *http.Request) { ok(w, a.fleet()) })
	}
	if a.reg != nil {
		get("/registry/servers", a.registryServers)
		get("/registry/services", a.registryServices)
	}
	mux.HandleFunc("POST "+Prefix+"/cache/refresh", a.Require(RoleOperator, a.refresh))
	mux.HandleFunc("POST "+Prefix+"/invoke", a.Require(RoleOperator, a.invoke))
	allow[Prefix+"/cache/refresh"] = http.MethodPost
	allow[Prefix+"/invoke"] = http.MethodPost

	// The configuration changes through pull requests only.
	for _, p := range []string{"/definition", "/definition/", "/credential", "/credential/", "/policy", "/policy/", "/version/rollback"} {
		mux.HandleFunc(Prefix+p, a.Require(RoleViewer, a.readOnly))
	}
	// Anything else under the prefix answers in the admin envelope too, not
	// with the mux's plain-text 404 or 405.
	mux.HandleFunc(Prefix+"/", a.Require(RoleViewer, func(w http.ResponseWriter, r *http.Request) {
		if m, ok := allow[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			fail(w, http.StatusMethodNotAllowed, "%s needs %s", r.URL.Path, m)
			return
		}
		fail(w, http.StatusNotFound, "no such admin endpoint: %s", r.URL.Path)
	}))
}

// Reply is the admin envelope: code 0 on success, else the HTTP status.
type Reply struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func ok(w http.ResponseWriter, data any) {
	write(w, http.StatusOK, Reply{Code: 0, Message: "", Data: data})
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	write(w, status, Reply{Code: status, Message: fmt.Sprintf(format, args...)})
}

func write(w http.ResponseWriter, status int, r Reply) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(r)
}

// paging reads pageNo (from 1) and pageSize (1 to 100, default 10).
func paging(r *http.Request) (pageNo, pageSize int, err error) {
	pageNo, pageSize = 1, 10
	if v := r.URL.Query().Get("pageNo"); v != "" {
		if pageNo, err = strconv.Atoi(v); err != nil || pageNo < 1 {
			return 0, 0, fmt.Errorf("pageNo must be a whole number from 1, got %q", v)
		}
	}
	if v := r.URL.Query().Get("pageSize"); v != "" {
		if pageSize, err = strconv.Atoi(v); err != nil || pageSize < 1 || pageSize > 100 {
			return 0, 0, fmt.Errorf("pageSize must be a whole number from 1 to 100, got %q", v)
		}
	}
	return pageNo, pageSize, nil
}

// Page is the data of a paged answer.
type Page struct {
	Total int `json:"total"`
	List  any `json:"list"`
}

// CursorPage is the data of a page asked by cursor (access-log/page with
// before= or noTotal=true): no total, and the cursor of the next page, ""
// after the last.
type CursorPage struct {
	List any    `json:"list"`
	Next string `json:"next"`
}

func pageOf[T any](items []T, pageNo, pageSize int) Page {
	from := min((pageNo-1)*pageSize, len(items))
	to := min(from+pageSize, len(items))
	return Page{Total: len(items), List: items[from:to]}
}

func (a *API) readOnly(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		fail(w, http.StatusNotFound, "no such admin endpoint: %s", r.URL.Path)
		return
	}
	snap := a.gw.Current()
	rest := strings.TrimPrefix(r.URL.Path, Prefix+"/")
	w.Header().Set("Allow", "GET")
	// The object is named by ?id= (e.g. credential/get?id=, as the GET
	// endpoints do, or a delete?id=) or by the last path segment.
	ids := []string{r.URL.Query().Get("id")}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		ids = append(ids, rest[i+1:])
	}
	switch {
	case strings.HasPrefix(rest, "version/rollback"):
		fail(w, http.StatusMethodNotAllowed, "Databus is configured through git: run `databus rollback API --to REV --commit` and open a pull request")
	case strings.HasPrefix(rest, "definition"):
		file := "apis/<code>.yaml"
		for _, id := range ids {
			if rt := view.Route(snap, id); rt != nil { // as GET definition/{id} reads it
				file = rt.API.Source.File
				break
			}
		}
		fail(w, http.StatusMethodNotAllowed, "Databus is configured through git: change %s in a pull request", file)
	case strings.HasPrefix(rest, "credential"):
		file := "credentials/<appId>.yaml"
		for _, id := range ids {
			if c := snap.Repo.Credential(id); c != nil {
				file = c.Source.File
				break
			}
		}
		fail(w, http.StatusMethodNotAllowed, "Databus is configured through git: change %s in a pull request", file)
	default:
		file := "policies/<name>.yaml"
		for _, id := range ids {
			if p := snap.Repo.Policy(id); p != nil {
				file = p.Source.File
				break
			}
		}
		fail(w, http.StatusMethodNotAllowed, "Databus is configured through git: change %s in a pull request", file)
	}
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	ok(w, a.gw.Reload(r.Context(), "cache/refresh"))
}

func (a *API) lastReload(w http.ResponseWriter, r *http.Request) {
	ok(w, a.gw.LastReload())
}
