package gate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/config/configtest"
	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// repoWith copies engine/config's base test repository and writes files
// (repository-relative path -> content) over it.
func repoWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "config", "testdata", "base"))); err != nil {
		t.Fatal(err)
	}
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "bad", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The faults only a build finds (the loader lets them through) are
// positioned like the loader's own findings, and a live build finds exactly
// what a dry one does, leaving the pool as it was.
func TestBuildFaultsPositioned(t *testing.T) {
	for _, tc := range []struct {
		fixture, target string
		at, path, msg   string
	}{
		{"api-script-top-level-throws.bad.yaml", "apis/t.yaml", "apis/t.yaml:14:15", "steps[1].script.source", "script top level throws: Error: weights are not loaded"},
		{"api-script-main-not-function.bad.yaml", "apis/t.yaml", "apis/t.yaml:11:22", "steps[1].script.source", "script must define a function main(ctx)"},
		{"api-script-top-level-loop.bad.yaml", "apis/t.yaml", "apis/t.yaml:", "steps[1].script.source", "script top level did not finish within 1s"},
		{"settings-redis-password-unresolved.bad.yaml", "databus.yaml", "databus.yaml:5:13", "redis.password", "environment variable DATABUS_GATE_TEST_UNSET_PASSWORD is not set"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := repoWith(t, map[string]string{tc.target: fixture(t, tc.fixture)})
			_, dry, err := Check(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			errs := dry.Errors()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].String(), tc.at) || errs[0].Path != tc.path || !strings.Contains(errs[0].Message, tc.msg) {
				t.Fatalf("dry build: %v\nwant one error at %s %s: %s", errs, tc.at, tc.path, tc.msg)
			}
			p := pool.New()
			live := Build(context.Background(), dir, Options{Mode: Live, Pool: p})
			if live.Snapshot != nil || live.Diagnostics.Errors().Error() != errs.Error() {
				t.Errorf("live build: %v, want the dry build's %v", live.Diagnostics.Errors(), errs)
			}
			if keys := p.Keys(); len(keys) != 0 {
				t.Errorf("a refused build left %v in the pool", keys)
			}
		})
	}
}

