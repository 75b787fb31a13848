package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
)

// TestStorageDefaultOutsideRepo: without storage.path or --storage the bbolt
// file goes to the user's state folder, outside the checkout, and /readyz
// says where; storage.path and the flag still choose it.
func TestStorageDefaultOutsideRepo(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	_, body := ts.admin("/readyz")
	got, _ := body["storage"].(string)
	want := config.DefaultStoragePath(dir)
	if got != want || !strings.HasPrefix(got, filepath.Join(state, "databus", filepath.Base(dir)+"-")) {
		t.Fatalf("/readyz storage = %q, want %q under %s", got, want, state)
	}
	if _, err := os.Stat(got); err != nil {
		t.Errorf("the bbolt file is not where /readyz says: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Errorf("runtime data landed in the repository: %v", err)
	}
	// Another repository gets another folder.
	if other := config.DefaultStoragePath(t.TempDir()); filepath.Dir(other) == filepath.Dir(want) {
		t.Errorf("two repositories share %s", filepath.Dir(want))
	}

	// storage.path, relative to the repository, still wins; --storage over it.
	dir2 := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir2, "databus.yaml"), testSettings+"storage:\n  path: state/x.db\n")
	ts2 := startServer(t, Options{Dir: dir2, NoWatch: true})
	if _, body := ts2.admin("/readyz"); body["storage"] != filepath.Join(dir2, "state/x.db") {
		t.Errorf("storage.path: /readyz storage = %v", body["storage"])
	}
	flag := filepath.Join(t.TempDir(), "flag.db")
	dir3 := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts3 := startServer(t, Options{Dir: dir3, NoWatch: true, StoragePath: flag})
	if _, body := ts3.admin("/readyz"); body["storage"] != flag {
		t.Errorf("--storage: /readyz storage = %v", body["storage"])
	}
}
