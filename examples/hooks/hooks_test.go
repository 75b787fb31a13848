package main

// Two Databus sites and this example hook service, end to end: site A calls
// site B's portal from an http step with site: "10000"; A's signature hook
// signs, B's site_authentication verifies (the two share the key) and B's
// permission admits party 9999 to b.data:v1 only.

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/engine/registry"
)

const basePath = "/admin-api/databus/api/portal"

// oneServer resolves every hook to the example service at base. (The
// gateway's own registry takes these entries from register.sh.)
type oneServer struct{ srv registry.Server }

func (o oneServer) Resolve(_ context.Context, server, name string) (registry.Endpoint, error) {
	if !strings.EqualFold(server, o.srv.Name) {
		return registry.Endpoint{}, registry.NotFound(server, name)
	}
	return registry.Endpoint{Server: o.srv, Service: registry.Service{ServiceName: name, URI: "/hooks/" + name, Method: "POST"}}, nil
}

// startHooks serves the example with rules r and returns its Resolver.
func startHooks(t *testing.T, r *rules) oneServer {
	t.Helper()
	srv := httptest.NewServer(handler(r, log.New(io.Discard, "", 0)))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	p, _ := strconv.Atoi(port)
	return oneServer{registry.Server{Name: "HOOKS", Host: host, Port: p, Protocol: "http"}}
}

// startSite serves a config repository of files and returns the portal URL.
func startSite(t *testing.T, files map[string]string, services registry.Resolver) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := gateway.New(gateway.Options{Dir: dir, NoWatch: true, Services: services, StoragePath: filepath.Join(t.TempDir(), "db")})
	if err != nil {
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	return "http://" + portalLn.Addr().String() + basePath
}

func api(code, steps string) string {
	return "apiVersion: databus/v1\nkind: Api\ncode: " + code + "\nversion: v1\nstatus: online\nmethods: [POST]\nsteps:\n  - {id: start, type: start}\n" + steps + "  - {id: end, type: end}\n"
}

func script(value string) string {
	return "  - id: s\n    type: script\n    script: {timeout: 10s, source: 'function main(c) { return " + value + " }'}\n"
}

func remote(url string) string {
	return "  - id: remote\n    type: http\n    http: {method: POST, url: '" + url + "', timeout: 10s, site: \"10000\"}\n"
}

type envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
}

func post(t *testing.T, url, body string, header http.Header) envelope {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e envelope
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code != resp.StatusCode {
		t.Fatalf("POST %s: %d %+v %v", url, resp.StatusCode, e, err)
	}
	return e
}

