package gateway

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitReload polls until a reload other than prev has finished and ok
// holds for it, and returns it.
func waitReload(t *testing.T, s *Server, prev *ReloadResult, what string, ok func(*ReloadResult) bool) *ReloadResult {
	t.Helper()
	var last *ReloadResult
	waitFor(t, pollTimeout, what, func() bool {
		last = s.LastReload()
		return last != prev && ok(last)
	}, func() string { return fmt.Sprintf("last reload: %+v", last) })
	return last
}

func TestReloadUnderLoad(t *testing.T) {
	dir := newRepo(t, map[string]string{
		"stable.yaml": scriptAPI("t.stable", "online", "stable"),
		"edit.yaml":   scriptAPI("t.edit", "online", "one"),
		"swap.yaml":   scriptAPI("t.swap", "online", "s1"),
		"gone.yaml":   scriptAPI("t.gone", "online", "gone"),
	})
	apis := filepath.Join(dir, "apis")
	ts := startServer(t, Options{Dir: dir})
	ts.expectValue(t, "t.gone", "gone")

	// These APIs stay online throughout: not one call may fail.
	l := startLoad(ts, 8, map[string][]string{
		"t.stable": {"stable"},
		"t.edit":   {"one", "two", "three"},
		"t.swap":   {"s1", "s2"},
	})
	defer l.stop(t)
	l.progress(t, 50)

	t.Run("edit in place", func(t *testing.T) {
		writeFile(t, filepath.Join(apis, "edit.yaml"), scriptAPI("t.edit", "online", "two"))
		ts.expectValue(t, "t.edit", "two")
		l.progress(t, 50)
	})
	t.Run("add a file", func(t *testing.T) {
		writeFile(t, filepath.Join(apis, "new.yaml"), scriptAPI("t.new", "online", "new"))
		ts.expectValue(t, "t.new", "new")
		l.progress(t, 50)
	})
	t.Run("delete a file", func(t *testing.T) {
		if err := os.Remove(filepath.Join(apis, "gone.yaml")); err != nil {
			t.Fatal(err)
		}
		ts.expectNotFound(t, "t.gone")
		l.progress(t, 50)
	})
	t.Run("rename over", func(t *testing.T) {
		replaceFile(t, filepath.Join(apis, "swap.yaml"), scriptAPI("t.swap", "online", "s2"))
		ts.expectValue(t, "t.swap", "s2")
		l.progress(t, 50)
	})
	t.Run("rename to a new name", func(t *testing.T) {
		prev := ts.LastReload()
		if err := os.Rename(filepath.Join(apis, "stable.yaml"), filepath.Join(apis, "stable-renamed.yaml")); err != nil {
			t.Fatal(err)
		}
		// The content hash covers file names: the rename is a change.
		waitReload(t, ts.Server, prev, "the rename reloaded", func(r *ReloadResult) bool { return r.OK && r.Changed })
		if src := ts.Current().Repo.API("t.stable", "v1").Source.File; src != "apis/stable-renamed.yaml" {
			t.Errorf("t.stable comes from %s after the rename", src)
		}
		l.progress(t, 50)
	})
	t.Run("invalid edit keeps the old", func(t *testing.T) {
		editPath := filepath.Join(apis, "edit.yaml")
		good := ts.Current()
		for _, tc := range []struct {
			name, content, where string
		}{
			{"syntax error", scriptAPI("t.edit", "online", "broken") + "extra: a: b\n", "apis/edit.yaml:13:"},
			{"unknown key", scriptAPI("t.edit", "online", "broken") + "bogus: 1\n", "apis/edit.yaml:13:1"},
			{"bad value", strings.Replace(scriptAPI("t.edit", "online", "broken"), "status: online", "status: live", 1), "apis/edit.yaml:5:"},
		} {
			prev := ts.LastReload()
			writeFile(t, editPath, tc.content)
			r := waitReload(t, ts.Server, prev, tc.name+" refused", func(r *ReloadResult) bool {
				if r.OK || len(r.Errors) == 0 {
					return false
				}
				// An in-place write may be seen half done (an empty
				// file): wait for the refusal of the whole content.
				return strings.HasPrefix(r.Errors[0].String(), tc.where)
			})
			if r.Changed || r.Reason != "file change" {
				t.Errorf("%s: reload %+v", tc.name, r)
			}
			if ts.Current() != good {
				t.Fatalf("%s: a refused reload replaced the snapshot", tc.name)
			}
			env, err := ts.call("t.edit")
			if err != nil || env.Code != 200 || env.value() != "two" {
				t.Fatalf("%s: t.edit = %+v %v; want the old answer two", tc.name, env, err)
			}
			t.Logf("%s: %s", tc.name, r.Errors[0])
			// readyz shows the refused reload and stays ready.
			st, body := ts.admin("/readyz")
			lr, _ := body["lastReload"].(map[string]any)
			if st != 200 || lr == nil || lr["ok"] != false || !strings.Contains(fmt.Sprint(lr["errors"]), "edit.yaml") {
				t.Errorf("%s: /readyz = %d %v", tc.name, st, body)
			}
			l.progress(t, 20)
		}
		writeFile(t, editPath, scriptAPI("t.edit", "online", "three"))
		ts.expectValue(t, "t.edit", "three")
		if r := ts.LastReload(); !r.OK || len(r.Errors) != 0 {
			t.Errorf("after the fix: last reload %+v", r)
		}
		l.progress(t, 50)
	})
	t.Run("new sub-folder", func(t *testing.T) {
		writeFile(t, filepath.Join(apis, "team", "member.yaml"), scriptAPI("t.member", "online", "member"))
		ts.expectValue(t, "t.member", "member")
		// The new folder is watched from now on.
		writeFile(t, filepath.Join(apis, "team", "lead.yaml"), scriptAPI("t.lead", "online", "lead"))
		ts.expectValue(t, "t.lead", "lead")
		// And deeper still, created in one go.
		writeFile(t, filepath.Join(apis, "team", "a", "b", "deep.yaml"), scriptAPI("t.deep", "online", "deep"))
		ts.expectValue(t, "t.deep", "deep")
		writeFile(t, filepath.Join(apis, "team", "a", "b", "deep.yaml"), scriptAPI("t.deep", "online", "deeper"))
		ts.expectValue(t, "t.deep", "deeper")
		l.progress(t, 50)
	})
	t.Run("set offline", func(t *testing.T) {
		prev := ts.LastReload()
		replaceFile(t, filepath.Join(apis, "new.yaml"), scriptAPI("t.new", "offline", "new"))
		waitReload(t, ts.Server, prev, "the offline edit reloaded", func(r *ReloadResult) bool { return r.OK && r.Changed })
		// The swap happened before LastReload tells of it: 404 at once.
		env, err := ts.call("t.new")
		if err != nil || env.Code != 404 || env.Message != "API 定义未发布或已下线" || string(env.Response) != "null" {
			t.Fatalf("t.new right after going offline = %+v %v", env, err)
		}
		l.progress(t, 50)
	})
	t.Run("remove a sub-folder", func(t *testing.T) {
		if err := os.RemoveAll(filepath.Join(apis, "team")); err != nil {
			t.Fatal(err)
		}
		ts.expectNotFound(t, "t.member")
		ts.expectNotFound(t, "t.deep")
		l.progress(t, 50)
	})
	t.Run("replace the apis folder", func(t *testing.T) {
		// A deploy that builds the folder beside the old one and swaps
		// them with two renames.
		next := filepath.Join(dir, "apis.next")
		writeRepo(t, next, map[string]string{
			"stable.yaml": scriptAPI("t.stable", "online", "stable"),
			"edit.yaml":   scriptAPI("t.edit", "online", "three"),
			"swap.yaml":   scriptAPI("t.swap", "online", "s2"),
			"fresh.yaml":  scriptAPI("t.fresh", "online", "fresh"),
		})
		if err := os.Rename(apis, filepath.Join(dir, "apis.old")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, apis); err != nil {
			t.Fatal(err)
		}
		ts.expectValue(t, "t.fresh", "fresh")
		if src := ts.Current().Repo.API("t.stable", "v1").Source.File; src != "apis/stable.yaml" {
			t.Errorf("t.stable comes from %s after the swap", src)
		}
		if err := os.RemoveAll(filepath.Join(dir, "apis.old")); err != nil {
			t.Fatal(err)
		}
		l.progress(t, 50)
		// The new folder is watched.
		writeFile(t, filepath.Join(apis, "fresh.yaml"), scriptAPI("t.fresh", "online", "fresher"))
		ts.expectValue(t, "t.fresh", "fresher")
	})
	t.Run("ignored files", func(t *testing.T) {
		// Editor swap files, non-YAML files and files outside the kind
		// folders do not reload.
		prev := ts.LastReload()
		writeFile(t, filepath.Join(apis, ".edit.yaml.swp"), "junk")
		writeFile(t, filepath.Join(apis, "notes.txt"), "junk")
		writeFile(t, filepath.Join(dir, "README.md"), "junk")
		writeFile(t, filepath.Join(dir, "docs", "x.yaml"), "junk")
		// Each event reached the watcher and was ignored, so nothing was
		// scheduled (docs/ itself is not watched: only its creation is seen).
		ts.waitIgnored(t, filepath.Join(apis, ".edit.yaml.swp"), filepath.Join(apis, "notes.txt"),
			filepath.Join(dir, "README.md"), filepath.Join(dir, "docs"))
		if r := ts.LastReload(); r != prev {
			t.Errorf("an ignored file reloaded: %+v", r)
		}
		// The watch still works.
		writeFile(t, filepath.Join(apis, "marker.yaml"), scriptAPI("t.marker", "online", "marker"))
		ts.expectValue(t, "t.marker", "marker")
	})
}

