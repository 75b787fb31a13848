package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/config/configtest"
	"github.com/databus-gateway/databus/engine/gateway"
)

// TestGenRepoLoads: the generated repository passes the loader with no
// finding, and has the shape the scale bench describes.
func TestGenRepoLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := genRepo(dir, 150, "127.0.0.1:18091"); err != nil {
		t.Fatal(err)
	}
	repo, diags, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 0 {
		t.Fatalf("want no findings, got:\n%v", diags)
	}
	if len(repo.APIs) != 150 || len(repo.Policies) != 150 || len(repo.Credentials) != 2 {
		t.Fatalf("loaded %d APIs, %d policies, %d credentials; want 150, 150, 2", len(repo.APIs), len(repo.Policies), len(repo.Credentials))
	}
	if p := repo.Settings.APIPortal; !*p.Security.Enabled || !*p.EnableRateLimit {
		t.Errorf("security and rate limits must be on: %+v", repo.Settings.APIPortal)
	}
	last := repo.API(configtest.ScaleAPI(149), "v1")
	if last == nil {
		t.Fatalf("no API %s", configtest.ScaleAPI(149))
	}
	if last.Policies.RateLimit != configtest.ScalePolicy(149) {
		t.Errorf("%s: rate policy %q, want its own %q", last.Code, last.Policies.RateLimit, configtest.ScalePolicy(149))
	}
	if got := last.Auth.Credentials; len(got) != 1 || got[0] != configtest.ScaleApp(1) {
		t.Errorf("%s: credentials %v, want [%s]", last.Code, got, configtest.ScaleApp(1))
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(configtest.ScaleAPIFile(149)))); err != nil {
		t.Errorf("the edit reload's file: %v", err)
	}
}

func TestGenRepoRefuses(t *testing.T) {
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	for _, tc := range []struct {
		name, dir, upstream string
		n                   int
		want                string
	}{
		{"no APIs", filepath.Join(t.TempDir(), "r"), "127.0.0.1:1", 0, "expected 1 to 99999"},
		{"too many", filepath.Join(t.TempDir(), "r"), "127.0.0.1:1", 100000, "expected 1 to 99999"},
		{"URL for upstream", filepath.Join(t.TempDir(), "r"), "http://127.0.0.1:1", 3, "expected host:port"},
		{"not empty", full, "127.0.0.1:1", 3, "is not empty"},
	} {
		if err := genRepo(tc.dir, tc.n, tc.upstream); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestScaleReport reads a recorded run (N=100 whole, N=1,000 cut short
// after validate) and compares the table with the golden file.
func TestScaleReport(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "testdata/scale", dir)
	var out bytes.Buffer
	if err := scaleReportDir(dir, &out); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), dir, "DIR")
	golden := "testdata/scale.golden"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("table differs from %s (go test -update to accept):\n%s", golden, got)
	}

	var rep scaleReport
	b, err := os.ReadFile(filepath.Join(dir, "scale.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].N != 100 || rep.Rows[1].N != 1000 {
		t.Fatalf("rows: %+v", rep.Rows)
	}
	r := rep.Rows[0]
	if r.Edit == nil || r.Edit.Observed.N != 3 || !r.Edit.Changed || r.Same == nil || r.Same.Changed {
		t.Errorf("reloads: edit %+v same %+v", r.Edit, r.Same)
	}
	if l := r.Load; l == nil || l.RPSRatio != l.DuringRPS/l.ControlRPS || l.P99Ratio != l.DuringP99/l.ControlP99 || l.Reloads == 0 {
		t.Errorf("load: %+v", r.Load)
	}
	if rep.Rows[1].Edit != nil || rep.Rows[1].Load != nil || rep.Rows[1].ValidateMs != 5312.5 {
		t.Errorf("the cut-short size: %+v", rep.Rows[1])
	}
}

func TestScaleReportEmpty(t *testing.T) {
	if err := scaleReportDir(t.TempDir(), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no sizes") {
		t.Fatalf("err = %v", err)
	}
}

func TestWall(t *testing.T) {
	for _, tc := range []struct {
		ms   float64
		want string
	}{
		{0.5, "0.50 ms"}, {54.4, "54 ms"}, {999.4, "999 ms"}, {680, "680 ms"},
		{5300, "5.30 s"}, {52700, "52.7 s"},
	} {
		if got := wall(tc.ms); got != tc.want {
			t.Errorf("wall(%v) = %q, want %q", tc.ms, got, tc.want)
		}
	}
	if got := wallBare(7000, 7900) + "–" + wall(7900); got != "7.00–7.90 s" {
		t.Errorf("range = %q", got)
	}
	if got := thousands(10000); got != "10,000" {
		t.Errorf("thousands(10000) = %q", got)
	}
}

// TestReloadObserved drives a real gateway (file watcher on) over a small
// generated repository: an edit is seen as a changed revision, a rewrite
// of the same bytes as an unchanged reload, and cache/refresh answers the
// gateway's own figures.
func TestReloadObserved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	if err := genRepo(dir, 3, "127.0.0.1:18091"); err != nil {
		t.Fatal(err)
	}
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Options{Dir: dir, Listen: portalLn.Addr().String(), AdminListen: adminLn.Addr().String(),
		StoragePath: filepath.Join(t.TempDir(), "db"), Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	admin := "http://" + adminLn.Addr().String()
	if err := readyAt(admin+"/readyz", time.Now().UnixNano(), 10*time.Second, filepath.Join(t.TempDir(), "start.json")); err != nil {
		t.Fatal(err)
	}
	before, err := getReady(admin)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, filepath.FromSlash(configtest.ScaleAPIFile(2)))
	run, err := reloads(admin, "edit", file, 2, 0, 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	after, err := getReady(admin)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Samples) != 2 || !run.Samples[1].Changed || run.Samples[1].GatewayMs <= 0 || after.Revision == before.Revision {
		t.Fatalf("edit: %+v; revision %s → %s", run, before.Revision, after.Revision)
	}
	same, err := reloadOnce(admin, "same", file, 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if same.Changed {
		t.Errorf("same bytes: %+v, want an unchanged reload", same)
	}
	refresh, err := reloadOnce(admin, "refresh", "", 0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if refresh.Changed || refresh.GatewayMs <= 0 {
		t.Errorf("refresh: %+v", refresh)
	}
	if _, err := reloadOnce(admin, "twice", file, 0, time.Second); err == nil || !strings.Contains(err.Error(), "expected edit, same or refresh") {
		t.Errorf("unknown mode: %v", err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
