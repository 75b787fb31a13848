package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestWatcherRelevant: which file events may change what the loader reads,
// and so schedule a reload.
func TestWatcherRelevant(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "apis", "team.v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	w := &watcher{dir: dir}
	const (
		create = fsnotify.Create
		write  = fsnotify.Write
		remove = fsnotify.Remove
		rename = fsnotify.Rename
		chmod  = fsnotify.Chmod
	)
	tests := []struct {
		name string
		path string // relative to the repository root
		op   fsnotify.Op
		want bool
	}{
		// The root settings file, however it changes.
		{"settings written", "databus.yaml", write, true},
		{"settings created", "databus.yaml", create, true},
		{"settings removed", "databus.yaml", remove, true},
		{"settings renamed over", "databus.yaml", rename, true},
		{"settings as .yml is not the settings file", "databus.yml", write, false},

		// The kind folders at the root: appearing, going, replaced.
		{"apis folder created", "apis", create, true},
		{"credentials folder removed", "credentials", remove, true},
		{"policies folder renamed", "policies", rename, true},

		// YAML files in the kind folders, at any depth, .yaml or .yml.
		{"api written", "apis/order.yaml", write, true},
		{"api created", "apis/order.yaml", create, true},
		{"api removed", "apis/order.yaml", remove, true},
		{"api renamed", "apis/order.yaml", rename, true},
		{"api .yml", "apis/order.yml", write, true},
		{"nested api", "apis/team/order.yaml", create, true},
		{"deeply nested api", "apis/team/sales/v2/order.yaml", write, true},
		{"credential", "credentials/demo-app.yaml", write, true},
		{"policy .yml", "policies/standard.yml", remove, true},
		{"contract test", "tests/order.yaml", write, true},
		{"nested contract test", "tests/team/order.yaml", create, true},
		{"tests folder created", "tests", create, true},

		// Folders appearing or going below a kind folder: the watch set
		// must be rebuilt to see into them.
		{"sub-folder created", "apis/team", create, true},
		{"sub-folder with a dot created", "apis/team.v2", create, true},
		{"nested sub-folder removed", "credentials/partners/eu", remove, true},

		// Kubernetes ConfigMap volumes: the ..data symlink and the
		// timestamped folders it points to are swapped.
		{"configmap ..data created", "..data", create, true},
		{"configmap ..data_tmp renamed", "..data_tmp", rename, true},
		{"configmap timestamped folder", "..2024_05_01_10_00_00.123456789", create, true},
		{"inside a configmap folder", "..2024_05_01_10_00_00.123456789/databus.yaml", create, true},

		// Metadata only: the content the loader reads is the same.
		{"chmod of the settings", "databus.yaml", chmod, false},
		{"chmod of an api", "apis/order.yaml", chmod, false},
		{"chmod of a folder", "apis/team", chmod, false},
		{"write with chmod", "apis/order.yaml", write | chmod, true},

		// Hidden files and editors' swap, lock and backup files.
		{"vim swap file", "apis/.order.yaml.swp", create, false},
		{"emacs lock file", "apis/.#order.yaml", create, false},
		{"backup file", "apis/order.yaml~", write, false},
		{"backup copy", "apis/order.yaml.bak", write, false},
		{"hidden file", "credentials/.demo.yaml", write, false},
		{"hidden folder", "apis/.drafts", create, false},
		{"yaml in a hidden folder", "apis/.drafts/order.yaml", write, false},

		// Files the loader does not read.
		{"markdown in a kind folder", "apis/README.md", write, false},
		{"json in a kind folder", "policies/standard.json", write, false},
		{"file at the root", "README.md", write, false},
		{"yaml at the root", "other.yaml", write, false},
		{"folder at the root", "secrets", create, false},
		{"file in another folder", "secrets/demo.sign", write, false},
		{"yaml in another folder", "examples/apis/order.yaml", write, false},
		{"git metadata", ".git/index", write, false},
		{"git folder", ".git", create, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := fsnotify.Event{Name: filepath.Join(dir, filepath.FromSlash(tt.path)), Op: tt.op}
			if got := w.relevant(ev); got != tt.want {
				t.Errorf("relevant(%s %s) = %v, want %v", tt.op, tt.path, got, tt.want)
			}
		})
	}
}

