package gitops

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/revision"
)

// Errors a caller acts on; every error this package returns for these faults
// wraps one of them.
var (
	// ErrNotGit: the directory is not inside a git work tree (or the
	// repository is bare).
	ErrNotGit = errors.New("not inside a git work tree")
	// ErrNotFound: a revision, a file or an API does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an abbreviated hash names several commits, or an API
	// code without a version names several versions.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrInvalid: the repository would not be valid (Rollback refuses).
	ErrInvalid = errors.New("the repository would be invalid")
)

// Worktree is the name RepoDiff uses for the working tree.
const Worktree = "worktree"

// Repo is a config repository inside a git work tree.
type Repo struct {
	dir    string // absolute path of the config repository
	root   string // absolute path of the git work tree
	prefix string // dir relative to root, slash-separated; "" when dir is the root

	cache    revCache      // what earlier Revision calls learnt
	racy     time.Duration // config.RacyWindow; tests trust fresh files with a negative one
	uncached bool          // Revision neither uses nor fills cache (benchmarks)
	stats    revStats
	onRead   func(rel string) // when set, called for each file Revision reads (tests)
}

// Open opens the config repository at dir, which may be any folder inside a
// git work tree (the .git folder is looked for upwards). It fails with
// ErrNotGit when there is none.
func Open(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	g, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("%s: %w", dir, ErrNotGit)
		}
		return nil, fmt.Errorf("%s: %w: %v", dir, ErrNotGit, err)
	}
	wt, err := g.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", dir, ErrNotGit, err)
	}
	root := wt.Filesystem.Root()
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s: %w: outside the work tree %s", dir, ErrNotGit, root)
	}
	prefix := filepath.ToSlash(rel)
	if prefix == "." {
		prefix = ""
	}
	if prefix == ".git" || strings.HasPrefix(prefix, ".git/") {
		return nil, fmt.Errorf("%s: %w: inside the .git folder", dir, ErrNotGit)
	}
	return &Repo{dir: abs, root: root, prefix: prefix, racy: config.RacyWindow}, nil
}

// Dir returns the absolute path of the config repository.
func (r *Repo) Dir() string { return r.dir }

// Root returns the absolute path of the git work tree holding it.
func (r *Repo) Root() string { return r.root }

// open opens the git repository afresh, so that every call sees the current
// refs and packs (go-git caches the pack index of an open repository).
func (r *Repo) open() (*git.Repository, error) {
	g, err := git.PlainOpenWithOptions(r.root, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", r.root, ErrNotGit, err)
	}
	return g, nil
}

// full turns a config-relative path into a work-tree-relative one.
func (r *Repo) full(rel string) string {
	if r.prefix == "" {
		return rel
	}
	return r.prefix + "/" + rel
}

// local turns a work-tree-relative path into a config-relative one; ok is
// false when the path lies outside the config repository.
func (r *Repo) local(full string) (string, bool) {
	if r.prefix == "" {
		return full, true
	}
	rel, ok := strings.CutPrefix(full, r.prefix+"/")
	return rel, ok
}

// cleanPath checks a config-relative path given by a caller.
func cleanPath(p string) (string, error) {
	p = filepath.ToSlash(p)
	c := path.Clean(p)
	if p == "" || c == "." || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: expected a path relative to the config repository", p)
	}
	return c, nil
}

// Revision describes the commit a working tree is on (engine/revision
// holds the type, so the request path need not link go-git).
type Revision = revision.Revision