func TestDryBuildAcquiresNothing(t *testing.T) {
	dir := repoWith(t, map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\nredis: {addr: '127.0.0.1:1'}\n"})
	r := Build(context.Background(), dir, Options{Mode: Dry})
	if !r.OK() || r.Snapshot == nil {
		t.Fatalf("dry build: %v %v", r.Err, r.Diagnostics)
	}
	if r.Snapshot.Nonces != nil || r.Snapshot.Limits != nil || r.Snapshot.Env.Client != nil || r.Snapshot.Env.RPC != nil || r.Snapshot.Lease() != nil {
		t.Error("a dry build holds live resources")
	}
}

func TestLiveBuildSharesAndReleases(t *testing.T) {
	dir := repoWith(t, nil)
	p := pool.New()
	var h snapshot.Holder
	first := Build(context.Background(), dir, Options{Mode: Live, Pool: p})
	if !first.OK() {
		t.Fatal(first.Diagnostics)
	}
	h.Swap(first.Snapshot)
	want := []string{"grpc", "http:pool=true,maxIdle=256", "jq", "memory"}
	if got := p.Keys(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pool %v, want %v", got, want)
	}
	// Unchanged content compiles nothing.
	if r := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()}); !r.Unchanged || r.Snapshot != nil {
		t.Fatalf("unchanged: %+v", r)
	}
	// A new Snapshot with another transport: the memory stores are shared
	// (nonces survive a reload); the old transport goes with the last
	// request of the old Snapshot.
	if err := os.WriteFile(filepath.Join(dir, "databus.yaml"), []byte("apiVersion: databus/v1\nkind: Settings\ngateway: {webClient: {maxIdleConnsPerHost: 8}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	next := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()})
	if !next.OK() || next.Snapshot == nil {
		t.Fatal(next.Diagnostics)
	}
	if next.Snapshot.Nonces != first.Snapshot.Nonces {
		t.Error("the embedded nonce store was not carried over")
	}
	inflight := h.Acquire()
	h.Swap(next.Snapshot)
	if p.Refs("http:pool=true,maxIdle=256") != 1 {
		t.Fatalf("the old transport was released under an in-flight request: %v", p.Keys())
	}
	inflight.Release()
	if p.Refs("http:pool=true,maxIdle=256") != 0 || p.Refs("memory") != 1 {
		t.Fatalf("after the last request of the old Snapshot: %v", p.Keys())
	}
	// A label-only copy holds its own references.
	c := h.Load().WithRevision(&revision.Revision{Hash: "abc", Short: "abc"})
	h.Swap(c)
	if p.Refs("memory") != 1 || h.Load().Git.Hash != "abc" {
		t.Fatalf("after the label swap: %v", p.Keys())
	}
	h.Close()
	if keys := p.Keys(); len(keys) != 0 {
		t.Fatalf("after Close the pool holds %v", keys)
	}
}

func TestBootSettingsRefused(t *testing.T) {
	dir := repoWith(t, map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\nstorage:\n  path: other.db\n  accessLog: {mode: sync}\n"})
	run := &Running{Boot: config.DefaultSettings().Boot()}
	r := Build(context.Background(), dir, Options{Mode: Dry, Running: run})
	got := r.Diagnostics.Errors()
	if len(got) != 2 ||
		got[0].String() != `databus.yaml:4:9: error: storage.path: storage.path is a boot setting: the gateway runs with "(the default, outside the repository)"; restart to apply "other.db"` ||
		!strings.Contains(got[1].String(), `databus.yaml:5:21: error: storage.accessLog.mode: storage.accessLog.mode is a boot setting: the gateway runs with "async"; restart to apply "sync"`) {
		t.Fatalf("got %v", got)
	}
	// A --storage flag makes storage.path the flag's: only the mode counts.
	run.StoragePathFixed = true
	if r := Build(context.Background(), dir, Options{Mode: Dry, Running: run}); len(r.Diagnostics.Errors()) != 1 {
		t.Fatalf("with --storage: %v", r.Diagnostics)
	}
	// telemetry is read at start too (DESIGN.md section 2): a reload that
	// switches tracing on, or changes a key of it, is refused at the key.
	tdir := repoWith(t, map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\ntelemetry:\n  otlp:\n    endpoint: 127.0.0.1:4317\n    sampleRatio: 0.5\n"})
	tr := Build(context.Background(), tdir, Options{Mode: Dry, Running: &Running{Boot: config.DefaultSettings().Boot()}})
	terr := tr.Diagnostics.Errors()
	if len(terr) != 2 ||
		terr[0].String() != `databus.yaml:5:15: error: telemetry.otlp.endpoint: telemetry.otlp.endpoint is a boot setting: the gateway runs with ""; restart to apply "127.0.0.1:4317"` ||
		!strings.Contains(terr[1].String(), `telemetry.otlp.sampleRatio is a boot setting: the gateway runs with "1"; restart to apply "0.5"`) {
		t.Fatalf("telemetry changed: %v", terr)
	}
	// The same telemetry as at start reloads.
	loaded, _, _ := Check(context.Background(), tdir)
	if r := Build(context.Background(), tdir, Options{Mode: Dry, Running: &Running{Boot: loaded.Settings.Boot()}}); r.Diagnostics.HasErrors() {
		t.Fatalf("unchanged telemetry: %v", r.Diagnostics)
	}
	// Validate compares with nothing.
	if _, diags, _ := Check(context.Background(), dir); diags.HasErrors() {
		t.Fatalf("validate: %v", diags)
	}
}

func TestAdminListenerOffLoopbackNeedsToken(t *testing.T) {
	t.Setenv("DATABUS_GATE_TEST_TOKEN", "a-token-long-enough")
	noTokens := repoWith(t, nil)
	unresolved := repoWith(t, map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\nadmin:\n  tokens:\n    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_GATE_TEST_UNSET'}}\n"})
	token := repoWith(t, map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\nadmin:\n  tokens:\n    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_GATE_TEST_TOKEN'}}\n"})
	for _, tc := range []struct {
		dir, addr string
		ok        bool
		msg       string
	}{
		{noTokens, "", true, ""},
		{noTokens, "127.0.0.1:8081", true, ""},
		{noTokens, "0.0.0.0:8081", false, "databus.yaml:2:1: error: admin.tokens: the admin listener 0.0.0.0:8081 is not on loopback"},
		{unresolved, "0.0.0.0:8081", false, "databus.yaml:5:5: error: admin.tokens: the admin listener 0.0.0.0:8081 is not on loopback: admin.tokens needs at least one token whose secret resolves (or bind it to loopback, e.g. --admin-listen 127.0.0.1:8081); unresolved: ops: "},
		{token, "0.0.0.0:8081", true, ""},
	} {
		r := Build(context.Background(), tc.dir, Options{Mode: Dry, AdminListen: tc.addr})
		if r.OK() != tc.ok || !tc.ok && !strings.HasPrefix(r.Diagnostics.Errors()[0].String(), tc.msg) {
			t.Errorf("%s on %q: %v, want ok=%v %s", filepath.Base(filepath.Dir(tc.dir)), tc.addr, r.Diagnostics, tc.ok, tc.msg)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "127.1.2.3:8081": true, "[::1]:8081": true, "localhost:8081": true,
		"0.0.0.0:8081": false, "[::]:8081": false, ":8081": false, "10.1.2.3:8081": false,
		"example.com:8081": false, "8081": false,
	} {
		if Loopback(addr) != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, !want, want)
		}
	}
}

func TestMissingSettingsFile(t *testing.T) {
	dir := repoWith(t, map[string]string{"config/databus.yaml": "apiVersion: databus/v1\nkind: Settings\n"})
	if err := os.Remove(filepath.Join(dir, "databus.yaml")); err != nil {
		t.Fatal(err)
	}
	_, diags, err := Check(context.Background(), dir)
	if err != nil || len(diags.Errors()) != 1 {
		t.Fatalf("%v %v", err, diags)
	}
	d := diags.Errors()[0]
	if d.File != "databus.yaml" || !strings.Contains(d.Message, "is not a Databus config repository") || !strings.Contains(d.Message, "config/databus.yaml exists") {
		t.Errorf("got %s", d)
	}
}

func TestDraftThroughTheGate(t *testing.T) {
	dir := repoWith(t, nil)
	r := Build(context.Background(), dir, Options{Mode: Dry})
	if !r.OK() {
		t.Fatal(r.Diagnostics)
	}
	src := fixture(t, "api-script-top-level-throws.bad.yaml")
	f, _, diags := Draft(r.Snapshot, "draft.yaml", []byte(src))
	if f != nil || len(diags.Errors()) != 1 || diags.Errors()[0].String() != "apis/draft.yaml:14:15: error: steps[1].script.source: script top level throws: Error: weights are not loaded" {
		t.Fatalf("draft: %v", diags)
	}
	ok := strings.Replace(src, `throw new Error("weights are not loaded");`, "", 1)
	if f, api, diags := Draft(r.Snapshot, "draft.yaml", []byte(ok)); f == nil || api.Code != "gate.throws" || diags.HasErrors() {
		t.Fatalf("a valid draft: %v", diags)
	}
}

// BenchmarkGateLargeRepo is validate's dry build of 1,000 APIs (every flow
// compiled, every script's top level run), beside the loader alone
// (engine/config BenchmarkValidateLargeRepo) measured in the same run.
func BenchmarkGateLargeRepo(b *testing.B) {
	dir := b.TempDir()
	configtest.WriteLargeRepo(b, dir, 1000, 200, 50)
	b.Run("load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, diags, err := config.Load(dir); err != nil || diags.HasErrors() {
				b.Fatal(err, diags)
			}
		}
	})
	b.Run("gate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, diags, err := Check(context.Background(), dir); err != nil || diags.HasErrors() {
				b.Fatal(err, diags)
			}
		}
	})
}

