package config

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// sameAsLoad checks that an incremental Reload found exactly what a full
// Load of the same folder finds: findings, content hash and documents.
func sameAsLoad(t *testing.T, step string, dir string, inc *Repository, incDiags Diagnostics) {
	t.Helper()
	full, fullDiags, err := Load(dir)
	if err != nil {
		t.Fatalf("%s: Load: %v", step, err)
	}
	if !reflect.DeepEqual(fullDiags, incDiags) {
		t.Fatalf("%s: findings differ\nLoad:\n%s\nReload:\n%s", step, dump(fullDiags), dump(incDiags))
	}
	if full.Hash != inc.Hash {
		t.Fatalf("%s: hash %s, Load's %s", step, inc.Hash, full.Hash)
	}
	for _, pair := range [][2]any{{full.Settings, inc.Settings}, {full.APIs, inc.APIs}, {full.Credentials, inc.Credentials}, {full.Policies, inc.Policies}} {
		a, _ := json.Marshal(pair[0])
		b, _ := json.Marshal(pair[1])
		if string(a) != string(b) {
			t.Fatalf("%s: documents differ\nLoad:   %s\nReload: %s", step, a, b)
		}
	}
	lines := func(a *Api) map[string]int {
		out := map[string]int{}
		for ptr, e := range a.exprs {
			out[ptr] = e.line
		}
		return out
	}
	for i := range full.APIs {
		if !reflect.DeepEqual(lines(full.APIs[i]), lines(inc.APIs[i])) {
			t.Fatalf("%s: %s: line table differs", step, full.APIs[i].ID())
		}
	}
}