func TestReloadGitCheckout(t *testing.T) {
	dir := newRepo(t, map[string]string{
		"stable.yaml": scriptAPI("t.stable", "online", "stable"),
		"flip.yaml":   scriptAPI("t.flip", "online", "one"),
	})
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(),
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
			"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "one")
	first := git("rev-parse", "HEAD")
	writeFile(t, filepath.Join(dir, "apis", "flip.yaml"), scriptAPI("t.flip", "online", "two"))
	writeFile(t, filepath.Join(dir, "apis", "added.yaml"), scriptAPI("t.added", "online", "added"))
	git("add", "-A")
	git("commit", "-q", "-m", "two")

	// A longer debounce than the other tests: git replaces a file by
	// unlinking and recreating it, and the pair must land in one reload.
	ts := startServer(t, Options{Dir: dir, Debounce: 100 * time.Millisecond})
	ts.expectValue(t, "t.flip", "two")
	ts.expectValue(t, "t.added", "added")

	l := startLoad(ts, 8, map[string][]string{
		"t.stable": {"stable"},
		"t.flip":   {"one", "two"},
	})
	defer l.stop(t)
	l.progress(t, 50)
	for i := 0; i < 2; i++ {
		git("checkout", "-q", first)
		ts.expectValue(t, "t.flip", "one")
		ts.expectNotFound(t, "t.added")
		l.progress(t, 50)
		git("checkout", "-q", "main")
		ts.expectValue(t, "t.flip", "two")
		ts.expectValue(t, "t.added", "added")
		l.progress(t, 50)
	}
	// A commit touching no config file changes the revision served, not
	// the flows: the label follows without a compile.
	git("commit", "-q", "--allow-empty", "-m", "empty")
	head := git("rev-parse", "HEAD")
	r := waitReload(t, ts.Server, nil, "the new commit's label", func(r *ReloadResult) bool {
		return r.OK && r.Git != nil && r.Git.Hash == head
	})
	if ts.Current().Git.Hash != head || !r.Changed {
		t.Errorf("serving %v after the commit, want %s", ts.Current().Git, head)
	}
}