// BenchmarkGateUnchanged is a reload that finds the same bytes (an editor
// saving without a change, a touch, SIGHUP): 1,000 APIs.
func BenchmarkGateUnchanged(b *testing.B) {
	dir := b.TempDir()
	configtest.WriteLargeRepo(b, dir, 1000, 200, 50)
	first := Build(context.Background(), dir, Options{Mode: Dry})
	if !first.OK() {
		b.Fatal(first.Diagnostics)
	}
	b.Run("full load", func(b *testing.B) {
		for b.Loop() {
			repo, _, err := config.Load(dir)
			if err != nil || repo.Hash != first.Snapshot.Revision {
				b.Fatal(err)
			}
		}
	})
	b.Run("content hash", func(b *testing.B) {
		for b.Loop() {
			if r := Build(context.Background(), dir, Options{Mode: Dry, Prev: first.Snapshot}); !r.Unchanged {
				b.Fatal("not found unchanged")
			}
		}
	})
}

// A reload of the same bytes parses nothing; one changed byte is seen.
func TestUnchangedWithoutParsing(t *testing.T) {
	dir := repoWith(t, nil)
	first := Build(context.Background(), dir, Options{Mode: Dry})
	if !first.OK() {
		t.Fatal(first.Diagnostics)
	}
	r := Build(context.Background(), dir, Options{Mode: Dry, Prev: first.Snapshot})
	if !r.Unchanged || r.Repo != first.Snapshot.Repo {
		t.Fatalf("same bytes: unchanged %v, repo reused %v", r.Unchanged, r.Repo == first.Snapshot.Repo)
	}
	p := filepath.Join(dir, "databus.yaml")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(data, []byte("# edited\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := Build(context.Background(), dir, Options{Mode: Dry, Prev: first.Snapshot}); r.Unchanged || r.Snapshot == nil {
		t.Fatalf("one byte more: %+v", r)
	}
}

// A reload compiles only the flows of the APIs that changed; a change of
// what flows are compiled with (the upstream client's settings) compiles
// them all.
func TestReloadCompilesOnlyWhatChanged(t *testing.T) {
	dir := repoWith(t, nil)
	p := pool.New()
	var h snapshot.Holder
	defer h.Close()
	first := Build(context.Background(), dir, Options{Mode: Live, Pool: p})
	if !first.OK() {
		t.Fatal(first.Diagnostics)
	}
	h.Swap(first.Snapshot)
	calc := filepath.Join(dir, "apis", "base.calc.yaml")
	data, _ := os.ReadFile(calc)
	if err := os.WriteFile(calc, []byte(strings.Replace(string(data), "Adds two numbers", "Adds", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	next := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()})
	if !next.OK() || next.Snapshot == nil {
		t.Fatal(next.Diagnostics)
	}
	n := len(next.Repo.APIs)
	if next.Snapshot.Reused != n-1 {
		t.Fatalf("reused %d flows of %d, want all but the edited one", next.Snapshot.Reused, n)
	}
	if next.Snapshot.Route("base.calc", "v1").Flow == first.Snapshot.Route("base.calc", "v1").Flow ||
		next.Snapshot.Route("base.echo", "v1").Flow != first.Snapshot.Route("base.echo", "v1").Flow {
		t.Fatal("the edited API's flow was reused, or an unchanged one compiled again")
	}
	h.Swap(next.Snapshot)
	set := filepath.Join(dir, "databus.yaml")
	data, _ = os.ReadFile(set)
	if err := os.WriteFile(set, append(data, "gateway: {webClient: {timeout: 7s}}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	third := Build(context.Background(), dir, Options{Mode: Live, Pool: p, Prev: h.Load()})
	if !third.OK() || third.Snapshot == nil {
		t.Fatal(third.Diagnostics)
	}
	if third.Repo.Loaded.Parsed != 1 || third.Snapshot.Reused != 0 {
		t.Fatalf("the default timeout changed: %d documents parsed (want the settings only), %d flows reused (want none)", third.Repo.Loaded.Parsed, third.Snapshot.Reused)
	}
	h.Swap(third.Snapshot)
}