func write(t *testing.T, dir, rel, body string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every kind of change a reload can meet, one after the other: after each,
// Reload (from the previous Reload) equals a full Load, findings included.
func TestReloadEqualsLoad(t *testing.T) {
	dir := baseRepo(t)
	copyFile(filepath.Join("testdata", "good", "api-rpc-descriptor-set.good.yaml"), filepath.Join(dir, "apis", "rpc.yaml"))
	steps := []struct {
		name string
		edit func()
	}{
		{"nothing", func() {}},
		{"an API's field", func() {
			write(t, dir, "apis/base.echo.yaml", strings.Replace(read(t, dir, "apis/base.echo.yaml"), "status: online", "status: deprecated", 1))
		}},
		{"a call through the portal to the deprecated API", func() {
			write(t, dir, "apis/caller.yaml", `apiVersion: databus/v1
kind: Api
code: fx.caller
version: v1
status: online
methods: [POST]
policies: {rateLimit: base-standard}
steps:
  - {id: start, type: start}
  - id: call
    type: http
    http: {url: 'http://127.0.0.1:1/api/portal/base.echo/v1'}
  - {id: end, type: end}
`)
		}},
		{"a duplicate API in another file", func() {
			write(t, dir, "apis/zz-dup.yaml", read(t, dir, "apis/base.calc.yaml"))
		}},
		{"the duplicate removed", func() { os.Remove(filepath.Join(dir, "apis", "zz-dup.yaml")) }},
		{"a policy an API names removed", func() { os.Remove(filepath.Join(dir, "policies", "base-strict.yaml")) }},
		{"the policy back", func() {
			copyFile(filepath.Join("testdata", "base", "policies", "base-strict.yaml"), filepath.Join(dir, "policies", "base-strict.yaml"))
		}},
		{"a credential with a secret in the repository", func() {
			write(t, dir, "secrets/gamma.key", "0123456789abcdef\n")
			write(t, dir, "credentials/gamma.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: fx-gamma\nencryptionKey: {secretRef: 'file:secrets/gamma.key'}\n")
		}},
		{"the secret file removed", func() { os.Remove(filepath.Join(dir, "secrets", "gamma.key")) }},
		{"the secret file back", func() { write(t, dir, "secrets/gamma.key", "fedcba9876543210\n") }},
		{"an API restricted to a disabled credential", func() {
			write(t, dir, "credentials/gamma.yaml", "apiVersion: databus/v1\nkind: Credential\nappId: fx-gamma\nenabled: false\nencryptionKey: {secretRef: 'file:secrets/gamma.key'}\n")
			write(t, dir, "apis/base.calc.yaml", strings.Replace(read(t, dir, "apis/base.calc.yaml"), "policies:", "auth: {credentials: [fx-gamma, fx-nobody]}\npolicies:", 1))
		}},
		{"the descriptor set changed", func() {
			copyFile(filepath.Join("testdata", "base", "protos", "ticker.binpb"), filepath.Join(dir, "protos", "inventory.binpb"))
		}},
		{"the descriptor set back", func() {
			copyFile(filepath.Join("testdata", "base", "protos", "inventory.binpb"), filepath.Join(dir, "protos", "inventory.binpb"))
		}},
		{"the settings: security off (policies' default keys change)", func() {
			write(t, dir, "databus.yaml", strings.Replace(read(t, dir, "databus.yaml"), "enabled: true", "enabled: false", 1))
		}},
		{"the hooks server and party (site steps read them)", func() {
			write(t, dir, "databus.yaml", read(t, dir, "databus.yaml")+"hooks: {server: fate, partyId: '9999'}\n")
		}},
		{"a syntax error", func() { write(t, dir, "apis/base.echo.yaml", "code: [\n") }},
		{"a file that is not YAML any more", func() {
			os.Rename(filepath.Join(dir, "apis", "base.echo.yaml"), filepath.Join(dir, "apis", "base.echo.txt"))
		}},
		{"the settings removed", func() { os.Remove(filepath.Join(dir, "databus.yaml")) }},
		{"the settings back", func() {
			copyFile(filepath.Join("testdata", "base", "databus.yaml"), filepath.Join(dir, "databus.yaml"))
		}},
	}
	prev, diags, err := Reload(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameAsLoad(t, "first", dir, prev, diags)
	for _, s := range steps {
		s.edit()
		repo, diags, err := Reload(dir, prev)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		sameAsLoad(t, s.name, dir, repo, diags)
		prev = repo
	}
}

// Random runs of fixtures added, changed and removed: Reload equals Load
// after every change.
func TestReloadEqualsLoadRandom(t *testing.T) {
	var names []string
	for _, folder := range []string{"good", "bad"} {
		entries, _ := os.ReadDir(filepath.Join("testdata", folder))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".yaml") {
				names = append(names, folder+"/"+e.Name())
			}
		}
	}
	sort.Strings(names)
	rng := rand.New(rand.NewPCG(17, 1))
	dir := baseRepo(t)
	prev, _, _ := Reload(dir, nil)
	placed := map[string]string{} // fixture -> rel
	for i := 0; i < 60; i++ {
		name := names[rng.IntN(len(names))]
		folder, file, _ := strings.Cut(name, "/")
		rel := fixtureTarget(t, file)
		if rel == SettingsFile && rng.IntN(3) > 0 {
			continue // the settings less often: each change re-checks everything
		}
		switch cur, ok := placed[name]; {
		case ok && rng.IntN(2) == 0:
			os.Remove(filepath.Join(dir, filepath.FromSlash(cur)))
			delete(placed, name)
		case ok:
			write(t, dir, cur, read(t, dir, cur)+"# edited\n")
		default:
			if err := copyFile(filepath.Join("testdata", folder, file), filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
				t.Fatal(err)
			}
			placed[name] = rel
		}
		repo, diags, err := Reload(dir, prev)
		if err != nil {
			t.Fatal(err)
		}
		sameAsLoad(t, name, dir, repo, diags)
		prev = repo
	}
}

