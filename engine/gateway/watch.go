package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/databus-gateway/databus/engine/config"
)

// watcher turns file changes in the repository into debounced reloads.
//
// It watches directories, not files: editors and `git checkout` replace
// files by rename, and Kubernetes ConfigMaps swap a `..data` symlink, both
// of which a watch on the file itself would lose. After every burst the
// watch set is rebuilt from scratch, so new sub-folders are picked up and
// folders that a symlink swap replaced are watched at their new target.
//
// With gitDir set, HEAD and the branch refs are watched too: a commit, a
// checkout or a fast-forward that leaves the config files as they are
// still changes the revision served, and the reload that follows updates
// it without compiling anything.
type watcher struct {
	dir      string
	gitDir   string // the checkout's .git folder; "" outside git
	debounce time.Duration
	log      *slog.Logger
	fs       *fsnotify.Watcher
	watched  map[string]os.FileInfo // folders in the watch set, as they were when added
	links    map[string]bool        // links to folders already watched, logged once
	// observe, when set (tests), is told how each event was classified.
	observe func(path string, relevant bool)
}

func newWatcher(dir, gitDir string, debounce time.Duration, log *slog.Logger) (*watcher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{dir: abs, gitDir: gitDir, debounce: debounce, log: log, fs: fw, watched: map[string]os.FileInfo{}}
	w.resync()
	return w, nil
}

// dirs lists the folders to watch: the root and every folder below the kind
// folders, through symlinks, each real folder once (config.FolderWalk), and
// the links it did not follow because they lead to a folder already listed.
func (w *watcher) dirs() (dirs, aliases []string) {
	dirs = []string{w.dir}
	walk := &config.FolderWalk{
		Folder: func(abs, _ string) { dirs = append(dirs, abs) },
		Alias:  func(rel, _ string, _ bool) { aliases = append(aliases, rel) },
		Error:  func(string, error) error { return nil }, // watch what can be read
	}
	for _, kind := range config.KindDirs {
		walk.Walk(filepath.Join(w.dir, kind), kind)
	}
	if w.gitDir != "" {
		dirs = append(dirs, w.gitDir)
		walk.Walk(filepath.Join(w.gitDir, "refs", "heads"), ".git/refs/heads")
	}
	return dirs, aliases
}

// resync rebuilds the watch set. Links not followed are logged once each
// (until they go away), and folders that cannot be watched in one line per
// resync, so a loop cannot flood the log.
func (w *watcher) resync() {
	dirs, aliases := w.dirs()
	// Folders still there keep their watch (removing and adding it again
	// would open a window in which events are lost, and a reload told
	// which files changed would miss them); new ones are added, gone
	// ones removed. A path that now leads to another folder (a renamed
	// or swapped folder, a ConfigMap's ..data) is watched anew: such a
	// burst reloads looking at every file, after this resync.
	keep := make(map[string]os.FileInfo, len(dirs))
	failed, firstErr := 0, error(nil)
	for _, d := range dirs {
		st, err := os.Stat(d)
		if old, ok := w.watched[d]; ok && err == nil && os.SameFile(old, st) {
			keep[d] = old
			continue
		} else if ok {
			w.fs.Remove(d)
		}
		if err == nil {
			err = w.fs.Add(d)
		}
		if err != nil {
			if failed == 0 {
				firstErr = fmt.Errorf("%s: %w", d, err)
			}
			failed++
			continue
		}
		keep[d] = st
	}
	for p := range w.watched {
		if _, ok := keep[p]; !ok {
			w.fs.Remove(p)
		}
	}
	w.watched = keep
	if failed > 0 {
		w.log.Warn("cannot watch folders; their changes reload only with SIGHUP or the refresh endpoint", "folders", failed, "first", firstErr)
	}
	var fresh []string
	links := make(map[string]bool, len(aliases))
	for _, a := range aliases {
		links[a] = true
		if !w.links[a] {
			fresh = append(fresh, a)
		}
	}
	w.links = links
	if len(fresh) > 0 {
		w.log.Warn("symlinked folders not followed: they lead to a folder already watched (a symlink loop or a second link)", "links", fresh)
	}
}