func TestReloadConfigMapSymlinkSwap(t *testing.T) {
	root := t.TempDir()
	// The layout the kubelet writes: timestamped folders, ..data pointing
	// at the current one, and the visible names pointing through ..data.
	version := func(name, value string) {
		writeRepo(t, filepath.Join(root, name), map[string]string{
			"databus.yaml":      testSettings,
			"apis/cm.yaml":      scriptAPI("t.cm", "online", value),
			"apis/stable.yaml":  scriptAPI("t.stable", "online", "stable"),
			"policies/std.yaml": "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: std\n",
			"apis/extra/x.yaml": scriptAPI("t.x", "online", "x-"+value),
		})
	}
	symlink := func(target, name string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	swap := func(name string) {
		symlink(name, "..data_tmp")
		if err := os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2024_01_01_00_00_00.1", "v1")
	symlink("..2024_01_01_00_00_00.1", "..data")
	symlink("..data/databus.yaml", "databus.yaml")
	symlink("..data/apis", "apis")
	symlink("..data/policies", "policies")

	ts := startServer(t, Options{Dir: root})
	ts.expectValue(t, "t.cm", "v1")
	l := startLoad(ts, 8, map[string][]string{
		"t.stable": {"stable"},
		"t.cm":     {"v1", "v2", "v2b", "v3"},
	})
	defer l.stop(t)
	l.progress(t, 50)

	version("..2024_01_01_00_00_01.2", "v2")
	swap("..2024_01_01_00_00_01.2")
	// The kubelet removes the old version after the swap.
	if err := os.RemoveAll(filepath.Join(root, "..2024_01_01_00_00_00.1")); err != nil {
		t.Fatal(err)
	}
	ts.expectValue(t, "t.cm", "v2")
	ts.expectValue(t, "t.x", "x-v2")
	l.progress(t, 50)
	// The watch moved to the new target: a change inside it is seen.
	writeFile(t, filepath.Join(root, "..2024_01_01_00_00_01.2", "apis", "cm.yaml"), scriptAPI("t.cm", "online", "v2b"))
	ts.expectValue(t, "t.cm", "v2b")

	// A second swap: the watch followed the first one.
	version("..2024_01_01_00_00_02.3", "v3")
	swap("..2024_01_01_00_00_02.3")
	if err := os.RemoveAll(filepath.Join(root, "..2024_01_01_00_00_01.2")); err != nil {
		t.Fatal(err)
	}
	ts.expectValue(t, "t.cm", "v3")
	ts.expectValue(t, "t.x", "x-v3")
	l.progress(t, 50)
}

func TestReloadUnchangedContent(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	path := filepath.Join(dir, "apis", "one.yaml")
	ts := startServer(t, Options{Dir: dir})
	snap := ts.Current()
	start := ts.LastReload()
	if start.Reason != "start" || !start.OK || !start.Changed || start.Revision != snap.Revision {
		t.Fatalf("first reload %+v", start)
	}

	// Touch: a metadata change only; nothing reloads. Then the same bytes
	// written again: a reload that finds the content unchanged.
	now := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, scriptAPI("t.one", "online", "one"))
	r := waitReload(t, ts.Server, start, "the rewrite reloaded", func(r *ReloadResult) bool { return r.Reason == "file change" && r.OK })
	if r.Changed || r.Revision != snap.Revision || ts.Current() != snap {
		t.Errorf("rewrite of the same bytes: %+v; snapshot replaced: %v", r, ts.Current() != snap)
	}

	// Reload called directly.
	r2 := ts.Reload(context.Background(), "test")
	if !r2.OK || r2.Changed || r2.Reason != "test" || ts.Current() != snap {
		t.Errorf("Reload(test) on unchanged content: %+v", r2)
	}
	if got := ts.LastReload(); got.Reason != "test" {
		t.Errorf("LastReload after Reload(test): %+v", got)
	}
	// A change picked up by Reload before the watcher's debounce fires is
	// then a no-op for the watcher.
	writeFile(t, path, scriptAPI("t.one", "online", "two"))
	r3 := ts.Reload(context.Background(), "test")
	if !r3.OK || !r3.Changed {
		// The file may have been read half written: try once more.
		r3 = ts.Reload(context.Background(), "test")
	}
	if !r3.OK || !r3.Changed {
		t.Fatalf("Reload(test) after an edit: %+v", r3)
	}
	if env, err := ts.call("t.one"); err != nil || env.value() != "two" {
		t.Fatalf("after Reload(test): %+v %v", env, err)
	}
}

// slowCompileAPI is scriptAPI with a script whose top level, run once when
// the reload compiles it, busies itself for about 100ms.
func slowCompileAPI(code, value string) string {
	return strings.Replace(scriptAPI(code, "online", value), "source: '",
		"source: 'var t0 = Date.now(); while (Date.now() - t0 < 100) {} ", 1)
}

func TestReloadSerialized(t *testing.T) {
	// A slow reload (a script slow to compile) and a fast one (of a write
	// made after it) race, with the watcher's reloads of the same writes.
	// Were reloads not one at a time, the slow one could store its older
	// snapshot after the fast one: the last write must win.
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "v0")})
	path := filepath.Join(dir, "apis", "one.yaml")
	ts := startServer(t, Options{Dir: dir, Debounce: time.Millisecond})
	for round := 1; round <= 3; round++ {
		slow, fast := fmt.Sprintf("slow%d", round), fmt.Sprintf("fast%d", round)
		replaceFile(t, path, slowCompileAPI("t.one", slow))
		slowc := make(chan ReloadResult, 1)
		go func() { slowc <- ts.Reload(context.Background(), "test") }()
		time.Sleep(10 * time.Millisecond) // a head start for the slow reload; the outcome must not depend on it
		replaceFile(t, path, scriptAPI("t.one", "online", fast))
		fastRes := ts.Reload(context.Background(), "test")
		if slowRes := <-slowc; !slowRes.OK || !fastRes.OK {
			t.Fatalf("round %d: reloads %+v %+v", round, slowRes, fastRes)
		}
		if env, err := ts.call("t.one"); err != nil || env.value() != fast {
			t.Fatalf("round %d: t.one = %d %s %v after both reloads; want %s", round, env.Code, env.Response, err, fast)
		}
		// The watcher's own reloads, maybe still pending, agree.
		ts.expectValue(t, "t.one", fast)
	}
}

