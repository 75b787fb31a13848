package gateway

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
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
type watcher struct {
	dir      string
	debounce time.Duration
	log      *slog.Logger
	fs       *fsnotify.Watcher
	watched  map[string]bool
}

func newWatcher(dir string, debounce time.Duration, log *slog.Logger) (*watcher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{dir: abs, debounce: debounce, log: log, fs: fw, watched: map[string]bool{}}
	w.resync()
	return w, nil
}

// dirs lists the folders to watch: the root and every folder below the kind
// folders, through symlinks.
func (w *watcher) dirs() []string {
	out := []string{w.dir}
	for _, kind := range []string{config.APIsDir, config.CredentialsDir, config.PoliciesDir} {
		out = appendDirs(out, filepath.Join(w.dir, kind), 0)
	}
	return out
}

func appendDirs(out []string, dir string, depth int) []string {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() || depth > 16 {
		return out
	}
	out = append(out, dir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = appendDirs(out, p, depth+1)
		}
	}
	return out
}

// resync rebuilds the watch set.
func (w *watcher) resync() {
	for p := range w.watched {
		w.fs.Remove(p)
	}
	w.watched = map[string]bool{}
	for _, d := range w.dirs() {
		if err := w.fs.Add(d); err != nil {
			w.log.Warn("cannot watch folder", "dir", d, "error", err)
			continue
		}
		w.watched[d] = true
	}
}

// relevant reports whether an event may change what the loader reads.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
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
		return rel == config.SettingsFile || rel == config.APIsDir || rel == config.CredentialsDir || rel == config.PoliciesDir
	}
	if first != config.APIsDir && first != config.CredentialsDir && first != config.PoliciesDir {
		return false
	}
	base := filepath.Base(rel)
	if strings.HasPrefix(base, ".") {
		return false // editor swap files, .git
	}
	// YAML files, and folders (which carry no extension) that appear or go.
	return filepath.Ext(base) == "" || config.IsConfigFile(rel)
}

func (w *watcher) run(ctx context.Context, reload func()) {
	defer w.fs.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := false
	var since time.Time // first event of the pending burst
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
			if !w.relevant(ev) {
				continue
			}
			w.log.Debug("config change", "path", ev.Name, "op", ev.Op.String())
			schedule()
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: reload to be sure.
			w.log.Warn("file watcher error; reloading to be safe", "error", err)
			schedule()
		case <-timer.C:
			if !pending {
				continue
			}
			pending = false
			w.resync()
			reload()
		}
	}
}
