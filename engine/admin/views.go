package admin

import (
	"errors"
	"net/http"
	"sort"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/view"
)

// The read endpoints answer the values of engine/view as they are; the
// admin pages template the same values.

func (a *API) overview(w http.ResponseWriter, r *http.Request) {
	ok(w, view.OverviewOf(a.gw.Current()))
}

func (a *API) definitionPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	f := view.DefinitionFilter{Code: q.Get("code"), Status: q.Get("status"), Q: q.Get("q")}
	ok(w, pageOf(view.Definitions(a.gw.Current(), f), pageNo, pageSize))
}

func (a *API) definitionGet(w http.ResponseWriter, r *http.Request) {
	d, found := view.FindDefinition(a.gw.Current(), r.PathValue("id"))
	if !found {
		fail(w, http.StatusNotFound, "no API %s in the repository", r.PathValue("id"))
		return
	}
	ok(w, d)
}

func (a *API) definitions(w http.ResponseWriter, r *http.Request) {
	ok(w, view.Definitions(a.gw.Current(), view.DefinitionFilter{Status: string(config.StatusOnline)}))
}

func (a *API) credentialPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	ok(w, pageOf(view.Credentials(a.gw.Current(), r.URL.Query().Get("appId")), pageNo, pageSize))
}

func (a *API) credentialGet(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	c, found := view.FindCredential(a.gw.Current(), id)
	if !found {
		fail(w, http.StatusNotFound, "no credential %q in the repository", id)
		return
	}
	ok(w, c)
}

func (a *API) credentialSimple(w http.ResponseWriter, r *http.Request) {
	type simple struct {
		AppID       string `json:"appId"`
		Description string `json:"description,omitempty"`
		Enabled     bool   `json:"enabled"`
	}
	list := []simple{}
	for _, c := range a.gw.Current().Repo.Credentials {
		list = append(list, simple{c.AppID, c.Description, c.IsEnabled()})
	}
	ok(w, list)
}

func (a *API) policyPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	ok(w, pageOf(view.Policies(a.gw.Current(), r.URL.Query().Get("name")), pageNo, pageSize))
}

func (a *API) policyGet(w http.ResponseWriter, r *http.Request) {
	p, found := view.FindPolicy(a.gw.Current(), r.PathValue("id"))
	if !found {
		fail(w, http.StatusNotFound, "no rate-limit policy %q in the repository", r.PathValue("id"))
		return
	}
	ok(w, p)
}

func (a *API) policySimple(w http.ResponseWriter, r *http.Request) {
	type simple struct {
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Limit     int    `json:"limit"`
		Window    int    `json:"windowSeconds"`
	}
	list := []simple{}
	for _, p := range a.gw.Current().Repo.Policies {
		list = append(list, simple{p.Name, p.Algorithm, p.Limit, p.WindowSeconds})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	ok(w, list)
}

func (a *API) accessLogPage(w http.ResponseWriter, r *http.Request) {
	if a.acc == nil {
		fail(w, http.StatusNotFound, "the access log is off (apiPortal.enableAudit)")
		return
	}
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	f, err := view.AccessLogFilter(r.URL.Query())
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	before, byCursor := q.Get("before"), q.Has("before")
	switch q.Get("noTotal") {
	case "", "false", "0":
	case "true", "1":
		byCursor = true
	default:
		fail(w, http.StatusBadRequest, "noTotal must be true or false")
		return
	}
	if byCursor {
		// Paging by cursor: each page costs its own records only, however
		// deep it is, and records written meanwhile do not shift it.
		if pageNo != 1 {
			fail(w, http.StatusBadRequest, "pageNo cannot be combined with before or noTotal: ask the next page with before=<next>")
			return
		}
		if q.Has("before") && before == "" {
			fail(w, http.StatusBadRequest, "before must be a record id (the next of the page before); omit it, with noTotal=true, for the first page")
			return
		}
		list, next, err := a.acc.Before(f, before, pageSize)
		if errors.Is(err, store.ErrBadCursor) {
			fail(w, http.StatusBadRequest, "before: %q is %v", before, store.ErrBadCursor)
			return
		}
		if err != nil {
			a.log.Error("access log query failed", "error", err)
			fail(w, http.StatusInternalServerError, "access log query failed: %v", err)
			return
		}
		ok(w, CursorPage{List: list, Next: next})
		return
	}
	list, total, err := a.acc.Page(f, pageNo, pageSize)
	if err != nil {
		a.log.Error("access log query failed", "error", err)
		fail(w, http.StatusInternalServerError, "access log query failed: %v", err)
		return
	}
	if list == nil {
		list = []*store.Record{}
	}
	ok(w, Page{Total: total, List: list})
}

func (a *API) accessLogGet(w http.ResponseWriter, r *http.Request) {
	if a.acc == nil {
		fail(w, http.StatusNotFound, "the access log is off (apiPortal.enableAudit)")
		return
	}
	id := r.URL.Query().Get("id")
	rec, err := a.acc.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "no access-log record %q", id)
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "access log: %v", err)
		return
	}
	ok(w, rec)
}
