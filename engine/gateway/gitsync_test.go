package gateway

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// gitWork is a work tree the test commits to and pushes from.
type gitWork struct {
	t   *testing.T
	dir string
	r   *git.Repository
}

func (g *gitWork) commit(files map[string]string, msg string) {
	g.t.Helper()
	writeRepo(g.t, g.dir, files)
	wt, err := g.r.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := wt.AddGlob("."); err != nil {
		g.t.Fatal(err)
	}
	_, err = wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@example.com", When: time.Now()}})
	if err != nil {
		g.t.Fatal(err)
	}
}

func (g *gitWork) push() {
	g.t.Helper()
	if err := g.r.Push(&git.PushOptions{RemoteName: "origin"}); err != nil && err != git.NoErrAlreadyUpToDate {
		g.t.Fatal(err)
	}
}

// newRemote makes a bare repository (the remote, at root/remote.git) and a
// working repository whose origin it is (seed), in a temporary folder.
func newRemote(t *testing.T) (root, bare string, seed *gitWork) {
	t.Helper()
	root = t.TempDir()
	bare = filepath.Join(root, "remote.git")
	if _, err := git.PlainInit(bare, true); err != nil {
		t.Fatal(err)
	}
	seedDir := filepath.Join(root, "seed")
	seedRepo, err := git.PlainInit(seedDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seedRepo.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	return root, bare, &gitWork{t: t, dir: seedDir, r: seedRepo}
}

// TestGitSync follows a branch of a local bare repository through a bad
// commit (never served) and a good one (served), while requests flow.
func TestGitSync(t *testing.T) {
	root, bare, seed := newRemote(t)
	seed.commit(map[string]string{
		"databus.yaml":       testSettings + "gitSync: {interval: 50ms}\n",
		".gitignore":         "data/\n",
		"apis/greeting.yaml": scriptAPI("greeting", "online", "one"),
	}, "first")
	seed.push()

	checkout := filepath.Join(root, "checkout")
	if _, err := git.PlainClone(checkout, false, &git.CloneOptions{URL: bare}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ts := startServer(t, Options{Dir: checkout, NoWatch: true, GitSync: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	waitFor(t, pollTimeout, "the startup line that says git sync is on", func() bool {
		return logs.count(`msg="git sync on: fetching the remote and fast-forwarding to revisions that validate" remote=origin`) == 1
	})
	if g := ts.Current().Git; g == nil || g.Branch != "master" || g.Dirty {
		t.Fatalf("revision of the checkout: %+v", g)
	}
	first := ts.Current().Git.Hash
	ts.expectValue(t, "greeting", "one")
	l := startLoad(ts, 4, map[string][]string{"greeting": {"one", "three"}})

	// A bad commit on the remote: fetched, validated, refused.
	seed.commit(map[string]string{"apis/greeting.yaml": strings.Replace(scriptAPI("greeting", "online", "two"), "steps:", "stepz:", 1)}, "broken")
	seed.push()
	waitFor(t, pollTimeout, "git sync to refuse the invalid revision", func() bool {
		s := ts.LastSync()
		return s != nil && s.Error != "" && len(s.Errors) > 0
	})
	if s := ts.LastSync(); !strings.Contains(s.Errors[0].String(), "apis/greeting.yaml") || s.To != first {
		t.Fatalf("refused sync: %+v", s)
	}
	if got := ts.Current().Git.Hash; got != first {
		t.Fatalf("the gateway moved to an invalid revision %s", got)
	}
	// The refusal is in the metrics, and in the log once for that remote
	// revision, however many intervals pass.
	waitFor(t, pollTimeout, "three refused sync attempts", func() bool {
		return metricValue(ts.metricFamilies(t), "databus_gitsync_total", map[string]string{"result": "refused"}) >= 3
	})
	if v := metricValue(ts.metricFamilies(t), "databus_gitsync_last_success", map[string]string{}); v != 0 {
		t.Errorf("databus_gitsync_last_success = %v after refusals", v)
	}
	if n := logs.count("git sync: staying on the current revision"); n != 1 {
		t.Errorf("the refusal of one remote revision was logged %d times, want once", n)
	}
	ts.expectValue(t, "greeting", "one")
	if head, _ := git.PlainOpen(checkout); head != nil {
		h, _ := head.Head()
		if h.Hash().String() != first {
			t.Fatalf("the checkout moved to %s", h.Hash())
		}
	}

	// A good commit after it: followed.
	seed.commit(map[string]string{"apis/greeting.yaml": scriptAPI("greeting", "online", "three")}, "fixed")
	seed.push()
	ts.expectValue(t, "greeting", "three")
	if s := ts.LastSync(); s == nil || s.Error != "" || !s.Moved && s.To == first {
		t.Fatalf("sync after the fix: %+v", s)
	}
	if g := ts.Current().Git; g.Message != "fixed" {
		t.Fatalf("serving %q, want the commit 'fixed'", g.Message)
	}
	mf := ts.metricFamilies(t)
	if v := metricValue(mf, "databus_gitsync_last_success", map[string]string{}); v != 1 {
		t.Errorf("databus_gitsync_last_success = %v after the fix", v)
	}
	if v := metricValue(mf, "databus_gitsync_total", map[string]string{"result": "moved"}); v < 1 {
		t.Errorf("databus_gitsync_total{result=moved} = %v", v)
	}
	l.stop(t)
	if n := l.failed(); n > 0 {
		t.Fatalf("%d requests failed during git sync", n)
	}

	// A local commit the remote lacks: diverged, the gateway stays.
	local, err := git.PlainOpen(checkout)
	if err != nil {
		t.Fatal(err)
	}
	lw := &gitWork{t: t, dir: checkout, r: local}
	lw.commit(map[string]string{"apis/greeting.yaml": scriptAPI("greeting", "online", "local")}, "local change")
	seed.commit(map[string]string{"apis/greeting.yaml": scriptAPI("greeting", "online", "remote")}, "remote change")
	seed.push()
	waitFor(t, pollTimeout, "git sync to report divergence", func() bool {
		s := ts.LastSync()
		return s != nil && strings.Contains(s.Error, "diverged")
	})
}

func TestGitSyncNeedsACheckout(t *testing.T) {
	dir := newRepo(t, map[string]string{"a.yaml": scriptAPI("a", "online", "x")})
	if _, err := New(Options{Dir: dir, GitSync: true, StoragePath: filepath.Join(t.TempDir(), "db")}); err == nil || !strings.Contains(err.Error(), "not a git checkout") {
		t.Fatalf("--git-sync outside git: %v", err)
	}
	// Outside git the gateway serves without revision information.
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	if ts.Current().Git != nil {
		t.Fatal("a repository outside git has no git revision")
	}
}
