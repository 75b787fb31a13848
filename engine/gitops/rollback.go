package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/internal/safefile"
)

// RollbackResult describes a rollback.
type RollbackResult struct {
	API  string `json:"api"`  // code:version
	File string `json:"file"` // the config-relative file restored (its path at From)
	From string `json:"from"` // full hash of the revision the content was taken from
	// Removed lists the other files that defined the API in the working tree
	// (its file had moved since From); they are deleted so that code+version
	// stays unique.
	Removed []string `json:"removed,omitempty"`
	// Diagnostics of the whole repository with the restored file. When they
	// hold errors, the working tree was put back as it was.
	Diagnostics config.Diagnostics `json:"diagnostics"`
	// Committed is the full hash of the commit made with commit=true; ""
	// without commit, or when HEAD already held that content.
	Committed string `json:"committed,omitempty"`
}

// Default author of rollback commits when git config names none.
const (
	DefaultAuthorName  = "databus"
	DefaultAuthorEmail = "databus@localhost"
)

// Rollback restores the file of api (code:version, or a code with a single
// version) as it was at toRev, in the working tree, at the path it had then.
// Other working-tree files defining the same API are removed. The whole
// repository is then checked through the gate (check): when that finds
// errors, every file is put back as it was and the error wraps ErrInvalid
// (the result's Diagnostics say why). Uncommitted edits of the API's file are
// replaced, as git checkout REV -- FILE replaces them.
//
// With commit, a commit "Roll back <code:version> to <short rev>" is made on
// the current branch (or detached HEAD) holding only that change: other
// staged or unstaged changes stay out of it and stay as they are. The tree
// it commits (HEAD's plus exactly the change, which also removes the files
// that define the API in HEAD under another path) passes the gate first,
// so HEAD stays valid whatever the working tree holds. The
// author is git config's user.name and user.email (repository, global,
// system), else databus <databus@localhost>. Hooks do not run, nothing is
// signed, and nothing is pushed.
func (r *Repo) Rollback(ctx context.Context, api, toRev string, commit bool, check Check) (*RollbackResult, error) {
	code, version := ParseAPIRef(api)
	if code == "" {
		return nil, fmt.Errorf("%w: API %q: expected code or code:version", ErrNotFound, api)
	}
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	c, err := resolve(g, toRev)
	if err != nil {
		return nil, err
	}
	files, err := r.apiFilesIn(c, code, version, nil)
	if err != nil {
		return nil, err
	}
	f, err := pickAPIFile(files, code, version, c)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, fmt.Errorf("%w: API %s does not exist at %s", ErrNotFound, apiName(code, version), short(c.Hash.String()))
	}
	id := code + ":" + f.version
	res := &RollbackResult{API: id, File: f.path, From: c.Hash.String()}
	root, err := c.Tree()
	if err != nil {
		return nil, err
	}
	entry, err := root.FindEntry(r.full(f.path))
	if err != nil {
		return nil, err
	}
	if !entry.Mode.IsFile() || entry.Mode == filemode.Symlink {
		return nil, fmt.Errorf("%s at %s is not a regular file", f.path, short(c.Hash.String()))
	}
	content := blobAt(root, r.full(f.path))

	// The API's files in the working tree now.
	current, err := r.worktreeAPIFiles(code, f.version)
	if err != nil {
		return nil, err
	}
	for _, p := range current {
		if p != f.path {
			res.Removed = append(res.Removed, p)
		}
	}

	// Before touching anything, make sure a commit can be made.
	var cm *committer
	if commit {
		if cm, err = r.prepareCommit(g); err != nil {
			return nil, err
		}
	}

	ws := &worktreeState{dir: r.dir}
	if err := ws.write(f.path, content, entry.Mode); err != nil {
		ws.restore()
		return nil, err
	}
	for _, p := range res.Removed {
		if err := ws.remove(p); err != nil {
			ws.restore()
			return nil, err
		}
	}
	diags, err := check(ctx, r.dir)
	if err != nil {
		ws.restore()
		return nil, err
	}
	res.Diagnostics = diags
	var commitRemoved []string
	if commit && !diags.HasErrors() {
		// The commit's tree is HEAD's plus the change, not the working
		// tree: it passes the gate on its own.
		commitRemoved, err = r.headAPIFiles(cm.head, code, f.version, f.path, res.Removed)
		if err != nil {
			ws.restore()
			return nil, err
		}
		cdiags, err := r.checkEdited(ctx, cm.head, f.path, content, commitRemoved, check)
		if err != nil {
			ws.restore()
			return nil, err
		}
		if cdiags.HasErrors() {
			diags = cdiags
			res.Diagnostics = cdiags
		}
	}
	if diags.HasErrors() {
		if rerr := ws.restore(); rerr != nil {
			return res, fmt.Errorf("%w: rolling back %s to %s: %v; and putting the files back failed: %v", ErrInvalid, id, short(res.From), diags.Errors(), rerr)
		}
		errs, _ := diags.Count()
		return res, fmt.Errorf("%w: rolling back %s to %s gives %s (nothing was changed):\n%v", ErrInvalid, id, short(res.From), plural(errs, "error", "errors"), diags)
	}
	if commit {
		edits := []treeEdit{{path: r.full(f.path), hash: entry.Hash, mode: entry.Mode}}
		for _, p := range commitRemoved {
			edits = append(edits, treeEdit{path: r.full(p), remove: true})
		}
		msg := fmt.Sprintf("Roll back %s to %s\n\nRestores %s as of %s.\n", id, short(res.From), f.path, res.From)
		h, err := cm.commit(edits, msg)
		if err != nil {
			return res, fmt.Errorf("the working tree holds the rollback, but committing it failed: %w", err)
		}
		if !h.IsZero() {
			res.Committed = h.String()
		}
	}
	return res, nil
}

