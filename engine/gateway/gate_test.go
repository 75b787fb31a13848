package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/internal/testredis"
)

// fixtureRepo copies engine/config's base repository and places a fixture
// file where its name's prefix says (api-, cred-, policy-, settings-), or
// overlays a fixture folder.
func fixtureRepo(t *testing.T, src string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "config", "testdata", "base"))); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	name := filepath.Base(src)
	var rel string
	switch {
	case strings.HasPrefix(name, "api-"):
		rel = "apis/" + name
	case strings.HasPrefix(name, "cred-"):
		rel = "credentials/" + name
	case strings.HasPrefix(name, "policy-"):
		rel = "policies/" + name
	case strings.HasPrefix(name, "settings-"):
		rel = "databus.yaml"
	case strings.HasPrefix(name, "test-"):
		rel = "tests/" + name
	default:
		t.Fatalf("fixture %s: unknown prefix", name)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, filepath.FromSlash(rel)), string(data))
	return dir
}

// TestServeRefusesWhatValidateRefuses drives every bad fixture (the
// loader's and the build's) through both doors: validate's dry build and
// serve. Serve refuses each with exactly validate's findings; every good
// fixture validate accepts, serve serves.
func TestServeRefusesWhatValidateRefuses(t *testing.T) {
	var bad, good []string
	for _, pattern := range []string{"../config/testdata/bad/*.bad.yaml", "../gate/testdata/bad/*.bad.yaml", "../config/testdata/bad-repos/*"} {
		m, _ := filepath.Glob(pattern)
		bad = append(bad, m...)
	}
	good, _ = filepath.Glob("../config/testdata/good/*.good.yaml")
	if len(bad) < 100 || len(good) < 10 {
		t.Fatalf("found %d bad and %d good fixtures", len(bad), len(good))
	}
	for _, src := range bad {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := fixtureRepo(t, src)
			_, diags, err := gate.Check(context.Background(), dir)
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !diags.HasErrors() {
				t.Fatalf("validate accepts a bad fixture: %v", diags)
			}
			_, err = New(Options{Dir: dir, StoragePath: filepath.Join(t.TempDir(), "d.db")})
			want := fmt.Sprintf("%v:\n%s", ErrInvalidRepository, diags.Errors().Error())
			if err == nil || err.Error() != want {
				t.Fatalf("serve: %v\nwant validate's findings:\n%s", err, want)
			}
		})
	}
	for _, src := range good {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := fixtureRepo(t, src)
			repo, diags, err := gate.Check(context.Background(), dir)
			if err != nil || diags.HasErrors() {
				t.Fatalf("validate: %v %v", err, diags)
			}
			if repo.Settings.Redis.Enabled() {
				// Its Redis addresses are examples (redis.internal, fd00::10):
				// a serving gateway would dial them. Validate's verdict is
				// the point here; the Redis path is served in the Redis tests.
				return
			}
			s, err := New(Options{Dir: dir, StoragePath: filepath.Join(t.TempDir(), "d.db")})
			if err != nil {
				t.Fatalf("serve refuses what validate accepts: %v", err)
			}
			s.Close()
			if keys := s.Pool().Keys(); len(keys) != 0 {
				t.Errorf("after Close the pool holds %v", keys)
			}
		})
	}
}

const throwingAPI = `apiVersion: databus/v1
kind: Api
code: t.throws
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {source: 'throw new Error("x"); function main(ctx) { return {} }'}
  - {id: end, type: end}
`

// A refused reload changes nothing: with the redis settings changed and an
// API whose script throws, the reload is refused, the pool holds exactly
// what it held, and signed calls (nonces in Redis) keep passing. Nothing
// in the gateway closes the serving client later: no timer guesses
// lifetimes (before the gate, its Close was scheduled a minute ahead).
func TestRefusedReloadChangesNothing(t *testing.T) {
	addr := testredis.Addr(t)
	dir, code := sharedRepo(t, addr, true, true, 1000)
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	c := signedClient(ts)
	call := func(what string) {
		t.Helper()
		resp, err := c.Call(context.Background(), code, []byte(`{}`))
		if err != nil || resp.Envelope.Code != http.StatusOK {
			t.Fatalf("%s: %v %+v", what, err, resp)
		}
	}
	call("before")
	before := strings.Join(ts.Pool().Keys(), " ")
	snap := ts.Current()
	settings, _ := os.ReadFile(filepath.Join(dir, "databus.yaml"))
	writeFile(t, filepath.Join(dir, "databus.yaml"), strings.Replace(string(settings), "timeout: 2s", "timeout: 2s\n  db: 3", 1))
	writeFile(t, filepath.Join(dir, "apis", "throws.yaml"), throwingAPI)
	res := ts.Reload(context.Background(), "test")
	if res.OK || len(res.Errors) != 1 || !strings.Contains(res.Errors[0].String(), "apis/throws.yaml:11:") ||
		!strings.Contains(res.Errors[0].Message, "script top level throws: Error: x") {
		t.Fatalf("reload: %+v", res)
	}
	if ts.Current() != snap || strings.Join(ts.Pool().Keys(), " ") != before {
		t.Fatalf("a refused reload changed the gateway: pool %v, was %s", ts.Pool().Keys(), before)
	}
	for _, k := range ts.Pool().Keys() {
		if ts.Pool().Refs(k) != 1 {
			t.Errorf("%s has %d references after the refused reload, want 1", k, ts.Pool().Refs(k))
		}
	}
	call("after the refused reload")

	// The fixed change is served: the new redis client is acquired, the
	// old one released once the old Snapshot has no request left.
	os.Remove(filepath.Join(dir, "apis", "throws.yaml"))
	if res := ts.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload: %+v", res)
	}
	after := ts.Pool().Keys()
	if strings.Join(after, " ") == before || len(after) != len(strings.Fields(before)) {
		t.Fatalf("pool after the redis change: %v (was %s)", after, before)
	}
	call("on the new redis db")
}