func TestReloadSettings(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir})
	l := startLoad(ts, 4, map[string][]string{"t.one": {"one"}})
	defer l.stop(t)
	l.progress(t, 20)

	// A new base path serves at once; the old one no longer does.
	prev := ts.LastReload()
	replaceFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"  basePath: /v2/portal\n  legacyBasePaths: ["+basePath+"]\n")
	waitReload(t, ts.Server, prev, "the settings reloaded", func(r *ReloadResult) bool { return r.OK && r.Changed })
	get := func(path string) int {
		resp, err := ts.client.Get(ts.portalURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/v2/portal/t.one/v1"); st != 200 {
		t.Errorf("new base path: %d", st)
	}
	if st := get("/databus/api/portal/t.one/v1"); st != 404 {
		t.Errorf("dropped legacy base path: %d", st)
	}

	// An invalid databus.yaml keeps the settings serving.
	prev = ts.LastReload()
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"  basePath: no-slash\n")
	r := waitReload(t, ts.Server, prev, "the bad settings refused", func(r *ReloadResult) bool {
		return !r.OK && len(r.Errors) > 0 && strings.HasPrefix(r.Errors[0].String(), "databus.yaml:")
	})
	t.Logf("refused: %s", r.Errors[0])
	if st := get("/v2/portal/t.one/v1"); st != 200 {
		t.Errorf("base path after a refused settings change: %d", st)
	}
	l.progress(t, 20)
}
