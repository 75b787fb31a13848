package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxFolderDepth is how deep folders may nest below a kind folder.
const MaxFolderDepth = 16

// ErrTooDeep is returned by FolderWalk.Walk for folders nested deeper than
// MaxFolderDepth.
var ErrTooDeep = errors.New("folders nested too deep")

// FolderWalk walks folder trees the way the loader reads the kind folders:
// hidden names are skipped and symlinked folders are followed (Kubernetes
// ConfigMaps are made of symlinks), but each real folder, known by its
// device and inode, is entered once. A link back to a folder being walked
// (a symlink loop) or a second link to a folder already walked is reported
// to Alias and not entered, so `ln -s . apis/loop` costs one entry, not
// MaxFolderDepth levels of aliases.
//
// The loader, the file watcher and the gitops working-tree listing share
// it, so they agree on which files make the repository.
type FolderWalk struct {
	// Folder, when set, is called for each folder entered, root included.
	Folder func(abs, rel string)
	// File, when set, is called for each entry that is not a folder
	// (a symlink to a file included), with its metadata (symlinks
	// followed).
	File func(abs, rel string, st fs.FileInfo)
	// Link, when set, is called for each entry File is called for that is
	// a symlink (its target may change without an event in its folder).
	Link func(rel string)
	// Dangling, when set, is called for each entry that cannot be
	// followed (a symlink to nothing yet).
	Dangling func(rel string)
	// Alias, when set, is called for a folder not entered because it was
	// entered already as first; loop is true when first is an ancestor of
	// rel (the link makes a cycle).
	Alias func(rel, first string, loop bool)
	// Error decides what a folder that cannot be read, or is nested too
	// deep, does to the walk: nil skips it, an error stops the walk. When
	// Error is unset the walk stops with the error.
	Error func(rel string, err error) error

	seen map[folderID]string // folder -> rel where it was entered
	open map[folderID]bool   // folders being walked (the current path)
}

// Walk walks the folder root (an absolute path), naming entries rel/....
// A root that does not exist or is not a folder is skipped. Each call
// starts afresh: a folder reached from two roots is walked under both.
func (w *FolderWalk) Walk(root, rel string) error {
	st, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return w.fail(rel, err)
	}
	if !st.IsDir() {
		return nil
	}
	w.seen, w.open = map[folderID]string{}, map[folderID]bool{}
	return w.walk(root, rel, st, 0)
}

func (w *FolderWalk) fail(rel string, err error) error {
	err = fmt.Errorf("%s: %w", rel, err)
	if w.Error != nil {
		return w.Error(rel, err)
	}
	return err
}

func (w *FolderWalk) walk(abs, rel string, st fs.FileInfo, depth int) error {
	id := idOf(abs, st)
	if first, ok := w.seen[id]; ok {
		if w.Alias != nil {
			w.Alias(rel, first, w.open[id])
		}
		return nil
	}
	if depth > MaxFolderDepth {
		return w.fail(rel, ErrTooDeep)
	}
	w.seen[id] = rel
	w.open[id] = true
	defer delete(w.open, id)
	entries, err := os.ReadDir(abs)
	if err != nil {
		return w.fail(rel, err)
	}
	if w.Folder != nil {
		w.Folder(abs, rel)
	}
	// Real entries before links, so a folder that is both in the tree and
	// behind a link is known by its own path.
	sort.SliceStable(entries, func(i, j int) bool {
		return entries[i].Type()&fs.ModeSymlink == 0 && entries[j].Type()&fs.ModeSymlink != 0
	})
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if w.File == nil && e.Type().IsRegular() {
			continue // not a folder, and nobody asks for files: no stat
		}
		p, r := filepath.Join(abs, name), rel+"/"+name
		st, err := os.Stat(p) // follows symlinks
		if err != nil {
			if w.Dangling != nil {
				w.Dangling(r)
			}
			continue // a dangling link
		}
		if st.IsDir() {
			if err := w.walk(p, r, st, depth+1); err != nil {
				return err
			}
			continue
		}
		if w.File != nil {
			w.File(p, r, st)
			if w.Link != nil && e.Type()&fs.ModeSymlink != 0 {
				w.Link(r)
			}
		}
	}
	return nil
}

// pathID names a folder by its path with symlinks resolved.
func pathID(abs string) folderID {
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	return folderID{path: abs}
}