func TestTwoSites(t *testing.T) {
	key := []byte("shared-site-key-0123")
	settings := func(party, flags string) string {
		return "apiPortal:\n  basePath: " + basePath + "\n  security: {enabled: false}\nhooks:\n  server: hooks\n  partyId: \"" + party + "\"\n  timeout: 10s\n" + flags
	}

	// Site B (party 10000) admits party 9999 to b.data:v1 only.
	hooksB := startHooks(t, &rules{parties: list("9999"), permits: map[string]map[string]bool{"9999": {"b.data:v1": true}}, key: key})
	siteB := startSite(t, map[string]string{
		"databus.yaml":     settings("10000", "  siteAuthentication: true\n  permission: true\n"),
		"apis/data.yaml":   api("b.data", script(`{rows: [1, 2], asked: c.request.body}`)),
		"apis/secret.yaml": api("b.secret", script(`"secret"`)),
	}, hooksB)

	// Site A (party 9999) signs for party 10000.
	hooksA := startHooks(t, &rules{parties: list("10000"), key: key})
	siteA := startSite(t, map[string]string{
		"databus.yaml":       settings("9999", ""),
		"apis/fetch.yaml":    api("a.fetch", remote(siteB+"/b.data/v1")),
		"apis/fetch2.yaml":   api("a.secret", remote(siteB+"/b.secret/v1")),
		"apis/unsigned.yaml": api("a.unsigned", strings.Replace(remote(siteB+"/b.data/v1"), `, site: "10000"`, "", 1)),
	}, hooksA)

	jsonCT := http.Header{"Content-Type": {"application/json"}}
	e := post(t, siteA+"/a.fetch/v1", `{"month": "202201", "ids": [7, 8]}`, jsonCT)
	// A's answer is B's envelope, B's response in it.
	var fromB envelope
	json.Unmarshal(e.Response, &fromB)
	if want := `{"asked":{"ids":[7,8],"month":"202201"},"rows":[1,2]}`; e.Code != 200 || fromB.Code != 200 || string(fromB.Response) != want {
		t.Fatalf("A → B: %d %s %s; want B's response %s", e.Code, e.Message, e.Response, want)
	}

	// B's permission refuses b.secret: A's step fails with B's 403.
	if e := post(t, siteA+"/a.secret/v1", `{}`, jsonCT); e.Code != 502 || !strings.Contains(e.Message, "HTTP 403") {
		t.Errorf("A → B b.secret: %d %s", e.Code, e.Message)
	}
	// Unsigned: to B a caller of its own, not a site; site_authentication
	// is skipped and B's permission, which admits party 9999 only,
	// refuses it (403).
	if e := post(t, siteA+"/a.unsigned/v1", `{}`, jsonCT); e.Code != 502 || !strings.Contains(e.Message, "HTTP 403") {
		t.Errorf("A → B unsigned: %d %s", e.Code, e.Message)
	}
	// Forged, or signed by an unknown party: B refuses (401).
	for _, c := range []struct {
		party, sig, msg string
	}{
		{"9999", "00ff", `site signature of party "9999" does not verify`},
		{"10001", "00ff", `party "10001" is not known`},
	} {
		h := http.Header{"Src-Party-Id": {c.party}, "Site-Signature": {c.sig}}
		if e := post(t, siteB+"/b.data/v1", `{}`, h); e.Code != 401 || e.Message != c.msg {
			t.Errorf("forged call to B as %s: %d %q; want 401 %q", c.party, e.Code, e.Message, c.msg)
		}
	}
}

// TestRules: the example's rules one by one.
func TestRules(t *testing.T) {
	r := &rules{apps: list("demo-app"), parties: list("10000"), permits: map[string]map[string]bool{"demo-app": {"*": true}}, key: []byte("k")}
	sig, err := r.sign(json.RawMessage(`{"b":1.50,"a":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	// Key order does not matter; numbers are kept as written.
	if again, _ := r.sign(json.RawMessage(` {"a":"x", "b":1.50}`)); again != sig {
		t.Errorf("canonical body differs by key order")
	}
	if other, _ := r.sign(json.RawMessage(`{"a":"x","b":1.5}`)); other == sig {
		t.Errorf("1.50 and 1.5 sign alike")
	}
	cases := []struct {
		name string
		got  answer
		code int
	}{
		{"client ok", r.clientAuthentication([]byte(`{"headers":{"Zt-App-Id":"demo-app"}}`)), 0},
		{"client other", r.clientAuthentication([]byte(`{"headers":{"Zt-App-Id":"shop"}}`)), 401},
		{"sign", r.signature([]byte(`{"party_id":"10000","body":{"a":"x","b":1.50}}`)), 0},
		{"sign other party", r.signature([]byte(`{"party_id":"1","body":{}}`)), 403},
		{"site ok", r.siteAuthentication([]byte(`{"src_party_id":"10000","site_signature":"` + strings.ToUpper(sig) + `","body":{"b":1.50,"a":"x"}}`)), 0},
		{"site forged", r.siteAuthentication([]byte(`{"src_party_id":"10000","site_signature":"` + sig + `","body":{"b":2}}`)), 401},
		{"site text body", r.siteAuthentication([]byte(`{"src_party_id":"10000","site_signature":"x","body":"id,name"}`)), 401},
		{"permission ok", r.permission([]byte(`{"src_party_id":"demo-app","component_list":["demo.hello:v1"]}`)), 0},
		{"permission other", r.permission([]byte(`{"src_party_id":"shop","component_list":["demo.hello:v1"]}`)), 403},
		{"bad json", r.permission([]byte(`{`)), 100},
	}
	for _, c := range cases {
		if c.got.Code != c.code {
			t.Errorf("%s: %+v; want code %d", c.name, c.got, c.code)
		}
	}
	if s := cases[2].got.SiteSignature; s != sig {
		t.Errorf("signature %q; want %q", s, sig)
	}
}
