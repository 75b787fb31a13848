package view

import (
	"errors"
	"fmt"
	"strings"

	"github.com/databus-gateway/databus/engine/gitops"
)

// Versions of an API are the git commits that changed its file (DESIGN.md
// section 5).

// ErrNoGit: the configuration is not a git checkout, so it has no versions.
var ErrNoGit = errors.New("the config repository is not a git checkout: it has no versions")

// notInHistory: the API has no commit (yet).
type notInHistory struct {
	id  string
	err error // wraps gitops.ErrNotFound
}

func (e *notInHistory) Error() string {
	return "no API " + e.id + " in the repository's history (not committed yet?)"
}

func (e *notInHistory) Unwrap() error { return e.err }

// Version is one version of an API.
type Version struct {
	ID string `json:"id"` // the commit hash
	gitops.Version
}

// Versions are the versions of the API apiID (code:version), newest
// first, and its canonical id. Errors: ErrNoGit when g is nil, one that
// wraps gitops.ErrNotFound when the API is not in the history.
func Versions(g *gitops.Repo, apiID string) ([]Version, string, error) {
	if g == nil {
		return nil, "", ErrNoGit
	}
	code, version := gitops.ParseAPIRef(apiID)
	id := code + ":" + version
	vs, err := g.VersionsOfAPI(code, version)
	if errors.Is(err, gitops.ErrNotFound) {
		return nil, id, &notInHistory{id: id, err: err}
	}
	if err != nil {
		return nil, id, fmt.Errorf("versions of %s: %w", id, err)
	}
	out := make([]Version, len(vs))
	for i, v := range vs {
		out[i] = Version{ID: v.Hash, Version: v}
	}
	return out, id, nil
}

// FindVersion picks the version whose hash starts with id (4 characters
// at least); nil when none does.
func FindVersion(vs []Version, id string) *Version {
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

// VersionFile is an API's file as of one of its versions.
type VersionFile struct {
	Version
	APIID   string `json:"apiId"`
	File    string `json:"file"`
	Content string `json:"content"` // empty when the commit deleted the file
}

// Deleted reports whether the version deleted the file.
func (f VersionFile) Deleted() bool { return f.Change == "deleted" }

// FileAt is the API's file as of v, one of its versions.
func FileAt(g *gitops.Repo, apiID string, v *Version) (VersionFile, error) {
	out := VersionFile{Version: *v, APIID: apiID, File: v.Path}
	if out.Deleted() {
		return out, nil
	}
	data, err := g.FileAt(v.Hash, v.Path)
	if err != nil {
		return out, fmt.Errorf("%s as of %s: %w", v.Path, v.Short, err)
	}
	out.Content = string(data)
	return out, nil
}

// Comparison is what changed in an API between two of its versions.
type Comparison struct {
	APIID   string          `json:"apiId"`
	Source  Version         `json:"source"`
	Target  Version         `json:"target"`
	Status  string          `json:"status"` // unchanged, added, removed, changed, renamed
	Changes []gitops.Change `json:"changes"`
	Unified string          `json:"unified"`
}

// Compare compares two versions of the API apiID.
func Compare(g *gitops.Repo, apiID string, src, dst *Version) (Comparison, error) {
	d, err := g.Diff(src.Hash, dst.Hash)
	if err != nil {
		return Comparison{}, fmt.Errorf("compare: %w", err)
	}
	out := Comparison{APIID: apiID, Source: *src, Target: *dst, Status: "unchanged", Changes: []gitops.Change{}}
	for _, doc := range d.Docs {
		if doc.Kind == "Api" && doc.ID == apiID {
			out.Status, out.Unified = doc.Status, doc.Unified
			out.Changes = nonNil(doc.Changes)
		}
	}
	return out, nil
}
