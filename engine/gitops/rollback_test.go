package gitops

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

// changedPaths lists the work-tree paths a commit changed against its parent.
func changedPaths(t *testing.T, g *git.Repository, hash string) []string {
	t.Helper()
	c, err := g.CommitObject(plumbing.NewHash(hash))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Parent(0)
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := p.Tree()
	ct, _ := c.Tree()
	changes, err := object.DiffTree(pt, ct)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ch := range changes {
		name := ch.To.Name
		if name == "" {
			name = ch.From.Name + " (deleted)"
		}
		out = append(out, name)
	}
	return out
}

// gitStatus returns the index and work-tree state of changed files, as
// go-git's status sees it.
func gitStatus(t *testing.T, g *git.Repository) map[string]string {
	t.Helper()
	wt, err := g.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	st, err := wt.Status()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for f, s := range st {
		out[f] = string([]byte{byte(s.Staging), byte(s.Worktree)})
	}
	return out
}

func TestRollbackWorktree(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	res, err := r.Rollback(context.Background(), "order.create:v1", "v0.9", false, gateCheck)
	if err != nil {
		t.Fatal(err)
	}
	want := &RollbackResult{API: "order.create:v1", File: "apis/order.yaml", From: s.C2, Removed: []string{"apis/orders/create.yaml"}}
	diags := res.Diagnostics
	res.Diagnostics = nil
	if !reflect.DeepEqual(res, want) || diags.HasErrors() {
		t.Errorf("Rollback = %+v (%v), want %+v", res, diags, want)
	}
	if got := s.Read("apis/order.yaml"); got != strings.TrimPrefix(gitopstest.OrderV2, "\n") {
		t.Errorf("apis/order.yaml:\n%s", got)
	}
	if _, err := os.Stat(s.Path("apis/orders/create.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the API's current file was not removed")
	}
	if s.Head() != s.C4 {
		t.Error("HEAD moved without commit")
	}
	rev, _ := r.Revision()
	if !reflect.DeepEqual(rev.DirtyFiles, []string{"apis/order.yaml", "apis/orders/create.yaml"}) {
		t.Errorf("dirty files %v", rev.DirtyFiles)
	}
	// The API is now as it was.
	d, err := r.Diff(s.C2, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, dd := range d.Docs {
		if dd.ID == "order.create:v1" {
			t.Errorf("order.create:v1 still differs from C2: %+v", dd)
		}
	}
}

func TestRollbackCommit(t *testing.T) {
	for _, sub := range []string{"", "deploy/config"} {
		t.Run("sub="+sub, func(t *testing.T) {
			s := gitopstest.Sample(t, sub)
			s.SetUser("Carol Ops", "carol@example.com")
			// Unrelated staged and unstaged changes stay out of the commit.
			s.Write("README.md", "# staged\n")
			wt, _ := s.Git.Worktree()
			if _, err := wt.Add(filepath.ToSlash(filepath.Join(sub, "README.md"))); err != nil {
				t.Fatal(err)
			}
			s.Write("policies/standard.yaml", gitopstest.StandardV1)
			r := open(t, s.Dir)
			res, err := r.Rollback(context.Background(), "order.create", s.C1[:8], true, gateCheck)
			if err != nil {
				t.Fatal(err)
			}
			if res.Committed == "" || s.Head() != res.Committed {
				t.Fatalf("Committed %q, HEAD %s", res.Committed, s.Head())
			}
			c, err := s.Git.CommitObject(plumbing.NewHash(res.Committed))
			if err != nil {
				t.Fatal(err)
			}
			if want := "Roll back order.create:v1 to " + s.C1[:7]; c.Message != want+"\n\nRestores apis/order.yaml as of "+s.C1+".\n" {
				t.Errorf("message %q, want subject %q", c.Message, want)
			}
			if c.Author.Name != "Carol Ops" || c.Author.Email != "carol@example.com" || c.Committer.Name != "Carol Ops" {
				t.Errorf("author %v committer %v", c.Author, c.Committer)
			}
			if len(c.ParentHashes) != 1 || c.ParentHashes[0].String() != s.C4 {
				t.Errorf("parents %v", c.ParentHashes)
			}
			prefix := ""
			if sub != "" {
				prefix = sub + "/"
			}
			if got, want := changedPaths(t, s.Git, res.Committed), []string{prefix + "apis/order.yaml", prefix + "apis/orders/create.yaml (deleted)"}; !reflect.DeepEqual(got, want) {
				t.Errorf("the commit changed %v, want %v", got, want)
			}
			if got, _ := r.FileAt("HEAD", "apis/order.yaml"); string(got) != strings.TrimPrefix(gitopstest.OrderV1, "\n") {
				t.Errorf("HEAD:apis/order.yaml = %s", got)
			}
			// Still on main; the index agrees with the commit for the
			// rolled-back files, and the other changes are as they were.
			if ref, _ := s.Git.Head(); ref.Name() != plumbing.NewBranchReferenceName("main") {
				t.Errorf("HEAD is %s", ref.Name())
			}
			want := map[string]string{prefix + "README.md": "M ", prefix + "policies/standard.yaml": " M"}
			if got := gitStatus(t, s.Git); !reflect.DeepEqual(got, want) {
				t.Errorf("status %v, want %v", got, want)
			}
			idx, err := s.Git.Storer.Index()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range idx.Entries {
				if e.Stage != 0 {
					t.Errorf("index entry %s at stage %d: git would see a conflict", e.Name, e.Stage)
				}
			}
			rev, _ := r.Revision()
			if !reflect.DeepEqual(rev.DirtyFiles, []string{"policies/standard.yaml"}) {
				t.Errorf("dirty %v", rev.DirtyFiles)
			}
			// The history of the API shows the rollback.
			vs, err := r.VersionsOfAPI("order.create", "v1")
			if err != nil || len(vs) != 4 || vs[0].Hash != res.Committed || vs[0].Change != Renamed || vs[0].OldPath != "apis/orders/create.yaml" {
				t.Errorf("versions after the rollback: %+v %v", vs, err)
			}

			// Rolling back to the same revision again has nothing to commit.
			res2, err := r.Rollback(context.Background(), "order.create:v1", s.C1, true, gateCheck)
			if err != nil || res2.Committed != "" || res2.Removed != nil {
				t.Errorf("second rollback: %+v, %v", res2, err)
			}
		})
	}
}

func TestRollbackDefaultAuthor(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(home, "none"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	res, err := r.Rollback(context.Background(), "order.create:v1", "HEAD~3", true, gateCheck)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Git.CommitObject(plumbing.NewHash(res.Committed))
	if err != nil {
		t.Fatal(err)
	}
	if c.Author.Name != DefaultAuthorName || c.Author.Email != DefaultAuthorEmail {
		t.Errorf("author %v, want %s <%s>", c.Author, DefaultAuthorName, DefaultAuthorEmail)
	}
}

func TestRollbackDetached(t *testing.T) {
	s := gitopstest.Sample(t, "")
	s.Checkout(s.C3)
	r := open(t, s.Dir)
	res, err := r.Rollback(context.Background(), "order.create:v1", s.C1, true, gateCheck)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := s.Git.Head()
	if ref.Name() != plumbing.HEAD || ref.Hash().String() != res.Committed {
		t.Errorf("HEAD %v, want detached at %s", ref, res.Committed)
	}
	if main, _ := s.Git.Reference(plumbing.NewBranchReferenceName("main"), true); main.Hash().String() != s.C4 {
		t.Error("main moved")
	}
}

// A deleted API comes back; when that makes the repository invalid (its
// policy was deleted with it), nothing changes.
func TestRollbackInvalid(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	s.Write("README.md", "local edit\n")
	before := snapshot(t, s.Root)
	for _, commit := range []bool{false, true} {
		res, err := r.Rollback(context.Background(), "stock.reserve:v1", s.C2, commit, gateCheck)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("commit=%v: %v, want ErrInvalid", commit, err)
		}
		if res == nil || !res.Diagnostics.HasErrors() || !strings.Contains(res.Diagnostics.Error(), `apis/stock.yaml:9:14: error: policies.rateLimit: rate-limit policy "burst" not found`) {
			t.Fatalf("diagnostics: %+v", res)
		}
		if res.Committed != "" || s.Head() != s.C4 {
			t.Error("committed an invalid rollback")
		}
		if after := snapshot(t, s.Root); !reflect.DeepEqual(after, before) {
			t.Errorf("the tree changed:\nbefore %v\nafter  %v", keys(before), keys(after))
		}
	}

	// The invalid version of order.create (branch broken) moves it back
	// to the path it had, which must also be put back.
	res, err := r.Rollback(context.Background(), "order.create:v1", "broken", false, gateCheck)
	if !errors.Is(err, ErrInvalid) || res.File != "apis/orders/create.yaml" {
		t.Fatalf("%+v %v", res, err)
	}
	if after := snapshot(t, s.Root); !reflect.DeepEqual(after, before) {
		t.Errorf("the tree changed: %v", keys(after))
	}
	// A rollback that creates folders removes them again.
	s.Rename("apis/orders/create.yaml", "apis/order.yaml")
	if err := os.Remove(s.Path("apis/orders")); err != nil {
		t.Fatal(err)
	}
	s.Write("credentials/bad.yaml", "appId: [\n") // the working tree is invalid already
	before = snapshot(t, s.Root)
	res, err = r.Rollback(context.Background(), "order.create:v1", "v1.0", false, gateCheck)
	if !errors.Is(err, ErrInvalid) || res.File != "apis/orders/create.yaml" || !reflect.DeepEqual(res.Removed, []string{"apis/order.yaml"}) {
		t.Fatalf("%+v %v", res, err)
	}
	if after := snapshot(t, s.Root); !reflect.DeepEqual(after, before) {
		t.Errorf("the tree changed: %v", keys(after))
	}
}

func TestRollbackErrors(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	tests := []struct {
		api, rev string
		want     error
	}{
		{"order.create:v1", "nosuch", ErrNotFound},
		{"order.create:v2", "HEAD", ErrNotFound},
		{"stock.reserve", s.C1, ErrNotFound},
		{"", "HEAD", ErrNotFound},
		{"order.create", "feature", ErrAmbiguous},
	}
	before := snapshot(t, s.Root)
	for _, tt := range tests {
		if _, err := r.Rollback(context.Background(), tt.api, tt.rev, true, gateCheck); !errors.Is(err, tt.want) {
			t.Errorf("Rollback(%q, %q): %v, want %v", tt.api, tt.rev, err, tt.want)
		}
	}
	if after := snapshot(t, s.Root); !reflect.DeepEqual(after, before) || s.Head() != s.C4 {
		t.Error("a failed rollback changed the tree")
	}
}

// A rollback committed after the same rollback was left uncommitted
// commits a valid tree: the API's file at its new path (in HEAD, no longer
// in the working tree) goes in the same commit.
func TestRollbackCommitAfterUncommitted(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	b.Write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: x.api\nversion: v1\nstatus: online\nmethods: [GET]\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	b.Commit("add x.api")
	b.Rename("apis/a.yaml", "apis/b.yaml")
	b.Commit("move x.api")
	r := open(t, b.Dir)
	if _, err := r.Rollback(context.Background(), "x.api", "HEAD~1", false, gateCheck); err != nil {
		t.Fatal(err)
	}
	res, err := r.Rollback(context.Background(), "x.api", "HEAD~1", true, gateCheck)
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed == "" {
		t.Fatal("nothing committed")
	}
	diags, err := r.CheckRevision(context.Background(), "HEAD", gateCheck)
	if err != nil || diags.HasErrors() {
		t.Fatalf("HEAD after the rollback commit: %v %v", err, diags)
	}
	c, _ := b.Git.CommitObject(plumbing.NewHash(res.Committed))
	tree, _ := c.Tree()
	var files []string
	tree.Files().ForEach(func(f *object.File) error { files = append(files, f.Name); return nil })
	if strings.Join(files, " ") != "apis/a.yaml databus.yaml" {
		t.Errorf("HEAD holds %v, want apis/a.yaml and databus.yaml", files)
	}
}

// A rollback whose commit would hold an invalid tree is refused and
// changes nothing, even when the working tree alone would be valid.
func TestRollbackCommitTreeChecked(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	b.Write("policies/p.yaml", "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\n")
	b.Write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: x.api\nversion: v1\nstatus: online\nmethods: [GET]\npolicies: {rateLimit: p}\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	old := b.Commit("add x.api with policy p")
	b.Write("apis/a.yaml", "apiVersion: databus/v1\nkind: Api\ncode: x.api\nversion: v1\nstatus: online\nmethods: [GET]\nsteps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n")
	b.Remove("policies/p.yaml")
	head := b.Commit("drop the policy")
	// The working tree has policy p again (uncommitted), so restoring
	// a.yaml is valid there, but not in HEAD's tree.
	b.Write("policies/p.yaml", "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: p\n")
	r := open(t, b.Dir)
	res, err := r.Rollback(context.Background(), "x.api", old, true, gateCheck)
	if !errors.Is(err, ErrInvalid) || res == nil || !strings.Contains(res.Diagnostics.Error(), `rate-limit policy "p" not found`) {
		t.Fatalf("rollback: %v %+v", err, res)
	}
	if b.Head() != head {
		t.Error("HEAD moved")
	}
	if got := b.Read("apis/a.yaml"); strings.Contains(got, "rateLimit") {
		t.Error("the working tree was not put back")
	}
}