// headAPIFiles lists the files to remove in a rollback commit: those the
// working tree loses (removed) and those that define code:version in
// HEAD's tree under another path than keep.
func (r *Repo) headAPIFiles(head *object.Commit, code, version, keep string, removed []string) ([]string, error) {
	files, err := r.apiFilesIn(head, code, version, nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{keep: true}
	out := []string{}
	for _, p := range removed {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, f := range files {
		if !seen[f.path] {
			seen[f.path] = true
			out = append(out, f.path)
		}
	}
	sort.Strings(out)
	return out, nil
}

// checkEdited runs check on the config folder of commit c with the file at
// path set to content and the files in remove deleted: the tree a rollback
// commit would hold.
func (r *Repo) checkEdited(ctx context.Context, c *object.Commit, path string, content []byte, remove []string, check Check) (diags config.Diagnostics, err error) {
	err = r.inTempDir(c, func(tmp string) error {
		p := filepath.Join(tmp, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
		for _, rel := range remove {
			if err := os.Remove(filepath.Join(tmp, filepath.FromSlash(rel))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		var cerr error
		diags, cerr = check(ctx, tmp)
		return cerr
	})
	return diags, err
}

// worktreeAPIFiles lists the working-tree files of apis/ that define
// code:version.
func (r *Repo) worktreeAPIFiles(code, version string) ([]string, error) {
	files, err := worktreeConfigFiles(r.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rel := range files {
		if !strings.HasPrefix(rel, config.APIsDir+"/") {
			continue
		}
		data, err := safefile.Read(filepath.Join(r.dir, filepath.FromSlash(rel)), config.MaxFileBytes)
		if err != nil {
			return nil, err
		}
		if h, ok := parseAPIHeader(data); ok && h.Code == code && h.Version == version {
			out = append(out, rel)
		}
	}
	return out, nil
}

// worktreeState writes and removes files, remembering how to undo it.
type worktreeState struct {
	dir  string
	undo []func() error // in order of the changes
}

func (w *worktreeState) abs(rel string) string { return filepath.Join(w.dir, filepath.FromSlash(rel)) }

// save remembers a file's content (or absence) before it changes.
func (w *worktreeState) save(rel string) error {
	p := w.abs(rel)
	st, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		w.undo = append(w.undo, func() error {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
		return nil
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", rel)
	}
	data, err := safefile.Read(p, config.MaxFileBytes)
	if err != nil {
		return err
	}
	perm := st.Mode().Perm()
	w.undo = append(w.undo, func() error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, perm); err != nil {
			return err
		}
		return os.Chmod(p, perm)
	})
	return nil
}

func (w *worktreeState) write(rel string, data []byte, mode filemode.FileMode) error {
	p := w.abs(rel)
	// Folders first, so that undoing removes the file before its folders.
	if err := w.mkdirs(filepath.Dir(p)); err != nil {
		return err
	}
	if err := w.save(rel); err != nil {
		return err
	}
	perm := os.FileMode(0o644)
	if mode == filemode.Executable {
		perm = 0o755
	}
	return os.WriteFile(p, data, perm)
}

func (w *worktreeState) remove(rel string) error {
	if err := w.save(rel); err != nil {
		return err
	}
	return os.Remove(w.abs(rel))
}

// mkdirs creates dir and its missing parents, remembering to remove them.
func (w *worktreeState) mkdirs(dir string) error {
	var missing []string
	for d := dir; !fileExists(d); d = filepath.Dir(d) {
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- { // undone newest first: deepest first
		d := missing[i]
		w.undo = append(w.undo, func() error {
			os.Remove(d) // only when empty; leaving an empty folder is harmless
			return nil
		})
	}
	return nil
}

// restore undoes the changes, newest first.
func (w *worktreeState) restore() error {
	var errs []error
	for i := len(w.undo) - 1; i >= 0; i-- {
		if err := w.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	w.undo = nil
	return errors.Join(errs...)
}

// committer makes a commit of a few paths on top of HEAD.
type committer struct {
	r      *Repo
	g      *git.Repository
	head   *object.Commit
	headRf *plumbing.Reference // HEAD as stored: symbolic (a branch) or a hash (detached)
	branch *plumbing.Reference // the branch HEAD points at, as read
	idx    *index.Index        // nil: leave the index alone
	sig    object.Signature
}

func (r *Repo) prepareCommit(g *git.Repository) (*committer, error) {
	head, err := headCommit(g)
	if err != nil {
		return nil, err
	}
	if head == nil {
		return nil, fmt.Errorf("cannot commit: the repository has no commits")
	}
	cm := &committer{r: r, g: g, head: head}
	if cm.headRf, err = g.Storer.Reference(plumbing.HEAD); err != nil {
		return nil, fmt.Errorf("reading HEAD: %w", err)
	}
	if cm.headRf.Type() == plumbing.SymbolicReference {
		if cm.branch, err = g.Storer.Reference(cm.headRf.Target()); err != nil {
			return nil, fmt.Errorf("reading %s: %w", cm.headRf.Target(), err)
		}
	}
	idx, err := g.Storer.Index()
	if err != nil {
		return nil, fmt.Errorf("cannot commit: reading the git index: %w (commit by hand instead: run without --commit)", err)
	}
	if idx.Version > index.EncodeVersionSupported {
		return nil, fmt.Errorf("cannot commit: git index version %d is not supported (commit by hand instead: run without --commit)", idx.Version)
	}
	if len(idx.Entries) > 0 {
		cm.idx = idx // an absent index stays absent rather than listing one file
	}
	cm.sig = authorOf(g)
	return cm, nil
}

// authorOf reads user.name and user.email from git config.
func authorOf(g *git.Repository) object.Signature {
	sig := object.Signature{Name: DefaultAuthorName, Email: DefaultAuthorEmail, When: time.Now()}
	cfg, err := g.ConfigScoped(gitconfig.SystemScope)
	if err != nil {
		cfg, err = g.Config()
	}
	if err == nil {
		if cfg.User.Name != "" {
			sig.Name = cfg.User.Name
		}
		if cfg.User.Email != "" {
			sig.Email = cfg.User.Email
		}
	}
	return sig
}

// treeEdit sets or removes one work-tree-relative path.
type treeEdit struct {
	path   string
	hash   plumbing.Hash
	mode   filemode.FileMode
	remove bool
}

// commit writes a commit of HEAD's tree with edits applied, moves the branch
// (or detached HEAD) to it, and records the edited paths in the index. It
// returns the zero hash when the edits change nothing.
func (cm *committer) commit(edits []treeEdit, msg string) (plumbing.Hash, error) {
	s := cm.g.Storer
	tree, _, err := editTree(s, cm.head.TreeHash, edits)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if tree == cm.head.TreeHash {
		return plumbing.ZeroHash, nil
	}
	c := &object.Commit{
		Author:       cm.sig,
		Committer:    cm.sig,
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: []plumbing.Hash{cm.head.Hash},
	}
	obj := s.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if cm.branch != nil {
		err = s.CheckAndSetReference(plumbing.NewHashReference(cm.branch.Name(), h), cm.branch)
	} else {
		err = s.CheckAndSetReference(plumbing.NewHashReference(plumbing.HEAD, h), cm.headRf)
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("moving HEAD to the new commit %s (did HEAD move meanwhile?): %w", h, err)
	}
	if cm.idx != nil {
		if err := cm.updateIndex(edits); err != nil {
			return h, fmt.Errorf("commit %s made, but updating the git index failed (run git reset): %w", short(h.String()), err)
		}
	}
	return h, nil
}

func (cm *committer) updateIndex(edits []treeEdit) error {
	for _, e := range edits {
		if e.remove {
			if _, err := cm.idx.Remove(e.path); err != nil && !errors.Is(err, index.ErrEntryNotFound) {
				return err
			}
			continue
		}
		ent, err := cm.idx.Entry(e.path)
		if err != nil {
			ent = cm.idx.Add(e.path)
		}
		st, err := os.Stat(filepath.Join(cm.r.root, filepath.FromSlash(e.path)))
		if err != nil {
			return err
		}
		ent.Hash = e.hash
		ent.Mode = e.mode
		ent.Size = uint32(st.Size())
		ent.ModifiedAt = st.ModTime()
		ent.CreatedAt = st.ModTime()
		ent.Stage = 0 // a normal entry: go-git's index.Merged is 1, the base stage of a conflict
	}
	sort.Slice(cm.idx.Entries, func(i, j int) bool { return cm.idx.Entries[i].Name < cm.idx.Entries[j].Name })
	cm.idx.Cache = nil // the cached trees no longer match
	return cm.g.Storer.SetIndex(cm.idx)
}

// editTree writes a copy of tree base (zero: empty) with edits applied and
// returns its hash and its number of entries.
func editTree(s storer.EncodedObjectStorer, base plumbing.Hash, edits []treeEdit) (plumbing.Hash, int, error) {
	var entries []object.TreeEntry
	if !base.IsZero() {
		t, err := object.GetTree(s, base)
		if err != nil {
			return plumbing.ZeroHash, 0, err
		}
		entries = append(entries, t.Entries...)
	}
	find := func(name string) int {
		for i, e := range entries {
			if e.Name == name {
				return i
			}
		}
		return -1
	}
	drop := func(i int) { entries = append(entries[:i], entries[i+1:]...) }
	nested := map[string][]treeEdit{}
	var names []string
	for _, e := range edits {
		head, rest, deeper := strings.Cut(e.path, "/")
		if deeper {
			if _, ok := nested[head]; !ok {
				names = append(names, head)
			}
			e.path = rest
			nested[head] = append(nested[head], e)
			continue
		}
		i := find(head)
		switch {
		case e.remove && i >= 0 && entries[i].Mode != filemode.Dir:
			drop(i)
		case e.remove:
		case i >= 0:
			entries[i] = object.TreeEntry{Name: head, Mode: e.mode, Hash: e.hash}
		default:
			entries = append(entries, object.TreeEntry{Name: head, Mode: e.mode, Hash: e.hash})
		}
	}
	for _, name := range names {
		i := find(name)
		sub := plumbing.ZeroHash
		if i >= 0 && entries[i].Mode == filemode.Dir {
			sub = entries[i].Hash
		}
		h, n, err := editTree(s, sub, nested[name])
		if err != nil {
			return plumbing.ZeroHash, 0, err
		}
		switch {
		case n == 0 && i >= 0:
			drop(i)
		case n == 0:
		case i >= 0:
			entries[i] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		default:
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
	}
	sort.Sort(object.TreeEntrySorter(entries))
	t := &object.Tree{Entries: entries}
	obj := s.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return plumbing.ZeroHash, 0, err
	}
	h, err := s.SetEncodedObject(obj)
	return h, len(entries), err
}

// fileExists reports whether a path exists; errors other than "does not
// exist" count as existing so that callers do not overwrite what they
// cannot see.
func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