// A reload reads only the files whose metadata changed and parses only
// the documents whose bytes changed; the others are the same objects.
func TestReloadReadsAndParsesOnlyWhatChanged(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour // trust metadata however fresh the files
	dir := baseRepo(t)
	first, _, _ := Reload(dir, nil)
	if first.Loaded.Parsed != first.Loaded.Files || first.Loaded.Read < first.Loaded.Files {
		t.Fatalf("first load: %+v", first.Loaded)
	}
	same, _, _ := Reload(dir, first)
	if same.Loaded.Read != 1 || same.Loaded.Parsed != 1 { // the settings are always read and parsed
		t.Fatalf("nothing changed: %+v", same.Loaded)
	}
	if same.Hash != first.Hash {
		t.Fatal("hash changed")
	}
	for i := range first.APIs {
		if first.APIs[i] != same.APIs[i] {
			t.Fatalf("%s parsed again", first.APIs[i].ID())
		}
	}
	// Same bytes written again: read (new metadata), not parsed.
	write(t, dir, "apis/base.calc.yaml", read(t, dir, "apis/base.calc.yaml"))
	again, _, _ := Reload(dir, same)
	if again.Loaded.Read != 2 || again.Loaded.Parsed != 1 || again.Hash != first.Hash {
		t.Fatalf("same bytes rewritten: %+v", again.Loaded)
	}
	// One file changed: read and parsed, the others kept.
	write(t, dir, "apis/base.calc.yaml", strings.Replace(read(t, dir, "apis/base.calc.yaml"), "Adds two numbers", "Adds", 1))
	edited, diags, _ := Reload(dir, again)
	if edited.Loaded.Read != 2 || edited.Loaded.Parsed != 2 || edited.Hash == first.Hash {
		t.Fatalf("one file changed: %+v", edited.Loaded)
	}
	sameAsLoad(t, "one file changed", dir, edited, diags)
	if edited.API("base.calc", "v1") == again.API("base.calc", "v1") || edited.API("base.echo", "v1") != again.API("base.echo", "v1") {
		t.Fatal("the changed API was reused, or the unchanged one parsed again")
	}
	// A setting no document's checks read: the settings parsed, no
	// document.
	write(t, dir, "databus.yaml", read(t, dir, "databus.yaml")+"gateway: {webClient: {timeout: 9s}}\n")
	timeout, diags, _ := Reload(dir, edited)
	if timeout.Loaded.Parsed != 1 || timeout.API("base.echo", "v1") != edited.API("base.echo", "v1") {
		t.Fatalf("a setting no document reads: %+v", timeout.Loaded)
	}
	sameAsLoad(t, "a setting no document reads", dir, timeout, diags)
	edited = timeout
	// A tool that restores the modification time after a same-size write
	// is still seen: the change time moved.
	p := filepath.Join(dir, "apis", "base.echo.yaml")
	st, _ := os.Stat(p)
	body := read(t, dir, "apis/base.echo.yaml")
	write(t, dir, "apis/base.echo.yaml", strings.Replace(body, "online", "ONLINE", 1))
	os.Chtimes(p, st.ModTime(), st.ModTime())
	sneaky, diags, _ := Reload(dir, edited)
	if sneaky.Hash == edited.Hash || !diags.HasErrors() {
		t.Fatalf("a same-size write with its modification time restored went unseen: %+v", sneaky.Loaded)
	}
}

// A Cache keeps the latest load of its folder, refused ones included, and
// is left as it was by a load of another folder.
func TestCacheFollowsItsFolder(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir := baseRepo(t)
	var c Cache
	first, _, _ := c.Load(dir)
	write(t, dir, "apis/base.calc.yaml", "code: [\n")
	if _, diags, _ := c.Load(dir); !diags.HasErrors() {
		t.Fatal("a broken file went unseen")
	}
	other := baseRepo(t)
	if o, _, _ := c.Load(other); o.API("base.echo", "v1") != first.API("base.echo", "v1") {
		t.Fatal("another folder's identical document was parsed again")
	}
	copyFile(filepath.Join("testdata", "base", "apis", "base.calc.yaml"), filepath.Join(dir, "apis", "base.calc.yaml"))
	fixed, diags, _ := c.Load(dir)
	if fixed.Loaded.Read != 2 || fixed.Loaded.Parsed != 2 || diags.HasErrors() {
		t.Fatalf("after the fix: %+v %v (want the settings and the fixed file only)", fixed.Loaded, diags)
	}
	if fixed.API("base.echo", "v1") != first.API("base.echo", "v1") {
		t.Fatal("an unchanged document was parsed again")
	}
}

