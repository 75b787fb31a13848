package gitops

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/internal/safefile"
)

// Revision runs on every reload attempt, so it costs what changed: the
// config files of a commit's tree are listed once per HEAD commit, and a
// working-tree file is read and hashed again only when its metadata moved.

// wtFile is what a Revision call learnt of one working-tree config file.
type wtFile struct {
	stat  config.FileStat
	trust bool // stat stands for hash next time
	hash  plumbing.Hash
}

// revCache holds what earlier Revision calls learnt. Its maps are never
// changed once stored (a call builds new ones and swaps them in), so a
// call may read them after releasing mu. They hold only the files of one
// commit and of the latest working-tree listing: deleted files drop out.
type revCache struct {
	mu        sync.Mutex
	head      plumbing.Hash            // the commit headRev and committed describe
	headRev   Revision                 // its hash, time, author and message
	committed map[string]plumbing.Hash // config-relative path -> blob hash in head's tree
	files     map[string]wtFile        // config-relative path -> working-tree file
}

// revStats counts the work Revision did, for tests.
type revStats struct {
	reads     atomic.Int64 // working-tree files read and hashed
	treeWalks atomic.Int64 // commit trees listed
}

// headCommit returns the revision fields of commit h and the blob hashes
// of the config files in its tree, from the cache when h is the commit
// cached (a commit hash fixes its tree).
func (r *Repo) headCommit(g *git.Repository, h plumbing.Hash) (Revision, map[string]plumbing.Hash, error) {
	if !r.uncached {
		r.cache.mu.Lock()
		rev, committed, ok := r.cache.headRev, r.cache.committed, r.cache.head == h && r.cache.committed != nil
		r.cache.mu.Unlock()
		if ok {
			return rev, committed, nil
		}
	}
	c, err := g.CommitObject(h)
	if err != nil {
		return Revision{}, nil, fmt.Errorf("reading HEAD commit %s: %w", h, err)
	}
	rev := Revision{Hash: c.Hash.String(), Time: c.Author.When, Author: c.Author.Name, Message: trimMessage(c.Message)}
	rev.Short = short(rev.Hash)
	tree, err := c.Tree()
	if err != nil {
		return Revision{}, nil, fmt.Errorf("reading the tree of HEAD commit %s: %w", short(rev.Hash), err)
	}
	r.stats.treeWalks.Add(1)
	committed, err := r.treeConfigFiles(tree)
	if err != nil {
		return Revision{}, nil, fmt.Errorf("listing the tree of HEAD commit %s: %w", short(rev.Hash), err)
	}
	if !r.uncached {
		r.cache.mu.Lock()
		r.cache.head, r.cache.headRev, r.cache.committed = h, rev, committed
		r.cache.mu.Unlock()
	}
	return rev, committed, nil
}

// treeConfigFiles returns the blob hashes of the config files in a
// commit's root tree, by config-relative path. It reads tree objects only:
// a blob's hash is in its tree entry (treeFiles loads every blob).
func (r *Repo) treeConfigFiles(root *object.Tree) (map[string]plumbing.Hash, error) {
	out := map[string]plumbing.Hash{}
	t := root
	if r.prefix != "" {
		sub, err := root.Tree(r.prefix)
		if err != nil {
			return out, nil // the config folder does not exist in this commit
		}
		t = sub
	}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Mode == filemode.Dir || e.Mode == filemode.Submodule {
			continue
		}
		if config.IsConfigFile(name) {
			out[name] = e.Hash
		}
	}
}

// dirtyFiles lists the config files whose working-tree content differs
// from committed (the blob hashes of HEAD's config files; nil: no commit).
// A file whose metadata is unchanged since an earlier call trusted it is
// not read again.
func (r *Repo) dirtyFiles(committed map[string]plumbing.Hash) ([]string, error) {
	onDisk, err := worktreeConfigStats(r.dir)
	if err != nil {
		return nil, err
	}
	var prev map[string]wtFile
	if !r.uncached {
		r.cache.mu.Lock()
		prev = r.cache.files
		r.cache.mu.Unlock()
	}
	next := make(map[string]wtFile, len(onDisk))
	var dirty []string
	for _, f := range onDisk {
		e, err := r.hashFile(f, prev)
		if err != nil {
			return nil, err
		}
		next[f.rel] = e
		if h, ok := committed[f.rel]; !ok || e.hash != h {
			dirty = append(dirty, f.rel)
		}
	}
	for rel := range committed {
		if _, ok := next[rel]; !ok {
			dirty = append(dirty, rel) // deleted
		}
	}
	if !r.uncached {
		r.cache.mu.Lock()
		r.cache.files = next
		r.cache.mu.Unlock()
	}
	sort.Strings(dirty)
	return dirty, nil
}

// hashFile returns the git blob hash of a working-tree file: prev's when
// prev trusted the file's metadata and it is unchanged, else from its
// bytes.
func (r *Repo) hashFile(f listedFile, prev map[string]wtFile) (wtFile, error) {
	stat, statOK := config.StatOf(f.st)
	if p, ok := prev[f.rel]; ok && statOK && p.trust && p.stat == stat {
		return p, nil
	}
	abs := filepath.Join(r.dir, filepath.FromSlash(f.rel))
	start := time.Now()
	data, err := safefile.Read(abs, config.MaxFileBytes)
	if err != nil {
		return wtFile{}, err
	}
	r.stats.reads.Add(1)
	if r.onRead != nil {
		r.onRead(f.rel)
	}
	e := wtFile{stat: stat, hash: plumbing.ComputeHash(plumbing.BlobObject, data)}
	e.trust = statOK && !r.uncached && config.Settled(abs, stat, len(data), start, r.racy)
	return e, nil
}

// listedFile is a working-tree config file and its metadata (symlinks
// followed).
type listedFile struct {
	rel string
	st  fs.FileInfo
}

// worktreeConfigStats lists the config files of the working tree the way
// config.Load finds them: databus.yaml and the YAML files under the kind
// folders, hidden names skipped, symlinks followed (each real folder once).
func worktreeConfigStats(dir string) ([]listedFile, error) {
	var out []listedFile
	if st, err := os.Stat(filepath.Join(dir, config.SettingsFile)); err == nil && !st.IsDir() {
		out = append(out, listedFile{config.SettingsFile, st})
	}
	// The loader's walk: each real folder once, symlink loops not followed.
	w := &config.FolderWalk{File: func(_, rel string, st fs.FileInfo) {
		if config.IsConfigFile(rel) {
			out = append(out, listedFile{rel, st})
		}
	}}
	for _, kind := range config.KindDirs {
		if err := w.Walk(filepath.Join(dir, kind), kind); err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out, nil
}

// worktreeConfigFiles lists the paths worktreeConfigStats finds.
func worktreeConfigFiles(dir string) ([]string, error) {
	files, err := worktreeConfigStats(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.rel
	}
	return out, nil
}
