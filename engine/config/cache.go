package config

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/internal/safefile"
)

// A reload of a large repository costs what changed, not what is there:
// each Load leaves a fileIndex in its Repository (what it learnt of every
// file: metadata, the hash of its bytes and what it parsed of it), and
// Reload hands the previous one to the next Load.
//
//   - A file whose metadata is unchanged (device, inode, size, modification
//     and change time) is not read: its hash stands.
//   - A kind-folder document whose bytes are unchanged is not parsed or
//     checked again, as long as what its checks read is unchanged too: the
//     few settings they read (docView), and the in-repository files it
//     names (descriptor sets, secret files).
//   - The rules that span files (uniqueness, references) are always
//     checked again over every document, from the small anchors each
//     document keeps (no YAML tree is kept).

// Cache carries what the loads of one repository learnt into the next: a
// gateway keeps one for its checkout. Every load through it is a Reload
// from the latest load of the same folder, whatever that load found (a
// refused change's other documents are reused when the fix lands). A
// load of another folder (a git revision's tree) reuses the documents
// whose bytes are the same and leaves the cache as it was. The zero value
// is ready; a Cache is safe for concurrent use.
type Cache struct {
	mu  sync.Mutex
	idx *fileIndex
	// lost: a load of the cache's folder failed; the changes a watcher
	// named for it are lost, so the next load looks at every file.
	lost bool
}

// Load loads dir through the cache (see Reload).
func (c *Cache) Load(dir string) (*Repository, Diagnostics, error) {
	return c.LoadChanged(dir, nil)
}

// LoadChanged is Load told which files changed since the cache's latest
// load of dir (repository-relative, slash-separated: what a file watcher
// saw): the other files are neither listed again nor looked at, except
// those written too shortly before that load for their metadata to
// count. changed nil means unknown: every file is looked at. A file
// watcher that may have lost events, or saw a folder come or go, passes
// nil.
func (c *Cache) LoadChanged(dir string, changed []string) (*Repository, Diagnostics, error) {
	c.mu.Lock()
	prev, lost := c.idx, c.lost
	c.mu.Unlock()
	var hint *hint
	if changed != nil && prev != nil && !lost {
		hint = newHint(changed)
	}
	repo, diags, err := loadHinted(dir, prev, hint)
	if err != nil {
		if abs, aerr := filepath.Abs(dir); aerr == nil && (prev == nil || prev.dir == abs) {
			c.mu.Lock()
			c.lost = true
			c.mu.Unlock()
		}
		return repo, diags, err
	}
	c.mu.Lock()
	if c.idx == prev && (prev == nil || prev.dir == repo.files.dir) {
		c.idx, c.lost = repo.files, false
	}
	c.mu.Unlock()
	return repo, diags, nil
}

// hint is the set of files a watcher saw change.
type hint struct{ changed map[string]bool }

func newHint(changed []string) *hint {
	h := &hint{changed: make(map[string]bool, len(changed))}
	for _, rel := range changed {
		h.changed[rel] = true
	}
	return h
}

// listFrom is listFiles from the previous load's listing and the files a
// watcher saw change; ok is false when it cannot stand in for a walk (a
// changed path is a folder, or the listing is of another folder).
func (h *hint) listFrom(abs string, prev *fileIndex) (list []listed, diags Diagnostics, ok bool) {
	if prev == nil || prev.dir != abs || prev.listed == nil || prev.links {
		return nil, nil, false
	}
	list = make([]listed, 0, len(prev.listed)+len(h.changed))
	for _, rel := range prev.listed {
		if !h.changed[rel] {
			list = append(list, listed{rel: rel})
		}
	}
	for rel := range h.changed {
		if rel == SettingsFile {
			continue
		}
		st, err := os.Stat(filepath.Join(abs, filepath.FromSlash(rel)))
		switch {
		case errors.Is(err, fs.ErrNotExist) && prev.holds(rel+"/"):
			return nil, nil, false // a folder named like a file went
		case errors.Is(err, fs.ErrNotExist):
			continue // removed
		case err != nil:
			return nil, nil, false
		case st.IsDir():
			return nil, nil, false
		}
		if isYAML(rel) && IsConfigFile(rel) {
			list = append(list, listed{rel: rel, st: st})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].rel < list[j].rel })
	return list, prev.walkDiags, true
}

// holds reports whether a listed file's path starts with prefix.
func (x *fileIndex) holds(prefix string) bool {
	i := sort.SearchStrings(x.listed, prefix)
	return i < len(x.listed) && strings.HasPrefix(x.listed[i], prefix)
}

// unchanged returns the previous load's entry of a file the watcher did
// not see change, when its metadata could be trusted then.
func (h *hint) unchanged(f *files, l listed) *fileEntry {
	if h == nil || l.st != nil {
		return nil
	}
	if p := f.prev.entries[l.rel]; p != nil && p.trust {
		f.put(l.rel, p) // entries are immutable: the next index shares it
		return p
	}
	return nil
}

// racyWindow is RacyWindow; tests trust fresh files with a negative one.
var racyWindow = RacyWindow