// Revision describes HEAD and whether the config files in the working tree
// differ from it. It runs on every reload, so it reuses what earlier calls
// learnt (revcache.go): it lists HEAD's tree only when HEAD moved, and reads
// only the working-tree files whose metadata changed.
func (r *Repo) Revision() (Revision, error) {
	g, err := r.open()
	if err != nil {
		return Revision{}, err
	}
	var rev Revision
	var committed map[string]plumbing.Hash
	head, err := g.Head()
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		// No commit yet: HEAD names the branch the first commit will create.
		if sym, err := g.Storer.Reference(plumbing.HEAD); err == nil && sym.Type() == plumbing.SymbolicReference && sym.Target().IsBranch() {
			rev.Branch = sym.Target().Short()
		}
	case err != nil:
		return Revision{}, fmt.Errorf("reading HEAD: %w", err)
	default:
		if rev, committed, err = r.headCommit(g, head.Hash()); err != nil {
			return Revision{}, err
		}
		if head.Name().IsBranch() {
			rev.Branch = head.Name().Short()
		}
	}
	rev.DirtyFiles, err = r.dirtyFiles(committed)
	if err != nil {
		return Revision{}, err
	}
	rev.Dirty = len(rev.DirtyFiles) > 0
	return rev, nil
}

// treeFiles calls fn for every file of the config repository in a commit's
// root tree, with its config-relative path.
func (r *Repo) treeFiles(root *object.Tree, fn func(rel string, f *object.File) error) error {
	t := root
	if r.prefix != "" {
		sub, err := root.Tree(r.prefix)
		if err != nil {
			return nil // the config folder does not exist in this commit
		}
		t = sub
	}
	return t.Files().ForEach(func(f *object.File) error {
		return fn(f.Name, f)
	})
}

// Resolve returns the full hash of the commit rev names: a full or
// abbreviated hash (at least 4 hex digits), a branch, a tag, HEAD, or any of
// them followed by ~N or ^N.
func (r *Repo) Resolve(rev string) (string, error) {
	c, err := r.commitOf(rev)
	if err != nil {
		return "", err
	}
	return c.Hash.String(), nil
}

func resolve(g *git.Repository, rev string) (*object.Commit, error) {
	if rev == "" {
		return nil, fmt.Errorf("%w: empty revision", ErrNotFound)
	}
	base, suffix := splitRevision(rev)
	if isHex(base) && len(base) < 40 {
		// go-git takes the first commit a prefix matches; refuse ambiguous
		// prefixes and prefixes too short to mean anything, as git does.
		if len(base) >= 4 {
			h, err := uniquePrefix(g, base)
			if err != nil {
				return nil, fmt.Errorf("revision %q: %w", rev, err)
			}
			if !h.IsZero() {
				rev = h.String() + suffix
			}
		} else {
			ref, err := expandRef(g, base)
			if err != nil {
				return nil, fmt.Errorf("%w: revision %q (abbreviated hashes need at least 4 hex digits)", ErrNotFound, rev)
			}
			rev = ref.Hash().String() + suffix
		}
	}
	h, err := g.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("%w: revision %q: %v", ErrNotFound, rev, err)
	}
	c, err := g.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("%w: revision %q: %v", ErrNotFound, rev, err)
	}
	return c, nil
}

// splitRevision separates "base" from a trailing "~N" / "^N" chain.
func splitRevision(rev string) (base, suffix string) {
	if i := strings.IndexAny(rev, "~^@:"); i >= 0 {
		return rev[:i], rev[i:]
	}
	return rev, ""
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// uniquePrefix returns the one commit whose hash starts with prefix, the zero
// hash when none does (the caller then tries refs), or ErrAmbiguous.
func uniquePrefix(g *git.Repository, prefix string) (plumbing.Hash, error) {
	prefix = strings.ToLower(prefix)
	iter, err := g.CommitObjects()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	defer iter.Close()
	var found []plumbing.Hash
	err = iter.ForEach(func(c *object.Commit) error {
		if strings.HasPrefix(c.Hash.String(), prefix) {
			found = append(found, c.Hash)
		}
		return nil
	})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	switch len(found) {
	case 0:
		return plumbing.ZeroHash, nil
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, h := range found {
		names[i] = h.String()[:12]
	}
	sort.Strings(names)
	return plumbing.ZeroHash, fmt.Errorf("%w: %s is the prefix of %d commits (%s): give more digits", ErrAmbiguous, prefix, len(found), strings.Join(names, ", "))
}

// expandRef finds a ref as git's rev-parse does for a bare name.
func expandRef(g *git.Repository, name string) (*plumbing.Reference, error) {
	for _, full := range []string{name, "refs/" + name, "refs/tags/" + name, "refs/heads/" + name, "refs/remotes/" + name, "refs/remotes/" + name + "/HEAD"} {
		if ref, err := g.Reference(plumbing.ReferenceName(full), true); err == nil {
			return ref, nil
		}
	}
	return nil, plumbing.ErrReferenceNotFound
}

// FileAt returns the content of a config-relative file as of rev.
func (r *Repo) FileAt(rev, file string) ([]byte, error) {
	file, err := cleanPath(file)
	if err != nil {
		return nil, err
	}
	c, err := r.commitOf(rev)
	if err != nil {
		return nil, err
	}
	return r.fileAt(c, file)
}

func (r *Repo) fileAt(c *object.Commit, file string) ([]byte, error) {
	t, err := c.Tree()
	if err != nil {
		return nil, err
	}
	f, err := t.File(r.full(file))
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not exist in %s", ErrNotFound, file, short(c.Hash.String()))
	}
	s, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", file, short(c.Hash.String()), err)
	}
	return []byte(s), nil
}

