package gitops

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/internal/orderedjson"
	"github.com/databus-gateway/databus/internal/safefile"
)

// Kinds of a field Change.
const (
	KindAdded   = "added"
	KindRemoved = "removed"
	KindChanged = "changed"
)

// Statuses of a DocDiff.
const (
	StatusAdded   = "added"
	StatusRemoved = "removed"
	StatusChanged = "changed"
	StatusRenamed = "renamed" // the file moved; Changes may list field changes too
)

// Kinds of document a DocDiff compares.
const (
	DocApi        = "Api"
	DocCredential = "Credential"
	DocPolicy     = "RateLimitPolicy"
	DocSettings   = "Settings"
)

// Change is one field that differs between two versions of a document.
// Path is written like the validator's paths: status, policies.rateLimit,
// input.properties.orderNo.pattern; an API's steps are keyed by id:
// steps[create].http.url, steps[score] (a step added or removed as a whole),
// and steps (From/To: the ids in order) when steps were reordered. Lists
// other than steps are compared as whole values. From and To are plain JSON
// values (strings, numbers, booleans, lists, objects).
type Change struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // added, removed, changed
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// DocDiff is one document that differs between two revisions. Documents are
// matched by identity, not by file: an API by code:version, a credential by
// appId, a policy by name, the settings as databus.yaml.
type DocDiff struct {
	Kind    string   `json:"kind"`              // Api, Credential, RateLimitPolicy, Settings
	ID      string   `json:"id"`                // code:version, appId, name, databus.yaml
	File    string   `json:"file"`              // config-relative; the file in From when removed
	OldFile string   `json:"oldFile,omitempty"` // the file in From when renamed
	Status  string   `json:"status"`            // added, removed, changed, renamed
	Changes []Change `json:"changes"`           // empty for added and removed documents, and for edits of comments or layout only
	Unified string   `json:"unified"`           // unified diff of the file
}

// RepoDiff is the semantic difference between two revisions.
type RepoDiff struct {
	From string    `json:"from"` // full hash
	To   string    `json:"to"`   // full hash, or "worktree"
	Docs []DocDiff `json:"docs"` // settings first, then APIs, credentials, policies; each by id
	// FromErrors and ToErrors are the validation errors of each side. A
	// document that does not load (it fails its schema) is missing from its
	// side, so with errors present a document may show as added or removed.
	FromErrors config.Diagnostics `json:"fromErrors,omitempty"`
	ToErrors   config.Diagnostics `json:"toErrors,omitempty"`
}

// side is one loaded revision of the repository.
type side struct {
	name  string // full hash or "worktree"
	repo  *config.Repository
	diags config.Diagnostics
	read  func(file string) []byte // a config-relative file's bytes; nil when missing
}

// Diff compares two revisions document by document and field by field. to
// "" compares with the working tree (RepoDiff.To is then "worktree").
func (r *Repo) Diff(from, to string) (*RepoDiff, error) {
	a, err := r.side(from)
	if err != nil {
		return nil, err
	}
	b, err := r.side(to)
	if err != nil {
		return nil, err
	}
	d := &RepoDiff{From: a.name, To: b.name, FromErrors: a.diags.Errors(), ToErrors: b.diags.Errors()}
	d.Docs = diffRepositories(a, b)
	if d.Docs == nil {
		d.Docs = []DocDiff{}
	}
	return d, nil
}

