//go:build linux

// File metadata stands for bytes on Linux only: these tests are Linux ones.

package gitops

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/gitops/gitopstest"
)

const orderFile = "apis/orders/create.yaml"

// trusting opens the sample's config repository with metadata trusted
// however fresh the files are (the tests write them just now), and
// records the files each Revision call reads.
func trusting(t *testing.T, s *gitopstest.SampleRepo) (*Repo, func() []string) {
	t.Helper()
	r := open(t, s.Dir)
	r.racy = -time.Hour
	var read []string
	r.onRead = func(rel string) { read = append(read, rel) }
	return r, func() []string { out := read; read = nil; sort.Strings(out); return out }
}

func revOf(t *testing.T, r *Repo) Revision {
	t.Helper()
	rev, err := r.Revision()
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// A Revision call after one that learnt the files reads none and lists
// no tree when nothing changed, and reads only the file that changed.
func TestRevisionReadsWhatChanged(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r, reads := trusting(t, s)
	first := revOf(t, r)
	all, err := worktreeConfigFiles(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := reads(); !reflect.DeepEqual(got, all) {
		t.Fatalf("first call read %v, want every config file %v", got, all)
	}
	walks := r.stats.treeWalks.Load()
	second := revOf(t, r)
	if got := reads(); len(got) != 0 {
		t.Errorf("nothing changed, yet the second call read %v", got)
	}
	if w := r.stats.treeWalks.Load(); w != walks {
		t.Errorf("HEAD did not move, yet the tree was listed again (%d walks, was %d)", w, walks)
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("second call\n got %+v\nwant %+v", second, first)
	}

	s.Write(orderFile, gitopstest.OrderV1)
	if rev := revOf(t, r); !reflect.DeepEqual(rev.DirtyFiles, []string{orderFile}) {
		t.Errorf("dirty files %v, want %s", rev.DirtyFiles, orderFile)
	}
	if got := reads(); !reflect.DeepEqual(got, []string{orderFile}) {
		t.Errorf("one file changed, the call read %v", got)
	}

	// A deleted file leaves the cache: it holds only listed files.
	s.Remove(orderFile)
	if rev := revOf(t, r); !reflect.DeepEqual(rev.DirtyFiles, []string{orderFile}) {
		t.Errorf("after deleting: dirty files %v, want %s", rev.DirtyFiles, orderFile)
	}
	if _, ok := r.cache.files[orderFile]; ok || len(r.cache.files) != len(all)-1 {
		t.Errorf("cache holds %d files (deleted one kept: %v), want %d", len(r.cache.files), ok, len(all)-1)
	}
}

// A file rewritten with other bytes of the same size, its modification
// time put back, is found dirty: its change time moved.
func TestRevisionSameSizeMtimeRestored(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r, reads := trusting(t, s)
	if rev := revOf(t, r); rev.Dirty {
		t.Fatalf("clean checkout is dirty: %v", rev.DirtyFiles)
	}
	reads()
	p := s.Path(orderFile)
	before := statT(t, p)
	old := []byte(s.Read(orderFile))
	changed := append([]byte(nil), old...)
	changed[len(changed)-2] ^= 1 // same size, other bytes
	if err := os.WriteFile(p, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(before.Mtim.Unix())
	// Put the modification time back until the change time differs from
	// the one Revision saw (both may fall in one clock tick).
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if after := statT(t, p); after.Ctim != before.Ctim {
			if after.Ino != before.Ino || after.Size != before.Size || after.Mtim != before.Mtim {
				t.Fatalf("metadata other than ctime moved: before %+v after %+v", before, after)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the change time never moved")
		}
	}
	if rev := revOf(t, r); !reflect.DeepEqual(rev.DirtyFiles, []string{orderFile}) {
		t.Errorf("dirty files %v, want %s (same size and mtime, ctime moved)", rev.DirtyFiles, orderFile)
	}
	if got := reads(); !reflect.DeepEqual(got, []string{orderFile}) {
		t.Errorf("read %v, want %s", got, orderFile)
	}
}

// A file rewritten with the same bytes is read again (its metadata moved)
// and is not dirty; the call after reads nothing.
func TestRevisionSameBytesRewritten(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r, reads := trusting(t, s)
	revOf(t, r)
	reads()
	s.Write(orderFile, s.Read(orderFile))
	if rev := revOf(t, r); rev.Dirty {
		t.Errorf("same bytes rewritten: dirty %v", rev.DirtyFiles)
	}
	if got := reads(); !reflect.DeepEqual(got, []string{orderFile}) {
		t.Errorf("read %v, want %s", got, orderFile)
	}
	if rev := revOf(t, r); rev.Dirty {
		t.Errorf("dirty %v", rev.DirtyFiles)
	}
	if got := reads(); len(got) != 0 {
		t.Errorf("nothing changed, yet read %v", got)
	}
}

// A commit moving HEAD replaces the committed files: what was dirty is
// clean after the commit, and a checkout back makes it dirty again.
func TestRevisionHeadMoves(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r, _ := trusting(t, s)
	revOf(t, r)
	s.Write(orderFile, gitopstest.OrderV1)
	s.Write("apis/new.yaml", "code: new\n")
	want := []string{"apis/new.yaml", orderFile}
	if rev := revOf(t, r); !reflect.DeepEqual(rev.DirtyFiles, want) {
		t.Fatalf("dirty files %v, want %v", rev.DirtyFiles, want)
	}
	walks := r.stats.treeWalks.Load()
	h := s.Commit("edit order.create")
	rev := revOf(t, r)
	if rev.Hash != h || rev.Dirty || rev.Subject() != "edit order.create" {
		t.Errorf("after the commit: %+v", rev)
	}
	if w := r.stats.treeWalks.Load(); w != walks+1 {
		t.Errorf("HEAD moved: %d tree walks, want %d", w, walks+1)
	}
	if rev := revOf(t, r); rev.Hash != h || rev.Dirty || r.stats.treeWalks.Load() != walks+1 {
		t.Errorf("again: %+v, %d walks", rev, r.stats.treeWalks.Load())
	}
	// The working tree stays; HEAD goes back one commit.
	if err := os.WriteFile(filepath.Join(s.Root, ".git", "refs", "heads", "main"), []byte(s.C4+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rev := revOf(t, r); rev.Hash != s.C4 || !reflect.DeepEqual(rev.DirtyFiles, want) {
		t.Errorf("HEAD back at C4: %s dirty %v, want %v", short(rev.Hash), rev.DirtyFiles, want)
	}
}

// The racy-clean guard: a file whose times are not well before the moment
// it was read (here its mtime is an hour ahead and its ctime is now) is
// read again on every call.
func TestRevisionRacyFileReadAgain(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r := open(t, s.Dir)
	read := map[string]int{}
	r.onRead = func(rel string) { read[rel]++ }
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(s.Path(orderFile), future, future); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		revOf(t, r)
	}
	if read[orderFile] != 3 {
		t.Errorf("a file modified within the racy window was read %d times in 3 calls, want 3", read[orderFile])
	}
}

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t)
}

// A contract test is a config file like the others: an uncommitted edit
// under tests/ makes the checkout dirty, as config.Load would read it.
func TestRevisionDirtyTestFile(t *testing.T) {
	s := gitopstest.Sample(t, "")
	r, _ := trusting(t, s)
	if rev := revOf(t, r); rev.Dirty {
		t.Fatalf("clean checkout is dirty: %v", rev.DirtyFiles)
	}
	const test = "tests/orders.yaml"
	s.Write(test, "apiVersion: databus/v1\nkind: ApiTest\napi: orders.create:v1\ncases: []\n")
	if rev := revOf(t, r); !reflect.DeepEqual(rev.DirtyFiles, []string{test}) {
		t.Errorf("dirty files %v, want %s", rev.DirtyFiles, test)
	}
}
