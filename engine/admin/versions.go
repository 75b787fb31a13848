package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/databus-gateway/databus/engine/gitops"
)

// Versions of an API are the git commits that changed its file (DESIGN.md
// section 5): list, get (the file as of a commit), page, compare.

// VersionView is one version of an API.
type VersionView struct {
	ID string `json:"id"` // the commit hash
	gitops.Version
}

func (a *API) versionsOf(w http.ResponseWriter, r *http.Request) ([]VersionView, string, bool) {
	g := a.gw.Git()
	if g == nil {
		fail(w, http.StatusNotFound, "the config repository is not a git checkout: it has no versions")
		return nil, "", false
	}
	apiID := r.URL.Query().Get("apiId")
	if apiID == "" {
		fail(w, http.StatusBadRequest, "apiId (code:version) is required")
		return nil, "", false
	}
	code, version := gitops.ParseAPIRef(apiID)
	vs, err := g.VersionsOfAPI(code, version)
	if errors.Is(err, gitops.ErrNotFound) {
		fail(w, http.StatusNotFound, "no API %s in the repository's history", apiID)
		return nil, "", false
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "versions of %s: %v", apiID, err)
		return nil, "", false
	}
	out := make([]VersionView, len(vs))
	for i, v := range vs {
		out[i] = VersionView{ID: v.Hash, Version: v}
	}
	return out, code + ":" + version, true
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

// findVersion picks the version whose hash starts with id.
func findVersion(vs []VersionView, id string) *VersionView {
	if len(id) < 4 {
		return nil
	}
	for i := range vs {
		if strings.HasPrefix(vs[i].Hash, strings.ToLower(id)) {
			return &vs[i]
		}
	}
	return nil
}

func (a *API) versionGet(w http.ResponseWriter, r *http.Request) {
	vs, apiID, found := a.versionsOf(w, r)
	if !found {
		return
	}
	id := r.URL.Query().Get("id")
	v := findVersion(vs, id)
	if v == nil {
		fail(w, http.StatusNotFound, "%q is not a version of %s (see version/list?apiId=%s)", id, apiID, apiID)
		return
	}
	type versionFile struct {
		VersionView
		APIID   string `json:"apiId"`
		File    string `json:"file"`
		Content string `json:"content"` // the file as of the commit; empty when the commit deleted it
	}
	out := versionFile{VersionView: *v, APIID: apiID, File: v.Path}
	if v.Change != "deleted" {
		data, err := a.gw.Git().FileAt(v.Hash, v.Path)
		if err != nil {
			fail(w, http.StatusInternalServerError, "%s as of %s: %v", v.Path, v.Short, err)
			return
		}
		out.Content = string(data)
	}
	ok(w, out)
}

func (a *API) versionCompare(w http.ResponseWriter, r *http.Request) {
	vs, apiID, found := a.versionsOf(w, r)
	if !found {
		return
	}
	q := r.URL.Query()
	src, dst := findVersion(vs, q.Get("sourceId")), findVersion(vs, q.Get("targetId"))
	if src == nil || dst == nil {
		fail(w, http.StatusNotFound, "sourceId and targetId must be versions of %s (see version/list?apiId=%s)", apiID, apiID)
		return
	}
	d, err := a.gw.Git().Diff(src.Hash, dst.Hash)
	if err != nil {
		fail(w, http.StatusInternalServerError, "compare: %v", err)
		return
	}
	type comparison struct {
		APIID   string          `json:"apiId"`
		Source  VersionView     `json:"source"`
		Target  VersionView     `json:"target"`
		Status  string          `json:"status"` // unchanged, added, removed, changed, renamed
		Changes []gitops.Change `json:"changes"`
		Unified string          `json:"unified"`
	}
	out := comparison{APIID: apiID, Source: *src, Target: *dst, Status: "unchanged", Changes: []gitops.Change{}}
	for _, doc := range d.Docs {
		if doc.Kind == "Api" && doc.ID == apiID {
			out.Status, out.Unified = doc.Status, doc.Unified
			out.Changes = nonNil(doc.Changes)
		}
	}
	ok(w, out)
}