// TestWatcherRelevantGit: in a git checkout, what moves HEAD (a commit, a
// checkout, a fast-forward, packed refs) is relevant; objects, the index,
// logs and lock files are not.
func TestWatcherRelevantGit(t *testing.T) {
	dir := t.TempDir()
	gitDir := filepath.Join(dir, ".git")
	w := &watcher{dir: dir, gitDir: gitDir}
	for path, want := range map[string]bool{
		"HEAD":                     true,
		"packed-refs":              true,
		"refs/heads/main":          true,
		"refs/heads/feature/x":     true,
		"HEAD.lock":                false,
		"refs/heads/main.lock":     false,
		"index":                    false,
		"ORIG_HEAD":                false,
		"logs/HEAD":                false,
		"objects/ab/cdef":          false,
		"refs/remotes/origin/main": false,
		"refs/tags/v1":             false,
	} {
		ev := fsnotify.Event{Name: filepath.Join(gitDir, filepath.FromSlash(path)), Op: fsnotify.Create}
		if got := w.relevant(ev); got != want {
			t.Errorf("relevant(.git/%s) = %v, want %v", path, got, want)
		}
	}
	// A config file is still a config file.
	if !w.relevant(fsnotify.Event{Name: filepath.Join(dir, "apis", "a.yaml"), Op: fsnotify.Write}) {
		t.Error("apis/a.yaml is not relevant with gitDir set")
	}
}