// A reload that changes a boot setting is refused, naming the key, and
// reported as refused (readyz, metrics): never shown as applied.
func TestBootSettingChangeRefused(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	ts := startServer(t, Options{Dir: dir, NoWatch: true})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"storage:\n  path: elsewhere.db\n  accessLog: {export: stdout}\n")
	res := ts.Reload(context.Background(), "test")
	if res.OK || len(res.Errors) != 2 ||
		res.Errors[0].String() != `databus.yaml:6:9: error: storage.path: storage.path is a boot setting: the gateway runs with "(the default, outside the repository)"; restart to apply "elsewhere.db"` ||
		!strings.Contains(res.Errors[1].String(), `storage.accessLog.export is a boot setting: the gateway runs with ""; restart to apply "stdout"`) {
		t.Fatalf("reload: %+v", res)
	}
	_, body := ts.admin("/readyz")
	last, _ := body["lastReload"].(map[string]any)
	if last == nil || last["ok"] != false || !strings.Contains(fmt.Sprint(last["errors"]), "restart to apply") {
		t.Errorf("readyz lastReload: %v", body["lastReload"])
	}
	if got := ts.Current().Settings.Storage.Path; got != "" {
		t.Errorf("serving storage.path %q", got)
	}
	if v := metricValue(ts.metricFamilies(t), "databus_config_last_reload_success", map[string]string{}); v != 0 {
		t.Errorf("databus_config_last_reload_success = %v after a refused reload", v)
	}
}

// With the admin listener off loopback, a change that removes the last
// token is refused, and the old token keeps guarding the listener.
func TestRemovingLastAdminTokenRefused(t *testing.T) {
	t.Setenv("DATABUS_TEST_ADMIN_TOKEN", "s3cret-s3cret-s3cret")
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+"admin:\n  tokens:\n    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_TEST_ADMIN_TOKEN'}}\n")
	// The check reads the configured address; the test serves on its
	// own loopback listeners.
	ts := startServer(t, Options{Dir: dir, AdminListen: "0.0.0.0:8081"})
	prev := ts.LastReload()
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings)
	r := waitReload(t, ts.Server, prev, "the token removal refused", func(r *ReloadResult) bool { return !r.OK })
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Message, "the admin listener 0.0.0.0:8081 is not on loopback") {
		t.Fatalf("reload: %+v", r)
	}
	get := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.adminURL+"/databus/gateway/credential/page", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(""); st != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", st)
	}
	if st := get("s3cret-s3cret-s3cret"); st != http.StatusOK {
		t.Errorf("with the old token: %d, want 200", st)
	}
}

// Deleting databus.yaml is refused: the denied IP stays denied.
func TestDeletedSettingsFileRefused(t *testing.T) {
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  deniedIps: [127.0.0.1/32]\n  security: {enabled: false}\n")
	ts := startServer(t, Options{Dir: dir})
	if env, err := ts.call("t.one"); err != nil || env.Code != http.StatusForbidden {
		t.Fatalf("before: %v %+v", err, env)
	}
	prev := ts.LastReload()
	if err := os.Rename(filepath.Join(dir, "databus.yaml"), filepath.Join(filepath.Dir(dir), "databus.yaml")); err != nil {
		t.Fatal(err)
	}
	r := waitReload(t, ts.Server, prev, "the deletion refused", func(r *ReloadResult) bool { return !r.OK })
	if len(r.Errors) != 1 || r.Errors[0].File != config.SettingsFile || !strings.Contains(r.Errors[0].Message, "is not a Databus config repository") {
		t.Fatalf("reload: %+v", r)
	}
	if env, err := ts.call("t.one"); err != nil || env.Code != http.StatusForbidden {
		t.Fatalf("after the deletion: %v %+v, want 403", err, env)
	}
}

// A commit of the content already served (git commit -am after serving a
// dirty tree) updates the revision label: readyz and databus_config_info.
func TestRevisionLabelFollowsCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed")
	}
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "one")
	writeFile(t, filepath.Join(dir, "apis", "one.yaml"), scriptAPI("t.one", "online", "two"))
	ts := startServer(t, Options{Dir: dir})
	ts.expectValue(t, "t.one", "two")
	if g := ts.Current().Git; g == nil || !g.Dirty {
		t.Fatalf("serving a dirty tree: %+v", g)
	}
	snap := ts.Current()
	git("commit", "-q", "-am", "two")
	head := git("rev-parse", "--short=7", "HEAD")
	waitFor(t, pollTimeout, "the label "+head, func() bool {
		_, body := ts.admin("/readyz")
		g, _ := body["git"].(map[string]any)
		return g != nil && g["short"] == head && g["dirty"] == false
	})
	if v := metricValue(ts.metricFamilies(t), "databus_config_info", map[string]string{"revision": head}); v != 1 {
		t.Errorf("databus_config_info{revision=%q} = %v", head, v)
	}
	if cur := ts.Current(); cur.Revision != snap.Revision {
		t.Errorf("the content hash changed: %s -> %s", snap.Revision, cur.Revision)
	}
	// The label copy shares the compiled flows.
	if ts.Current().Route("t.one", "v1").Flow != snap.Route("t.one", "v1").Flow {
		t.Error("the label change compiled the flows again")
	}
}