// Told which files changed, a load looks at those only (and at the
// settings): added, changed and removed files are seen; the others are
// not even listed. A folder among the changes means a full walk.
func TestLoadChangedLooksAtTheChangedFilesOnly(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir := baseRepo(t)
	var c Cache
	c.Load(dir)
	write(t, dir, "apis/base.calc.yaml", strings.Replace(read(t, dir, "apis/base.calc.yaml"), "Adds two numbers", "Adds", 1))
	write(t, dir, "policies/extra.yaml", "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: extra\n")
	os.Remove(filepath.Join(dir, "policies", "base-standard.yaml"))
	repo, diags, err := c.LoadChanged(dir, []string{"apis/base.calc.yaml", "policies/extra.yaml", "policies/base-standard.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	sameAsLoad(t, "told", dir, repo, diags)
	if repo.Loaded.Read != 3 || repo.Loaded.Parsed != 3 {
		t.Fatalf("want the settings and the two files read and parsed: %+v", repo.Loaded)
	}
	// A change the watcher did not report is not looked for...
	write(t, dir, "apis/base.echo.yaml", read(t, dir, "apis/base.echo.yaml")+"# unseen\n")
	quiet, _, _ := c.LoadChanged(dir, []string{})
	if quiet.Hash != repo.Hash || quiet.Loaded.Read != 1 {
		t.Fatalf("an empty change list looked at files: %+v", quiet.Loaded)
	}
	// ...and nil (unknown) looks at every file.
	full, diags, _ := c.LoadChanged(dir, nil)
	sameAsLoad(t, "unknown", dir, full, diags)
	if full.Hash == repo.Hash {
		t.Fatal("a full look missed a change")
	}
	// A folder among the changes: walked again.
	write(t, dir, "apis/team/new.yaml", strings.Replace(read(t, dir, "apis/base.calc.yaml"), "code: base.calc", "code: team.new", 1))
	walked, diags, _ := c.LoadChanged(dir, []string{"apis/team"})
	sameAsLoad(t, "a new folder", dir, walked, diags)
	if walked.API("team.new", "v1") == nil {
		t.Fatal("the new folder's file was not found")
	}
}

// A gateway's reloads and a git-sync check of another folder load through
// one Cache at once, while files change: every load equals a full Load of
// what it read, and the race detector finds nothing shared unsafely.
func TestCacheConcurrentLoads(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir, other := baseRepo(t), baseRepo(t)
	var c Cache
	c.Load(dir)
	done := make(chan struct{})
	errs := make(chan error, 3)
	go func() { // git sync: another folder, through the same cache
		defer func() { errs <- nil }()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, _, err := c.Load(other); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := 0; i < 30; i++ {
		rel := "policies/base-standard.yaml"
		write(t, dir, rel, read(t, dir, rel)+"# edit\n")
		changed := []string{rel}
		if i%3 == 0 {
			changed = nil
		}
		repo, diags, err := c.LoadChanged(dir, changed)
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			sameAsLoad(t, "concurrent", dir, repo, diags)
		}
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// A secret file databus.yaml names is not in the content hash: when it
// appears (or goes), a load that reuses every document still reports what
// a full Load does.
func TestCacheSeesASettingsSecretAppear(t *testing.T) {
	dir := baseRepo(t)
	write(t, dir, "databus.yaml", strings.Replace(read(t, dir, "databus.yaml"), "'env:FX_JWT_KEY'", "'file:secrets/jwt.key'", 1))
	var c Cache
	_, d1, _ := c.Load(dir)
	if !d1.HasErrors() {
		t.Fatalf("want missing-secret error first: %s", dump(d1))
	}
	write(t, dir, "secrets/jwt.key", "0123456789abcdef0123456789abcdef\n")
	repo, d2, _ := c.Load(dir) // nil changed: every file looked at
	_, full, _ := Load(dir)
	if full.HasErrors() {
		t.Fatalf("full Load has errors: %s", dump(full))
	}
	if d2.HasErrors() {
		t.Fatalf("the secret file exists now, Load is clean, Cache.Load still says:\n%s\n(parsed %+v)", dump(d2), repo.Loaded)
	}
}

// The same when the secret file goes.
func TestReloadSeesASettingsSecretGo(t *testing.T) {
	dir := baseRepo(t)
	write(t, dir, "databus.yaml", strings.Replace(read(t, dir, "databus.yaml"), "'env:FX_JWT_KEY'", "'file:secrets/jwt.key'", 1))
	write(t, dir, "secrets/jwt.key", "0123456789abcdef0123456789abcdef\n")
	prev, d1, _ := Reload(dir, nil)
	if d1.HasErrors() {
		t.Fatal(dump(d1))
	}
	os.Remove(filepath.Join(dir, "secrets", "jwt.key"))
	_, d2, _ := Reload(dir, prev)
	_, full, _ := Load(dir)
	if !full.HasErrors() {
		t.Fatal("full Load should error")
	}
	if !d2.HasErrors() {
		t.Fatalf("secret removed, Load errors, Reload clean:\n%s", dump(d2))
	}
}

// A load through the Cache of another folder with the same bytes is of that
// folder, not the cached one.
func TestCacheLoadOfAnotherFolderIsThatFolder(t *testing.T) {
	a := baseRepo(t)
	b := baseRepo(t)
	var c Cache
	c.Load(a)
	rb, _, _ := c.Load(b)
	absB, _ := filepath.Abs(b)
	if rb.Dir != absB {
		t.Fatalf("loaded %s, Repository.Dir = %s", absB, rb.Dir)
	}
}

// A folder named like a YAML file, moved away and named by the watcher:
// its files go too (the load walks again).
func TestLoadChangedFolderNamedLikeAFile(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir := baseRepo(t)
	write(t, dir, "apis/team.yaml/new.yaml", strings.Replace(read(t, dir, "apis/base.calc.yaml"), "code: base.calc", "code: team.new", 1))
	var c Cache
	r1, _, _ := c.Load(dir)
	if r1.API("team.new", "v1") == nil {
		t.Fatal("setup")
	}
	os.Rename(filepath.Join(dir, "apis", "team.yaml"), filepath.Join(t.TempDir(), "gone"))
	r2, d2, _ := c.LoadChanged(dir, []string{"apis/team.yaml"})
	full, fd, _ := Load(dir)
	t.Logf("full: api=%v diags=%d; changed: api=%v diags=%s", full.API("team.new", "v1") != nil, len(fd), r2.API("team.new", "v1") != nil, dump(d2))
	if r2.API("team.new", "v1") != nil {
		t.Fatal("the API of the moved folder is still served")
	}
}

// A git-sync check of a revision's tree that lacks the settings' secret
// file finds the error a full Load finds.
func TestCacheLoadOfAnotherFolderChecksItsSecrets(t *testing.T) {
	a := baseRepo(t)
	write(t, a, "databus.yaml", strings.Replace(read(t, a, "databus.yaml"), "'env:FX_JWT_KEY'", "'file:secrets/jwt.key'", 1))
	write(t, a, "secrets/jwt.key", "0123456789abcdef0123456789abcdef\n")
	b := baseRepo(t)
	write(t, b, "databus.yaml", read(t, a, "databus.yaml"))
	var c Cache
	c.Load(a)
	rb, db, _ := c.Load(b)
	_, full, _ := Load(b)
	t.Logf("full Load(b) errors=%v; Cache.Load(b) errors=%v Dir=%s", full.HasErrors(), db.HasErrors(), rb.Dir)
	if full.HasErrors() != db.HasErrors() {
		t.Fatal("Cache.Load of another folder differs from Load")
	}
}

// A file reached through a symlink can change without an event in its
// folder: while one is listed, a watcher's list of changed files is not
// trusted and every file is looked at.
func TestLoadChangedLooksEverywhereWithSymlinks(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir := baseRepo(t)
	outside := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(outside, []byte("apiVersion: databus/v1\nkind: RateLimitPolicy\nname: linked\nlimit: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "policies", "linked.yaml")); err != nil {
		t.Fatal(err)
	}
	var c Cache
	first, _, _ := c.Load(dir)
	if p := first.Policy("linked"); p == nil || p.Limit != 5 {
		t.Fatal("the linked policy was not loaded")
	}
	if err := os.WriteFile(outside, []byte("apiVersion: databus/v1\nkind: RateLimitPolicy\nname: linked\nlimit: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo, diags, _ := c.LoadChanged(dir, []string{})
	sameAsLoad(t, "a linked file changed", dir, repo, diags)
	if repo.Policy("linked").Limit != 7 {
		t.Fatal("the change behind the symlink went unseen")
	}
}

// A load of the cache's folder that fails loses what the watcher named:
// the next load looks at every file.
func TestCacheAfterAFailedLoadLooksEverywhere(t *testing.T) {
	defer func(w time.Duration) { racyWindow = w }(racyWindow)
	racyWindow = -time.Hour
	dir := baseRepo(t)
	var c Cache
	c.Load(dir)
	hidden := dir + ".away"
	if err := os.Rename(dir, hidden); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.LoadChanged(dir, []string{"apis/base.calc.yaml"}); err == nil {
		t.Fatal("a missing folder loaded")
	}
	if err := os.Rename(hidden, dir); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "apis/base.echo.yaml", read(t, dir, "apis/base.echo.yaml")+"# changed while the load failed\n")
	repo, diags, _ := c.LoadChanged(dir, []string{})
	sameAsLoad(t, "after a failed load", dir, repo, diags)
}
