package gitops

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

func TestOpenNotGit(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrNotGit) {
		t.Fatalf("Open of a plain folder: %v, want ErrNotGit", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Open of a missing folder succeeded")
	}
}

func TestOpenSubFolder(t *testing.T) {
	s := gitopstest.Sample(t, "deploy/config")
	r := open(t, s.Dir)
	if r.Root() != s.Root || r.Dir() != s.Dir || r.prefix != "deploy/config" {
		t.Fatalf("root %q dir %q prefix %q; want %q %q deploy/config", r.Root(), r.Dir(), r.prefix, s.Root, s.Dir)
	}
	// A folder below the config repository opens too (the .git folder is
	// looked for upwards), and is then the config repository.
	sub := open(t, filepath.Join(s.Dir, "apis"))
	if sub.prefix != "deploy/config/apis" {
		t.Errorf("prefix %q", sub.prefix)
	}
	if _, err := Open(filepath.Join(s.Root, ".git")); !errors.Is(err, ErrNotGit) {
		t.Errorf("Open(.git): %v, want ErrNotGit", err)
	}
}

func TestRevision(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	rev, err := r.Revision()
	if err != nil {
		t.Fatal(err)
	}
	want := Revision{
		Hash: s.C4, Short: s.C4[:7], Branch: "main",
		Time:    gitopstest.Epoch.Add(3 * 24 * time.Hour),
		Author:  "Bob Builder",
		Message: "Retire stock.reserve; tighten the standard policy",
	}
	if !rev.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", rev.Time, want.Time)
	}
	rev.Time = want.Time
	if !reflect.DeepEqual(rev, want) {
		t.Errorf("Revision()\n got %+v\nwant %+v", rev, want)
	}

	// Detached HEAD.
	s.Checkout(s.C2)
	rev, err = r.Revision()
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash != s.C2 || rev.Branch != "" || rev.Dirty {
		t.Errorf("detached: %+v", rev)
	}
	if rev.Subject() != "Publish order.create with a scoring step" || !strings.HasSuffix(rev.Message, "Also adds stock.reserve.") {
		t.Errorf("message %q, subject %q", rev.Message, rev.Subject())
	}
	s.Checkout("feature")
	if rev, _ = r.Revision(); rev.Branch != "feature" || rev.Hash != s.Feature {
		t.Errorf("on feature: %+v", rev)
	}
}