// TestWatcherSymlinkLoops: with `ln -s . apis/l1` and `ln -s . apis/l2`
// the watcher watches each real folder once (not 2^16 aliases), logs the
// links once however often it resyncs, still reloads on a change in the
// real folder, and logs no "cannot watch" flood once the links are gone.
func TestWatcherSymlinkLoops(t *testing.T) {
	dir := newRepo(t, map[string]string{"team/one.yaml": scriptAPI("one", "online", "1")})
	for _, l := range []string{"l1", "l2"} {
		if err := os.Symlink(".", filepath.Join(dir, "apis", l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..", filepath.Join(dir, "apis", "team", "up")); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	w, err := newWatcher(dir, "", 10*time.Millisecond, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// The root, apis and apis/team.
	if n := len(w.watched); n != 3 {
		t.Fatalf("watching %d folders, want 3 (the real ones)", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var mu sync.Mutex
	var reloads, watchedAtReload int
	go func() {
		defer close(done)
		w.run(ctx, func(bool, []string) {
			mu.Lock()
			reloads++
			watchedAtReload = len(w.watched)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	reloaded := func(n int) bool {
		mu.Lock()
		defer mu.Unlock()
		return reloads >= n
	}

	// A change in the real folder reloads, each time (each burst resyncs).
	for i := 1; i <= 3; i++ {
		replaceFile(t, filepath.Join(dir, "apis", "team", "one.yaml"), scriptAPI("one", "online", fmt.Sprint(i)))
		waitFor(t, 5*time.Second, fmt.Sprintf("reload %d", i), func() bool { return reloaded(i) })
	}
	mu.Lock()
	if watchedAtReload != 3 {
		t.Errorf("watching %d folders after a resync, want 3", watchedAtReload)
	}
	mu.Unlock()
	if n := logs.count("symlinked folders not followed"); n != 1 {
		t.Errorf("the links were logged %d times over 4 resyncs, want once:\n%s", n, logs.String())
	}

	// The loops go: no flood of warnings about folders that went with them.
	for _, l := range []string{"apis/l1", "apis/l2", "apis/team/up"} {
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(l))); err != nil {
			t.Fatal(err)
		}
	}
	replaceFile(t, filepath.Join(dir, "apis", "team", "one.yaml"), scriptAPI("one", "online", "4"))
	waitFor(t, 5*time.Second, "reload after the links went", func() bool { return reloaded(4) })
	if n := logs.count("cannot watch"); n > 1 {
		t.Errorf("%d \"cannot watch\" lines, want at most one per resync:\n%s", n, logs.String())
	}
}

// A burst of file changes names its files, so the reload looks at those
// only; a folder that appears makes the list unknown (nil).
func TestWatcherNamesChangedFiles(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("one", "online", "1"), "two.yaml": scriptAPI("two", "online", "1")})
	w, err := newWatcher(dir, "", 20*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	bursts := make(chan []string, 16)
	go func() {
		defer close(done)
		w.run(ctx, func(_ bool, changed []string) {
			sort.Strings(changed)
			bursts <- changed
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	next := func() []string {
		select {
		case c := <-bursts:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no reload")
		}
		return nil
	}
	replaceFile(t, filepath.Join(dir, "apis", "one.yaml"), scriptAPI("one", "online", "2"))
	writeFile(t, filepath.Join(dir, "apis", "two.yaml"), scriptAPI("two", "online", "2"))
	var got []string
	for len(got) < 2 { // the two writes may fall in one burst or two
		c := next()
		if c == nil {
			t.Fatal("a burst of file changes reported unknown")
		}
		got = append(got, c...)
		sort.Strings(got)
		got = slices.Compact(got)
	}
	if strings.Join(got, " ") != "apis/one.yaml apis/two.yaml" {
		t.Fatalf("changed %v", got)
	}
	if err := os.Mkdir(filepath.Join(dir, "apis", "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != nil {
		t.Fatalf("a new folder reported %v, want unknown (nil)", c)
	}
}

// An edit seen by the watcher reloads that file only: the settings and
// the edited document are read and parsed, one flow is compiled, and the
// others keep serving their compiled flows.
func TestWatchedEditReadsOneFile(t *testing.T) {
	dir := newRepo(t, map[string]string{
		"one.yaml": scriptAPI("t.one", "online", "1"),
		"two.yaml": scriptAPI("t.two", "online", "1"),
		"six.yaml": scriptAPI("t.six", "online", "1"),
	})
	ts := startServer(t, Options{Dir: dir})
	ts.expectValue(t, "t.one", "1")
	before := ts.Current()
	prev := ts.LastReload()
	replaceFile(t, filepath.Join(dir, "apis", "two.yaml"), scriptAPI("t.two", "online", "2"))
	r := waitReload(t, ts.Server, prev, "the edit", func(r *ReloadResult) bool { return r.OK && r.Changed })
	if r.Files == nil || r.Files.Parsed != 2 || r.Compiled != 1 {
		t.Fatalf("an edit of one file: files %+v, compiled %d; want 2 parsed (settings, the file) and 1 compiled", r.Files, r.Compiled)
	}
	if r.Files.Read > 2 && r.Files.Read != r.Files.Files {
		// Files written less than 2 s before the first load are read again
		// (their metadata cannot stand for their bytes yet); never only some.
		t.Fatalf("files read %d of %d", r.Files.Read, r.Files.Files)
	}
	ts.expectValue(t, "t.two", "2")
	after := ts.Current()
	if after.Route("t.one", "v1").Flow != before.Route("t.one", "v1").Flow || after.Route("t.two", "v1").Flow == before.Route("t.two", "v1").Flow {
		t.Fatal("an unchanged API's flow was compiled again, or the edited one reused")
	}
}

// A watched folder that moves or goes is relevant whatever its name (a dot
// in it, or a name like a YAML file's), and makes the reload look at every
// file: its files raised no event of their own.
func TestWatcherFolderGoneIsUnknown(t *testing.T) {
	dir := newRepo(t, map[string]string{"team.v2/one.yaml": scriptAPI("one", "online", "1"), "team.yaml/two.yaml": scriptAPI("two", "online", "1")})
	w, err := newWatcher(dir, "", 20*time.Millisecond, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer w.fs.Close()
	for _, name := range []string{"team.v2", "team.yaml"} {
		p := filepath.Join(dir, "apis", name)
		if _, ok := w.watched[p]; !ok {
			t.Fatalf("%s is not watched", name)
		}
		if err := os.Rename(p, filepath.Join(t.TempDir(), "gone")); err != nil {
			t.Fatal(err)
		}
		for _, op := range []fsnotify.Op{fsnotify.Rename, fsnotify.Remove} {
			ev := fsnotify.Event{Name: p, Op: op}
			if !w.relevant(ev) || w.changedFile(ev) != "" {
				t.Errorf("%s %v: relevant %v, named %q; want relevant and unknown", name, op, w.relevant(ev), w.changedFile(ev))
			}
		}
	}
}

// A contract test is checked on every load like any config file: an edit
// in a folder below tests/ is seen by the watcher, and a broken test file
// is refused at its line while the old Snapshot keeps serving.
func TestWatchedTestFileEdit(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "1")})
	writeRepo(t, dir, map[string]string{"tests/team/one.yaml": "apiVersion: databus/v1\nkind: ApiTest\napi: t.one:v1\ncases:\n  - {name: ok, expect: {code: 200}}\n"})
	ts := startServer(t, Options{Dir: dir})
	ts.expectValue(t, "t.one", "1")
	prev := ts.LastReload()
	replaceFile(t, filepath.Join(dir, "tests", "team", "one.yaml"), "apiVersion: databus/v1\nkind: ApiTest\napi: t.gone:v1\ncases:\n  - {name: ok, expect: {code: 200}}\n")
	r := waitReload(t, ts.Server, prev, "the refused edit", func(r *ReloadResult) bool { return !r.OK })
	if len(r.Errors) == 0 || r.Errors[0].File != "tests/team/one.yaml" || r.Errors[0].Line != 3 {
		t.Fatalf("errors %+v, want one at tests/team/one.yaml:3", r.Errors)
	}
	ts.expectValue(t, "t.one", "1")
}
