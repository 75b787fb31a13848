package view

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

func api(code, status, more string) string {
	return "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: v1\nstatus: " + status + "\nmethods: [GET]\n" + more +
		"steps:\n  - {id: start, type: start}\n  - {id: end, type: end}\n"
}

const testPolicy = "apiVersion: databus/v1\nkind: RateLimitPolicy\nname: std\n"

// load writes files into a new repository and builds its Snapshot.
func load(t *testing.T, files map[string]string) *snapshot.Snapshot {
	t.Helper()
	dir := t.TempDir()
	files["databus.yaml"] = "apiVersion: databus/v1\nkind: Settings\napiPortal:\n  security: {enabled: false}\n"
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rebuild(t, dir)
}

func rebuild(t *testing.T, dir string) *snapshot.Snapshot {
	t.Helper()
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func ids(ds []Definition) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return strings.Join(out, " ")
}

func TestDefinitions(t *testing.T) {
	snap := load(t, map[string]string{
		"apis/a.yaml":           api("orders.create", "online", "description: Create an order\npolicies: {rateLimit: std}\n"),
		"apis/b.yaml":           api("orders.get", "draft", "auth: {credentials: [shop]}\n"),
		"apis/c.yaml":           api("stock.list", "offline", ""),
		"policies/s.yaml":       testPolicy,
		"credentials/shop.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: shop\nsignatureType: MD5\nencryptionType: NONE\n",
	})
	for _, tc := range []struct {
		f    DefinitionFilter
		want string
	}{
		{DefinitionFilter{}, "orders.create:v1 orders.get:v1 stock.list:v1"},
		{DefinitionFilter{Code: "orders"}, "orders.create:v1 orders.get:v1"},
		{DefinitionFilter{Code: "Create an"}, "orders.create:v1"},
		{DefinitionFilter{Status: "draft"}, "orders.get:v1"},
		{DefinitionFilter{Code: "orders", Status: "offline"}, ""},
		{DefinitionFilter{Q: "STD"}, "orders.create:v1"},                             // the policy, any case
		{DefinitionFilter{Q: "apis/c.yaml"}, "stock.list:v1"},                        // the file
		{DefinitionFilter{Q: " offline "}, "stock.list:v1"},                          // the status
		{DefinitionFilter{Q: "get"}, "orders.create:v1 orders.get:v1 stock.list:v1"}, // the methods
		{DefinitionFilter{Q: "nothing"}, ""},
	} {
		if got := ids(Definitions(snap, tc.f)); got != tc.want {
			t.Errorf("Definitions(%+v) = %q; want %q", tc.f, got, tc.want)
		}
	}
	d, ok := FindDefinition(snap, "orders.get")
	if !ok || d.ID != "orders.get:v1" || d.Served || d.Policy() != "" || strings.Join(d.Callers(), ",") != "shop" {
		t.Errorf("FindDefinition(orders.get) = %+v, %v", d, ok)
	}
	if d, ok := FindDefinition(snap, "orders.create:v1"); !ok || !d.Served || d.Policy() != "std" || d.Callers() != nil {
		t.Errorf("FindDefinition(orders.create:v1) = %+v, %v", d, ok)
	}
	if _, ok := FindDefinition(snap, "orders.create:v2"); ok {
		t.Error("found a version that is not there")
	}
	if p, ok := FindPolicy(snap, "std"); !ok || strings.Join(p.UsedBy, " ") != "orders.create:v1" || p.File != "policies/s.yaml" {
		t.Errorf("FindPolicy(std) = %+v, %v", p, ok)
	}
}

// TestCredentialSecrets: the view says whether each secret resolved for
// the Snapshot it is given, the same at every view of that Snapshot; a new
// Snapshot answers anew.
func TestCredentialSecrets(t *testing.T) {
	t.Setenv("VIEW_TEST_KEY", "0123456789abcdef")
	t.Setenv("VIEW_TEST_SIGN", "")
	files := map[string]string{
		"apis/a.yaml": api("a.b", "online", "auth: {credentials: [ok, broken]}\n"),
		"credentials/ok.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: ok\nsignatureType: MD5\nencryptionType: AES\n" +
			"encryptionKey: {secretRef: 'env:VIEW_TEST_KEY'}\nsignatureKey: {secretRef: 'env:VIEW_TEST_SIGN'}\n",
		"credentials/broken.yaml": "apiVersion: databus/v1\nkind: Credential\nappId: broken\nsignatureType: HMAC-SHA256\nencryptionType: AES\n" +
			"encryptionKey: {secretRef: 'env:VIEW_TEST_NOKEY'}\nsignatureKey: {secretRef: 'env:VIEW_TEST_KEY'}\n",
	}
	snap := load(t, files)
	check := func(snap *snapshot.Snapshot, appID string, enc, sign, usable bool) {
		t.Helper()
		c, ok := FindCredential(snap, appID)
		if !ok || c.EncryptionKey.Resolved != enc || c.SignatureKey.Resolved != sign || c.Usable != usable ||
			strings.Join(c.UsedBy, " ") != "a.b:v1" {
			t.Errorf("%s = %+v (encryptionKey %+v, signatureKey %+v); want resolved %v/%v, usable %v",
				appID, c, c.EncryptionKey, c.SignatureKey, enc, sign, usable)
		}
	}
	// ok: its MD5 signature never reads the signature key (not set): the
	// view looks once. broken: the load stopped at the encryption key;
	// its signature key resolves.
	check(snap, "ok", true, false, true)
	check(snap, "broken", false, true, false)

	// The environment changes: the same Snapshot is shown as it was
	// loaded and first seen.
	t.Setenv("VIEW_TEST_KEY", "")
	t.Setenv("VIEW_TEST_SIGN", "now-set")
	check(snap, "ok", true, false, true)
	check(snap, "broken", false, true, false)

	// A new Snapshot (a reload) sees the new environment.
	next := rebuild(t, snap.Repo.Dir)
	check(next, "ok", false, true, false)
	check(next, "broken", false, false, false)
}

// The pages' status is what their column shows; the REST API keeps 0-3.
func TestAccessLogStatusFilters(t *testing.T) {
	page := map[string]*store.StatusRange{
		"404": {Min: 404, Max: 404}, "2xx": {Min: 200, Max: 299}, "5XX": {Min: 500, Max: 599}, "100": {Min: 100, Max: 100}, " 3xx ": {Min: 300, Max: 399},
		"0": nil, "3": nil, "600": nil, "6xx": nil, "099": nil, "4x": nil, "-40": nil, "4-5": nil, "40x": nil,
	}
	for s, want := range page {
		f, err := AccessLogPageFilter(url.Values{"status": {s}, "apiCode": {"a"}})
		switch {
		case want == nil && err == nil:
			t.Errorf("page status %q: no error (%+v)", s, f.HTTPStatus)
		case want != nil && (err != nil || f.HTTPStatus == nil || *f.HTTPStatus != *want || f.Status != nil || f.APICode != "a"):
			t.Errorf("page status %q: %+v %v, want %+v", s, f.HTTPStatus, err, want)
		}
	}
	for s, want := range map[string]int{"0": 0, "2": 2, "3": 3} {
		f, err := AccessLogFilter(url.Values{"status": {s}})
		if err != nil || f.Status == nil || *f.Status != want || f.HTTPStatus != nil {
			t.Errorf("REST status %q: %v %v", s, f.Status, err)
		}
	}
	for _, s := range []string{"404", "2xx"} {
		if _, err := AccessLogFilter(url.Values{"status": {s}}); err == nil {
			t.Errorf("REST status %q accepted", s)
		}
	}
}