// fileEntry is what a Load learnt of one file.
type fileEntry struct {
	stat  FileStat
	trust bool // stat stands for sum next time
	sum   [32]byte
	res   *loaded // the checked document of a kind folder; nil otherwise
}

// fileIndex is what one Load learnt of the repository's files. It is
// immutable once its Load returns.
type fileIndex struct {
	dir     string
	view    docView // what the documents' checks read of the settings
	entries map[string]*fileEntry
	// listed are the kind folders' files, sorted, and walkDiags what
	// listing them found (links not followed).
	listed    []string
	walkDiags Diagnostics
	// links: a listed file is reached through a symlink, or a link leads
	// nowhere yet; a watcher's list of changed files cannot be trusted then.
	links bool
	// settingsDiags are what the walk and the settings' checks found.
	settingsDiags Diagnostics
	// repo and diags are the load's outcome: a load that finds the same
	// bytes and reuses every document returns it.
	repo  *Repository
	diags Diagnostics
}

// dep is a file a document's checks read besides its own: a descriptor
// set or an in-repository secret file. A cached document is reused only
// while its deps hold the same bytes.
type dep struct {
	rel    string
	sum    [32]byte
	exists bool
	proto  bool // a descriptor set: its bytes count in the content hash
}

// files tracks the files of one Load: what the previous Load learnt, and
// the new index being filled (documents are checked in parallel).
type files struct {
	abs   string
	prev  *fileIndex // nil: nothing to reuse
	mu    sync.Mutex
	idx   *fileIndex
	reads atomic.Int64 // files read
}

func newFiles(abs string, prev *fileIndex) *files {
	n := 0
	if prev != nil {
		n = len(prev.entries)
	}
	return &files{abs: abs, prev: prev, idx: &fileIndex{dir: abs, entries: make(map[string]*fileEntry, n)}}
}

// sameDir reports whether the previous index is of this very folder, so
// that file metadata can stand for bytes.
func (f *files) sameDir() bool { return f.prev != nil && f.prev.dir == f.abs }

// look returns the entry of rel: its sum from the previous index when its
// metadata is unchanged (data nil), else from its bytes (data set). st is
// the file's metadata when the caller has it.
func (f *files) look(rel string, st fs.FileInfo) (e *fileEntry, data []byte, err error) {
	abs := filepath.Join(f.abs, filepath.FromSlash(rel))
	if st == nil {
		if st, err = os.Stat(abs); err != nil {
			return nil, nil, err
		}
	}
	stat, statOK := StatOf(st)
	if statOK && f.sameDir() {
		if p := f.prev.entries[rel]; p != nil && p.trust && p.stat == stat {
			f.put(rel, p) // entries are immutable: the next index shares it
			return p, nil, nil
		}
	}
	start := time.Now()
	if data, err = safefile.Read(abs, MaxFileBytes); err != nil {
		return nil, nil, err
	}
	f.reads.Add(1)
	e = &fileEntry{stat: stat, sum: sha256.Sum256(data)}
	e.trust = statOK && Settled(abs, stat, len(data), start, racyWindow)
	f.put(rel, e)
	return e, data, nil
}

// read returns rel's bytes and entry, reading it when look found it
// unchanged.
func (f *files) read(rel string, st fs.FileInfo) (*fileEntry, []byte, error) {
	e, data, err := f.look(rel, st)
	if err != nil || data != nil {
		return e, data, err
	}
	data, err = safefile.Read(filepath.Join(f.abs, filepath.FromSlash(rel)), MaxFileBytes)
	if err != nil {
		return nil, nil, err
	}
	f.reads.Add(1)
	if sha256.Sum256(data) != e.sum { // written since it was looked at
		e = &fileEntry{stat: e.stat, sum: sha256.Sum256(data)}
		f.put(rel, e)
	}
	return e, data, nil
}

func (f *files) put(rel string, e *fileEntry) {
	f.mu.Lock()
	f.idx.entries[rel] = e
	f.mu.Unlock()
}

// depOf describes the current state of the file rel a check reads.
func (f *files) depOf(rel string, proto bool) dep {
	e, _, err := f.look(rel, nil)
	return depFrom(rel, proto, e, err)
}

// depFrom describes a file as found: its entry, or the error finding it.
func depFrom(rel string, proto bool, e *fileEntry, err error) dep {
	d := dep{rel: rel, proto: proto}
	switch {
	case err == nil:
		d.sum, d.exists = e.sum, true
	case !errors.Is(err, fs.ErrNotExist):
		d.exists = true // unreadable: never equal to a readable state
		d.sum[0] = 1
	}
	return d
}

// reusable returns the previous Load's checked document for rel when its
// bytes are sum, the settings are unchanged and the files it read hold
// the same bytes.
func (f *files) reusable(rel string, sum [32]byte, settingsSame bool) *loaded {
	if f.prev == nil || !settingsSame {
		return nil
	}
	p := f.prev.entries[rel]
	if p == nil || p.res == nil || p.sum != sum || (p.res.dirBound && !f.sameDir()) {
		return nil
	}
	for _, d := range p.res.deps {
		if f.depOf(d.rel, d.proto) != d {
			return nil
		}
	}
	return p.res
}
