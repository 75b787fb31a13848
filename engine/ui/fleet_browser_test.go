package ui_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/internal/testredis"
)

// fleetReplica is one gateway of the fleet test: a folder whose hello API
// answers value, sharing the Redis at addr.
type fleetReplica struct {
	srv      *gateway.Server
	dir      string
	adminURL string
}

func writeFleetRepo(t *testing.T, dir, addr, value string) {
	t.Helper()
	files := map[string]string{
		"databus.yaml":    "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\nredis:\n  addr: " + addr + "\n  timeout: 2s\n",
		"apis/hello.yaml": strings.Replace(helloFile, helloValue, value, 1),
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// startFleetReplica serves a new repository answering value on loopback,
// with a short heartbeat interval; cleanup stops it.
func startFleetReplica(t *testing.T, addr, value, version string) *fleetReplica {
	t.Helper()
	dir := t.TempDir()
	writeFleetRepo(t, dir, addr, value)
	srv, err := gateway.New(gateway.Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "db"),
		DrainTimeout: 10 * time.Second, FleetInterval: 50 * time.Millisecond, Version: version})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		portalLn.Close()
		srv.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Serve did not return within 20s of its context ending")
		}
		srv.Close()
	})
	r := &fleetReplica{srv: srv, dir: dir, adminURL: "http://" + adminLn.Addr().String()}
	client := &http.Client{Timeout: 10 * time.Second}
	poll(t, 10*time.Second, "GET /readyz answers 200", func() bool {
		resp, err := client.Get(r.adminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// TestBrowserFleet: the overview's Fleet panel of a gateway sharing Redis
// with another that serves a different revision lists both and shows the
// drift flag with its reason; once the other reloads to the same content,
// the panel says they are in step.
func TestBrowserFleet(t *testing.T) {
	execPath := chromiumPath(t)
	rs := testredis.Start(t)
	a := startFleetReplica(t, rs.Addr, "one", "test-a")
	b := startFleetReplica(t, rs.Addr, "two", "test-b")
	name := func(r *fleetReplica) string {
		s := r.srv.Current()
		return fleet.RevisionOf(s.Git, s.Revision).Name()
	}
	revA, revB := name(a), name(b)
	poll(t, 30*time.Second, "a to read b's heartbeat", func() bool { return len(a.srv.Fleet().Replicas) == 2 })

	browser := startBrowser(t, execPath)
	ctx, cancel := context.WithTimeout(browser, testTimeout)
	defer cancel()
	p := &page{t: t, ctx: ctx, adminURL: a.adminURL, shots: t.TempDir()}

	p.navigate("/ui/")
	p.waitVisible("section#fleet")
	p.waitVisible("#fleet-drift")
	if got := p.text("#fleet-drift"); got != "drift" {
		t.Errorf(`#fleet-drift reads %q, want "drift"`, got)
	}
	if n := p.count("#fleet-in-step"); n != 0 {
		t.Errorf("%d #fleet-in-step beside the drift flag", n)
	}
	reasons := p.texts("#fleet-drift-reasons li")
	if len(reasons) != 1 || !strings.Contains(reasons[0], revA) || !strings.Contains(reasons[0], revB) {
		t.Errorf("#fleet-drift-reasons: %q, want one naming %s and %s", reasons, revA, revB)
	}
	rows := p.texts("table#fleet-replicas tr.fleet-replica")
	if len(rows) != 2 {
		t.Fatalf("%d tr.fleet-replica, want 2: %q", len(rows), rows)
	}
	if self := p.texts("table#fleet-replicas tr.fleet-replica.self .fleet-id"); len(self) != 1 || self[0] != a.srv.Fleet().Self {
		t.Errorf("this replica's row: %q, want %s", self, a.srv.Fleet().Self)
	}
	revs := p.texts("table#fleet-replicas tr.fleet-replica .fleet-revision")
	slices.Sort(revs)
	want := []string{revA, revB}
	slices.Sort(want)
	if !slices.Equal(revs, want) {
		t.Errorf(".fleet-revision: %q, want %q", revs, want)
	}
	if !strings.Contains(strings.Join(rows, "\n"), "test-b") {
		t.Errorf("b's version test-b is in no row: %q", rows)
	}
	p.screenshot("fleet-drift")

	// b deploys a's content.
	writeFleetRepo(t, b.dir, rs.Addr, "one")
	if res := b.srv.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload of b: %+v", res)
	}
	poll(t, 30*time.Second, "the overview to show the fleet in step", func() bool {
		p.navigate("/ui/")
		p.waitVisible("section#fleet")
		return p.count("#fleet-in-step") == 1
	})
	if n := p.count("#fleet-drift"); n != 0 {
		t.Errorf("%d #fleet-drift after convergence", n)
	}
	if revs := p.texts("table#fleet-replicas tr.fleet-replica .fleet-revision"); !slices.Equal(revs, []string{revA, revA}) {
		t.Errorf(".fleet-revision after convergence: %q, want %s twice", revs, revA)
	}
	p.screenshot("fleet-in-step")
}