// Load reads the whole config repository as of rev with config.Load: the
// files of the config folder in that commit are written to a temporary
// folder (so that references to files in the repository, such as secret
// files and descriptor sets, resolve as they would have), loaded, and
// removed. The Repository's Dir names that removed folder; its documents'
// Source files are config-relative as usual. rev "" loads the working tree.
func (r *Repo) Load(rev string) (*config.Repository, config.Diagnostics, error) {
	if rev == "" {
		return config.Load(r.dir)
	}
	c, err := r.commitOf(rev)
	if err != nil {
		return nil, nil, err
	}
	return r.loadCommit(c)
}

func (r *Repo) loadCommit(c *object.Commit) (repo *config.Repository, diags config.Diagnostics, err error) {
	err = r.inTempDir(c, func(dir string) error {
		var lerr error
		repo, diags, lerr = config.Load(dir)
		return lerr
	})
	return repo, diags, err
}

// commitOf resolves rev in the repository as it is now.
func (r *Repo) commitOf(rev string) (*object.Commit, error) {
	g, err := r.open()
	if err != nil {
		return nil, err
	}
	return resolve(g, rev)
}

// inTempDir writes the config folder of commit c to a temporary folder,
// calls fn with it, and removes it.
func (r *Repo) inTempDir(c *object.Commit, fn func(dir string) error) error {
	tmp, err := os.MkdirTemp("", "databus-"+short(c.Hash.String())+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := r.materialize(c, tmp); err != nil {
		return fmt.Errorf("writing %s to a temporary folder: %w", short(c.Hash.String()), err)
	}
	return fn(tmp)
}

// materialize writes the config folder of commit c into dst.
func (r *Repo) materialize(c *object.Commit, dst string) error {
	root, err := c.Tree()
	if err != nil {
		return err
	}
	return r.treeFiles(root, func(rel string, f *object.File) error {
		if !safeRel(rel) {
			return nil
		}
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch f.Mode {
		case filemode.Submodule:
			return nil
		case filemode.Symlink:
			target, err := f.Contents()
			if err != nil {
				return err
			}
			return os.Symlink(target, p)
		}
		rd, err := f.Reader()
		if err != nil {
			return err
		}
		defer rd.Close()
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := out.ReadFrom(rd); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// safeRel refuses tree paths that could escape the folder they are written to.
func safeRel(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if part == "" || part == "." || part == ".." || strings.ContainsRune(part, '\\') || strings.EqualFold(part, ".git") {
			return false
		}
	}
	return true
}

func short(h string) string {
	if len(h) > 7 {
		return h[:7]
	}
	return h
}

func trimMessage(m string) string { return strings.TrimRight(m, "\r\n\t ") }

func subject(m string) string {
	line, _, _ := strings.Cut(m, "\n")
	return strings.TrimSpace(line)
}