func TestRevisionDirty(t *testing.T) {
	for _, sub := range []string{"", "config"} {
		t.Run("sub="+sub, func(t *testing.T) {
			s := gitopstest.Sample(t, sub)
			r := open(t, s.Dir)
			dirty := func() []string {
				t.Helper()
				rev, err := r.Revision()
				if err != nil {
					t.Fatal(err)
				}
				if rev.Dirty != (len(rev.DirtyFiles) > 0) {
					t.Errorf("Dirty %v with files %v", rev.Dirty, rev.DirtyFiles)
				}
				return rev.DirtyFiles
			}
			if d := dirty(); d != nil {
				t.Fatalf("clean checkout is dirty: %v", d)
			}

			// Files the loader does not read never make the tree dirty.
			s.Write("README.md", "# changed\n")
			s.Write("data/databus.db", "bolt")
			s.Write("apis/notes.txt", "not yaml")
			s.Write("apis/.hidden.yaml", "hidden")
			s.Write("examples/x.yaml", "kind: Api")
			if err := os.WriteFile(filepath.Join(s.Root, "outside.yaml"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if d := dirty(); d != nil {
				t.Fatalf("non-config changes make it dirty: %v", d)
			}

			s.Write("policies/standard.yaml", gitopstest.StandardV1)   // modified
			s.Write("credentials/partner.yml", "appId: partner\n")     // untracked
			s.Remove("apis/orders/create.yaml")                        // deleted
			s.Write("databus.yaml", gitopstest.Settings+"# comment\n") // modified
			want := []string{"apis/orders/create.yaml", "credentials/partner.yml", "databus.yaml", "policies/standard.yaml"}
			if d := dirty(); !reflect.DeepEqual(d, want) {
				t.Errorf("dirty files %v, want %v", d, want)
			}

			// Putting the content back makes it clean again.
			s.Write("policies/standard.yaml", gitopstest.StandardV2)
			s.Remove("credentials/partner.yml")
			s.Write("apis/orders/create.yaml", gitopstest.OrderV3)
			s.Write("databus.yaml", gitopstest.Settings)
			if d := dirty(); d != nil {
				t.Errorf("restored tree is dirty: %v", d)
			}
		})
	}
}

// TestRevisionSymlinkLoop: a symlink loop in a kind folder neither fails
// the working-tree listing nor lists a file twice (under its aliases).
func TestRevisionSymlinkLoop(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	for _, l := range []string{"l1", "l2", "l3"} {
		if err := os.Symlink(".", filepath.Join(s.Root, "apis", l)); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := r.Revision()
	if err != nil {
		t.Fatalf("Revision with symlink loops: %v", err)
	}
	if rev.Dirty {
		t.Errorf("dirty through the loops: %v", rev.DirtyFiles)
	}
	s.Write("apis/orders/create.yaml", gitopstest.OrderV1)
	if rev, err = r.Revision(); err != nil || !reflect.DeepEqual(rev.DirtyFiles, []string{"apis/orders/create.yaml"}) {
		t.Errorf("dirty files %v (%v), want the real file once", rev.DirtyFiles, err)
	}
}

func TestRevisionNoCommits(t *testing.T) {
	b := gitopstest.New(t, "")
	r := open(t, b.Dir)
	rev, err := r.Revision()
	if err != nil {
		t.Fatal(err)
	}
	if rev.Hash != "" || rev.Branch != "main" || rev.Dirty {
		t.Errorf("empty repository: %+v", rev)
	}
	b.Write("apis/a.yaml", "code: a\n")
	if rev, _ = r.Revision(); !rev.Dirty || !reflect.DeepEqual(rev.DirtyFiles, []string{"apis/a.yaml"}) {
		t.Errorf("empty repository with a file: %+v", rev)
	}
	if _, err := r.VersionsOfAPI("a", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("VersionsOfAPI before the first commit: %v", err)
	}
	if vs, err := r.Versions("apis/a.yaml"); err != nil || len(vs) != 0 {
		t.Errorf("Versions before the first commit: %v %v", vs, err)
	}
}

func TestResolve(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	tests := []struct{ rev, want string }{
		{s.C2, s.C2},
		{strings.ToUpper(s.C2), s.C2},
		{s.C2[:10], s.C2},
		{s.C3[:4], s.C3},
		{"HEAD", s.C4},
		{"main", s.C4},
		{"refs/heads/main", s.C4},
		{"feature", s.Feature},
		{"v0.9", s.C2}, // lightweight tag
		{"v1.0", s.C3}, // annotated tag, peeled to its commit
		{"HEAD~1", s.C3},
		{"HEAD~3", s.C1},
		{"HEAD^", s.C3},
		{"main^^", s.C2},
		{"v1.0~1", s.C2},
		{"feature~1", s.C4},
		{s.C4[:7] + "~2", s.C2},
	}
	for _, tt := range tests {
		got, err := r.Resolve(tt.rev)
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %s, %v; want %s", tt.rev, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "nosuch", "HEAD~9", "abc", "0000000", s.C1[:3]} {
		if got, err := r.Resolve(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) = %s, %v; want ErrNotFound", bad, got, err)
		}
	}
}

func TestResolveAmbiguousPrefix(t *testing.T) {
	b := gitopstest.New(t, "")
	seen := map[string]string{}
	// Commit until two hashes share their first 4 hex digits (a few hundred
	// commits at most: 65536 prefixes, birthday bound).
	for i := 0; i < 2000; i++ {
		h := b.Commit("commit")
		if other, ok := seen[h[:4]]; ok {
			r := open(t, b.Dir)
			_, err := r.Resolve(h[:4])
			if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), other[:12]) {
				t.Fatalf("Resolve(%s): %v, want ErrAmbiguous naming %s", h[:4], err, other[:12])
			}
			if got, err := r.Resolve(h[:12]); err != nil || got != h {
				t.Fatalf("Resolve(%s) = %s, %v", h[:12], got, err)
			}
			return
		}
		seen[h[:4]] = h
	}
	t.Fatal("no two commits shared a 4-digit prefix")
}

