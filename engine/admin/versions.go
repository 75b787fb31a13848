package admin

import (
	"errors"
	"net/http"

	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/view"
)

// Versions of an API are the git commits that changed its file (DESIGN.md
// section 5): list, get (the file as of a commit), page, compare.

func (a *API) versionsOf(w http.ResponseWriter, r *http.Request) ([]view.Version, string, bool) {
	g := a.gw.Git()
	if g == nil {
		fail(w, http.StatusNotFound, "%v", view.ErrNoGit)
		return nil, "", false
	}
	apiID := r.URL.Query().Get("apiId")
	if apiID == "" {
		fail(w, http.StatusBadRequest, "apiId (code:version) is required")
		return nil, "", false
	}
	vs, id, err := view.Versions(g, apiID)
	switch {
	case errors.Is(err, gitops.ErrNotFound):
		fail(w, http.StatusNotFound, "%v", err)
		return nil, "", false
	case err != nil:
		fail(w, http.StatusInternalServerError, "%v", err)
		return nil, "", false
	}
	return vs, id, true
}

func (a *API) versionList(w http.ResponseWriter, r *http.Request) {
	if vs, _, found := a.versionsOf(w, r); found {
		ok(w, vs)
	}
}

func (a *API) versionPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if vs, _, found := a.versionsOf(w, r); found {
		ok(w, pageOf(vs, pageNo, pageSize))
	}
}

func (a *API) versionGet(w http.ResponseWriter, r *http.Request) {
	vs, apiID, found := a.versionsOf(w, r)
	if !found {
		return
	}
	id := r.URL.Query().Get("id")
	v := view.FindVersion(vs, id)
	if v == nil {
		fail(w, http.StatusNotFound, "%q is not a version of %s (see version/list?apiId=%s)", id, apiID, apiID)
		return
	}
	f, err := view.FileAt(a.gw.Git(), apiID, v)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	ok(w, f)
}

func (a *API) versionCompare(w http.ResponseWriter, r *http.Request) {
	vs, apiID, found := a.versionsOf(w, r)
	if !found {
		return
	}
	q := r.URL.Query()
	src, dst := view.FindVersion(vs, q.Get("sourceId")), view.FindVersion(vs, q.Get("targetId"))
	if src == nil || dst == nil {
		fail(w, http.StatusNotFound, "sourceId and targetId must be versions of %s (see version/list?apiId=%s)", apiID, apiID)
		return
	}
	c, err := view.Compare(a.gw.Git(), apiID, src, dst)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	ok(w, c)
}