func (r *Repo) side(rev string) (*side, error) {
	if rev == "" {
		repo, diags, err := config.Load(r.dir)
		if err != nil {
			return nil, err
		}
		return &side{name: Worktree, repo: repo, diags: diags, read: func(file string) []byte {
			data, err := safefile.Read(filepath.Join(r.dir, filepath.FromSlash(file)), config.MaxFileBytes)
			if err != nil {
				return nil
			}
			return data
		}}, nil
	}
	c, err := r.commitOf(rev)
	if err != nil {
		return nil, err
	}
	repo, diags, err := r.loadCommit(c)
	if err != nil {
		return nil, err
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	return &side{name: c.Hash.String(), repo: repo, diags: diags, read: func(file string) []byte {
		return blobAt(tree, r.full(file))
	}}, nil
}

func blobAt(tree *object.Tree, full string) []byte {
	f, err := tree.File(full)
	if err != nil {
		return nil
	}
	s, err := f.Contents()
	if err != nil {
		return nil
	}
	return []byte(s)
}

// doc is one document of a side, ready to compare.
type doc struct {
	kind, id string
	src      config.Source
	value    any
}

func docsOf(repo *config.Repository) map[string]*doc {
	out := map[string]*doc{}
	add := func(d *doc) {
		key := d.kind + "\x00" + d.id
		if _, dup := out[key]; !dup { // a duplicate is an error the validator reports
			out[key] = d
		}
	}
	if s := repo.Settings; s != nil {
		add(&doc{kind: DocSettings, id: config.SettingsFile, src: s.Source, value: s})
	}
	for _, a := range repo.APIs {
		add(&doc{kind: DocApi, id: a.ID(), src: a.Source, value: a})
	}
	for _, c := range repo.Credentials {
		add(&doc{kind: DocCredential, id: c.AppID, src: c.Source, value: c})
	}
	for _, p := range repo.Policies {
		add(&doc{kind: DocPolicy, id: p.Name, src: p.Source, value: p})
	}
	return out
}

var kindOrder = map[string]int{DocSettings: 0, DocApi: 1, DocCredential: 2, DocPolicy: 3}

func diffRepositories(a, b *side) []DocDiff {
	da, db := docsOf(a.repo), docsOf(b.repo)
	keys := map[string]*doc{}
	for k, d := range da {
		keys[k] = d
	}
	for k, d := range db {
		keys[k] = d
	}
	order := sortedKeys(keys)
	sort.SliceStable(order, func(i, j int) bool {
		ki, kj := keys[order[i]], keys[order[j]]
		if ki.kind != kj.kind {
			return kindOrder[ki.kind] < kindOrder[kj.kind]
		}
		return ki.id < kj.id
	})
	var out []DocDiff
	for _, k := range order {
		x, y := da[k], db[k]
		if dd, ok := diffDoc(a, b, x, y); ok {
			out = append(out, dd)
		}
	}
	return out
}

// diffDoc compares one document of both sides (either may be nil).
func diffDoc(a, b *side, x, y *doc) (DocDiff, bool) {
	var dd DocDiff
	// The settings exist on both sides (defaults when databus.yaml is
	// missing): a missing file is an added or removed document all the same.
	if x != nil && x.kind == DocSettings && x.src.File == "" {
		x = nil
	}
	if y != nil && y.kind == DocSettings && y.src.File == "" {
		y = nil
	}
	switch {
	case x == nil && y == nil:
		return dd, false
	case x == nil:
		dd = DocDiff{Kind: y.kind, ID: y.id, File: y.src.File, Status: StatusAdded}
		dd.Unified = UnifiedDiff(nil, b.read(y.src.File), "/dev/null", "b/"+y.src.File)
	case y == nil:
		dd = DocDiff{Kind: x.kind, ID: x.id, File: x.src.File, Status: StatusRemoved}
		dd.Unified = UnifiedDiff(a.read(x.src.File), nil, "a/"+x.src.File, "/dev/null")
	default:
		if x.src == y.src {
			return dd, false // same file, same bytes
		}
		dd = DocDiff{Kind: y.kind, ID: y.id, File: y.src.File, Status: StatusChanged}
		if x.src.File != y.src.File {
			dd.Status, dd.OldFile = StatusRenamed, x.src.File
		}
		dd.Changes = compareDocs(x.value, y.value)
		dd.Unified = UnifiedDiff(a.read(x.src.File), b.read(y.src.File), "a/"+x.src.File, "b/"+y.src.File)
	}
	if dd.Changes == nil {
		dd.Changes = []Change{}
	}
	return dd, true
}

func compareDocs(a, b any) []Change {
	if x, ok := a.(*config.Api); ok {
		return CompareAPI(x, b.(*config.Api))
	}
	return compareAny(a, b)
}

// compareAny compares two model values field by field.
func compareAny(a, b any) []Change {
	na, err := normalize(a)
	if err != nil {
		return []Change{{Path: "", Kind: KindChanged}}
	}
	nb, err := normalize(b)
	if err != nil {
		return []Change{{Path: "", Kind: KindChanged}}
	}
	return compareValues(nil, "", na, nb)
}

// CompareAPI lists the field changes from a to b: status, methods,
// description, auth.credentials, policies.rateLimit, input, transforms, and
// the steps keyed by id (steps[create].http.url). Either may be nil: one
// change with path "" holds the whole other API. Secret values are never involved: documents hold
// only references.
func CompareAPI(a, b *config.Api) []Change {
	na, nb := apiValue(a), apiValue(b)
	switch {
	case na == nil && nb == nil:
		return nil
	case na == nil:
		return []Change{{Path: "", Kind: KindAdded, To: nb}}
	case nb == nil:
		return []Change{{Path: "", Kind: KindRemoved, From: na}}
	}
	stepsA, stepsB := na.List("steps"), nb.List("steps")
	na.Delete("steps")
	nb.Delete("steps")
	changes := compareValues(nil, "", na, nb)
	return append(changes, compareSteps(stepsA, stepsB)...)
}

func apiValue(a *config.Api) *orderedjson.Object {
	if a == nil {
		return nil
	}
	v, err := normalize(a)
	if err != nil {
		return nil
	}
	o, _ := v.(*orderedjson.Object)
	return o
}

// compareSteps matches steps by id. Duplicate ids (an invalid API) are told
// apart by their rank: id#2.
func compareSteps(a, b []any) []Change {
	ia, ma := stepIndex(a)
	ib, mb := stepIndex(b)
	var out []Change
	for _, id := range ia {
		path := "steps[" + id + "]"
		if y, ok := mb[id]; ok {
			out = compareValues(out, path, ma[id], y)
		} else {
			out = append(out, Change{Path: path, Kind: KindRemoved, From: ma[id]})
		}
	}
	for _, id := range ib {
		if _, ok := ma[id]; !ok {
			out = append(out, Change{Path: "steps[" + id + "]", Kind: KindAdded, To: mb[id]})
		}
	}
	// Order of the steps both sides have.
	var ca, cb []string
	for _, id := range ia {
		if _, ok := mb[id]; ok {
			ca = append(ca, id)
		}
	}
	for _, id := range ib {
		if _, ok := ma[id]; ok {
			cb = append(cb, id)
		}
	}
	for i := range ca {
		if ca[i] != cb[i] {
			out = append(out, Change{Path: "steps", Kind: KindChanged, From: toAny(ia), To: toAny(ib)})
			break
		}
	}
	return out
}

func stepIndex(steps []any) ([]string, map[string]any) {
	var ids []string
	m := map[string]any{}
	seen := map[string]int{}
	for i, s := range steps {
		id := fmt.Sprintf("#%d", i)
		if o, ok := s.(*orderedjson.Object); ok {
			if v := o.Str("id"); v != "" {
				id = v
			}
		}
		seen[id]++
		if n := seen[id]; n > 1 {
			id = fmt.Sprintf("%s#%d", id, n)
		}
		ids = append(ids, id)
		m[id] = s
	}
	return ids, m
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