// relevant reports whether an event may change what the loader reads.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if _, ok := w.watched[ev.Name]; ok {
		return true // a watched folder moved or went, whatever its name
	}
	if w.isGit(ev.Name) {
		rel, _ := filepath.Rel(w.gitDir, ev.Name)
		return gitRefChange(filepath.ToSlash(rel))
	}
	rel, err := filepath.Rel(w.dir, ev.Name)
	if err != nil {
		return false
	}
	rel = filepath.ToSlash(rel)
	first, _, nested := strings.Cut(rel, "/")
	switch {
	case strings.HasPrefix(first, ".."):
		return true // Kubernetes ConfigMap swap (..data, ..2024_...)
	case !nested:
		// A file or folder at the root: databus.yaml or a kind folder
		// appearing, disappearing or being replaced by a symlink swap.
		return rel == config.SettingsFile || slices.Contains(config.KindDirs, rel)
	}
	if !slices.Contains(config.KindDirs, first) {
		return false
	}
	base := filepath.Base(rel)
	if strings.HasPrefix(base, ".") {
		return false // editor swap files, .git
	}
	// YAML files, and folders that appear or go: without an extension, or
	// one that exists as a folder (apis/team.v2 copied in at once).
	if filepath.Ext(base) == "" || config.IsConfigFile(rel) {
		return true
	}
	st, err := os.Stat(ev.Name)
	return err == nil && st.IsDir()
}

// isGit reports whether path lies in the .git folder.
func (w *watcher) isGit(path string) bool {
	if w.gitDir == "" {
		return false
	}
	rel, err := filepath.Rel(w.gitDir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// gitRefChange reports whether a path in the .git folder names what HEAD
// points at: HEAD itself, packed refs, or a branch (lock files are not).
func gitRefChange(rel string) bool {
	if strings.HasSuffix(rel, ".lock") {
		return false
	}
	return rel == "HEAD" || rel == "packed-refs" || strings.HasPrefix(rel, "refs/heads/")
}

// maxChanged bounds the files a burst lists; a larger burst reloads
// looking at every file.
const maxChanged = 4096

// changedFile returns the repository-relative path of an event on a
// config file, or "" when the event may be about more than one file (a
// folder, a ConfigMap swap).
func (w *watcher) changedFile(ev fsnotify.Event) string {
	if _, ok := w.watched[ev.Name]; ok {
		return "" // a folder, even one named like a file
	}
	rel, err := filepath.Rel(w.dir, ev.Name)
	if err != nil {
		return ""
	}
	rel = filepath.ToSlash(rel)
	if rel == config.SettingsFile || config.IsConfigFile(rel) {
		return rel
	}
	return ""
}

// run calls reload after each burst of relevant changes; files is false
// when the burst only moved git refs (the content is probably the same).
// changed lists the config files the burst touched, or is nil when the
// watcher cannot tell (a folder came or went, events were lost): the
// loader then looks at every file.
func (w *watcher) run(ctx context.Context, reload func(files bool, changed []string)) {
	defer w.fs.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	files := false      // the pending burst changed more than git refs
	var since time.Time // first event of the pending burst
	changed := map[string]bool{}
	unknown := false // the burst may have changed files not in changed
	// schedule debounces, but never postpones a reload past maxWait after
	// the burst began, so a steady trickle of changes cannot starve it.
	maxWait := 10 * w.debounce
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, since = true, now
		}
		wait := w.debounce
		if left := maxWait - now.Sub(since); left < wait {
			wait = max(left, 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			relevant := w.relevant(ev)
			if w.observe != nil {
				w.observe(ev.Name, relevant)
			}
			if !relevant {
				continue
			}
			if !w.isGit(ev.Name) {
				files = true
				if rel := w.changedFile(ev); rel != "" && len(changed) < maxChanged {
					changed[rel] = true
				} else {
					unknown = true
				}
			}
			w.log.Debug("config change", "path", ev.Name, "op", ev.Op.String())
			schedule()
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload looking at every file.
			w.log.Warn("file watcher error; reloading to be safe", "error", err)
			files, unknown = true, true
			schedule()
		case <-timer.C:
			if !pending {
				continue
			}
			pending = false
			w.resync()
			var list []string
			if !unknown {
				list = make([]string, 0, len(changed))
				for rel := range changed {
					list = append(list, rel)
				}
			}
			reload(files, list)
			files, unknown = false, false
			clear(changed)
		}
	}
}