func TestFileAt(t *testing.T) {
	for _, sub := range []string{"", "config"} {
		t.Run("sub="+sub, func(t *testing.T) {
			s := gitopstest.Sample(t, sub)
			r := open(t, s.Dir)
			tests := []struct{ rev, file, want string }{
				{s.C1, "apis/order.yaml", gitopstest.OrderV1},
				{"v0.9", "apis/order.yaml", gitopstest.OrderV2},
				{"HEAD", "apis/orders/create.yaml", gitopstest.OrderV3},
				{"HEAD~1", "policies/burst.yaml", gitopstest.Burst},
				{"main", "./policies/../policies/standard.yaml", gitopstest.StandardV2},
				{"HEAD", "README.md", "# Config\n\nThe gateway's APIs.\n"},
			}
			for _, tt := range tests {
				got, err := r.FileAt(tt.rev, tt.file)
				if err != nil || string(got) != strings.TrimPrefix(tt.want, "\n") {
					t.Errorf("FileAt(%s, %s) = %q, %v", tt.rev, tt.file, got, err)
				}
			}
			if _, err := r.FileAt("HEAD", "apis/order.yaml"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a file moved away: %v, want ErrNotFound", err)
			}
			if _, err := r.FileAt("nosuch", "databus.yaml"); !errors.Is(err, ErrNotFound) {
				t.Errorf("an unknown revision: %v, want ErrNotFound", err)
			}
			for _, bad := range []string{"", "/etc/passwd", "../x", "apis/../../x"} {
				if _, err := r.FileAt("HEAD", bad); err == nil {
					t.Errorf("FileAt(%q) succeeded", bad)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	s := gitopstest.Sample(t, "config")
	r := open(t, s.Dir)
	repo, diags, err := r.Load(s.C2)
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() {
		t.Fatalf("C2 is valid, got %v", diags)
	}
	if got := repo.String(); got != "2 APIs, 1 credential, 2 policies" {
		t.Errorf("C2: %s", got)
	}
	if a := repo.API("order.create", "v1"); a == nil || a.Source.File != "apis/order.yaml" || a.Status != "online" {
		t.Errorf("order.create:v1 at C2: %+v", a)
	}
	if _, err := os.Stat(repo.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary folder %s was not removed", repo.Dir)
	}

	// An invalid revision loads with its diagnostics.
	_, diags, err = r.Load("broken")
	if err != nil {
		t.Fatal(err)
	}
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `apis/orders/create.yaml:9:14: error: policies.rateLimit: rate-limit policy "nosuch" not found`) {
		t.Errorf("broken: %v", diags)
	}

	// "" is the working tree.
	s.Write("apis/orders/create.yaml", gitopstest.OrderBroken)
	if _, diags, _ = r.Load(""); !diags.HasErrors() {
		t.Error("the broken working tree loads without errors")
	}
	if _, _, err := r.Load("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(nosuch): %v", err)
	}
}

// Files the config refers to (a secret file) are there when a revision is
// loaded: the committed-secret warning and the key-length check see them.
func TestLoadReferencedFiles(t *testing.T) {
	b := gitopstest.New(t, "")
	b.Write("databus.yaml", "apiVersion: databus/v1\nkind: Settings\n")
	b.Write("credentials/demo.yaml", `
apiVersion: databus/v1
kind: Credential
appId: demo
encryptionKey: {secretRef: 'file:secrets/demo.key'}
`)
	b.Write("secrets/demo.key", "0123456789abcdef\n")
	h := b.Commit("demo")
	r := open(t, b.Dir)
	_, diags, err := r.Load(h)
	if err != nil {
		t.Fatal(err)
	}
	if diags.HasErrors() || len(diags) != 1 || !strings.Contains(diags[0].Message, "committed secret") {
		t.Errorf("diagnostics %v, want the committed-secret warning only", diags)
	}
}

// One Repo serves concurrent calls (the gateway's reloads and admin
// requests), and sees commits made after it was opened.
func TestConcurrentCalls(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 10; i++ {
		wg.Add(4)
		go func() { defer wg.Done(); _, err := r.Revision(); errs <- err }()
		go func() { defer wg.Done(); _, err := r.VersionsOfAPI("order.create", "v1"); errs <- err }()
		go func() { defer wg.Done(); _, err := r.Diff(s.C1, ""); errs <- err }()
		go func() { defer wg.Done(); _, err := r.FileAt("v1.0", "apis/orders/create.yaml"); errs <- err }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	h := s.Commit("later")
	if rev, err := r.Revision(); err != nil || rev.Hash != h {
		t.Errorf("after a new commit: %+v, %v", rev, err)
	}
}
