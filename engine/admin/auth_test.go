package admin_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/admin"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// snapshotOf loads a repository whose databus.yaml is settings(more).
func snapshotOf(t *testing.T, more string) *snapshot.Snapshot {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"databus.yaml": settings(more)})
	repo, diags, err := config.Load(dir)
	if err != nil || diags.HasErrors() {
		t.Fatalf("load %s: %v %v", filepath.Base(dir), err, diags)
	}
	snap, err := snapshot.Build(repo, snapshot.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestAuthorize is the one admin authentication of the REST API and the
// pages: which token is accepted for which role.
func TestAuthorize(t *testing.T) {
	t.Setenv("ADMIN_TEST_VIEWER", viewerToken)
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken)
	t.Setenv("ADMIN_TEST_REGISTRY", registryToken)
	snap := snapshotOf(t, adminTokens)
	for _, tc := range []struct {
		tok, role string
		name      string // the token matched; "" for none
		err       string // "" ok, "token" ErrNoToken, "role" a *RoleError
	}{
		{viewerToken, admin.RoleViewer, "grafana", ""},
		{viewerToken, admin.RoleOperator, "grafana", "role"},
		{viewerToken, admin.RoleRegistry, "grafana", "role"},
		{operatorToken, admin.RoleViewer, "ops", ""},
		{operatorToken, admin.RoleOperator, "ops", ""},
		{operatorToken, admin.RoleRegistry, "ops", ""},
		{registryToken, admin.RoleRegistry, "fate", ""},
		{registryToken, admin.RoleViewer, "fate", "role"},
		{"", admin.RoleViewer, "", "token"},
		{"wrong", admin.RoleViewer, "", "token"},
		{operatorToken + "x", admin.RoleViewer, "", "token"},
		{operatorToken[:len(operatorToken)-1], admin.RoleViewer, "", "token"},
	} {
		tok, err := admin.Authorize(snap, tc.tok, tc.role)
		name := ""
		if tok != nil {
			name = tok.Name
		}
		var re *admin.RoleError
		kind := ""
		switch {
		case errors.Is(err, admin.ErrNoToken):
			kind = "token"
		case errors.As(err, &re):
			kind = "role"
		case err != nil:
			kind = err.Error()
		}
		if name != tc.name || kind != tc.err {
			t.Errorf("Authorize(%q, %s) = %q, %v; want %q, %q", tc.tok, tc.role, name, err, tc.name, tc.err)
		}
	}

	// Without admin.tokens: nothing is asked for.
	if tok, err := admin.Authorize(snapshotOf(t, ""), "", admin.RoleOperator); tok != nil || err != nil {
		t.Errorf("no admin.tokens: %v, %v; want nil, nil", tok, err)
	}
	// Tokens configured, none resolves: never open.
	t.Setenv("ADMIN_TEST_VIEWER", "")
	t.Setenv("ADMIN_TEST_OPERATOR", "")
	t.Setenv("ADMIN_TEST_REGISTRY", "")
	if _, err := admin.Authorize(snapshotOf(t, adminTokens), "", admin.RoleViewer); !errors.Is(err, admin.ErrNoToken) {
		t.Errorf("unresolved admin.tokens: %v; want ErrNoToken", err)
	}
}

// TestSessions: a session names its token without holding it, ends on
// End, after its TTL, when pushed out by newer ones, and when a reload
// removes or changes its token.
func TestSessions(t *testing.T) {
	t.Setenv("ADMIN_TEST_VIEWER", viewerToken)
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken)
	t.Setenv("ADMIN_TEST_REGISTRY", registryToken)
	snap := snapshotOf(t, adminTokens)
	now := time.Unix(1_700_000_000, 0)
	s := admin.NewSessions(time.Hour, 3, func() time.Time { return now })
	ops := &snap.AdminTokens[1]

	id, exp := s.Start(ops)
	if len(id) != 64 || strings.Contains(id, operatorToken) || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("session id %q, expires %v", id, exp)
	}
	if got := s.Lookup(snap, id); got == nil || got.Name != "ops" {
		t.Fatalf("lookup: %v", got)
	}
	if s.Lookup(snap, operatorToken) != nil || s.Lookup(snap, "") != nil {
		t.Error("the token itself is not a session id")
	}
	// Authenticate: the cookie, with the token's role.
	r := httptest.NewRequest("POST", "/", nil)
	r.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: id})
	if tok, via, err := s.Authenticate(snap, r, admin.RoleOperator); err != nil || via != admin.ViaSession || tok.Name != "ops" {
		t.Errorf("authenticate by cookie: %v %v %v", tok, via, err)
	}
	r.Header.Set("Authorization", "Bearer "+viewerToken) // a bearer token wins
	if tok, via, err := s.Authenticate(snap, r, admin.RoleViewer); err != nil || via != admin.ViaBearer || tok.Name != "grafana" {
		t.Errorf("authenticate by bearer: %v %v %v", tok, via, err)
	}
	old := httptest.NewRequest("GET", "/", nil)
	old.AddCookie(&http.Cookie{Name: admin.SessionCookie, Value: operatorToken}) // as cookies were before sessions
	if _, _, err := s.Authenticate(snap, old, admin.RoleViewer); !errors.Is(err, admin.ErrNoToken) {
		t.Errorf("a token as the cookie: %v", err)
	}

	// Sign-out.
	s.End(id)
	if s.Lookup(snap, id) != nil || s.Len() != 0 {
		t.Errorf("after End: %d sessions", s.Len())
	}
	// Expiry.
	id, _ = s.Start(ops)
	now = now.Add(time.Hour)
	if s.Lookup(snap, id) != nil || s.Len() != 0 {
		t.Error("expired session still open")
	}
	// The cap: the oldest goes.
	ids := []string{}
	for range 4 {
		id, _ := s.Start(ops)
		ids = append(ids, id)
	}
	if s.Len() != 3 || s.Lookup(snap, ids[0]) != nil || s.Lookup(snap, ids[1]) == nil || s.Lookup(snap, ids[3]) == nil {
		t.Errorf("cap 3: %d sessions", s.Len())
	}
	// A reload that changes the token's secret, or removes it, ends its sessions.
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken+"-rotated")
	if s.Lookup(snapshotOf(t, adminTokens), ids[1]) != nil {
		t.Error("session outlived its token's rotation")
	}
	t.Setenv("ADMIN_TEST_OPERATOR", operatorToken)
	if s.Lookup(snapshotOf(t, adminTokens), ids[1]) != nil {
		t.Error("a session ended by a rotation came back")
	}
	if s.Lookup(snapshotOf(t, "admin:\n  tokens:\n    - {name: grafana, role: viewer, secret: {secretRef: 'env:ADMIN_TEST_VIEWER'}}\n"), ids[2]) != nil {
		t.Error("session outlived its token's removal")
	}
}

// TestCSRF: the double-submit token must match the cookie, and a browser's
// cross-site signs refuse it.
func TestCSRF(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name        string
		hdr         map[string]string
		cookie, got string
		ok, same    bool
	}{
		{"match, same Origin", map[string]string{"Origin": "http://example.com"}, tok, tok, true, true},
		{"match, same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, tok, tok, true, true},
		{"match, no browser headers", nil, tok, tok, true, false},
		{"mismatch", map[string]string{"Origin": "http://example.com"}, tok, "x" + tok[1:], false, true},
		{"no cookie", map[string]string{"Origin": "http://example.com"}, "", tok, false, true},
		{"no token", map[string]string{"Origin": "http://example.com"}, tok, "", false, true},
		{"foreign Origin", map[string]string{"Origin": "http://evil.example"}, tok, tok, false, false},
		{"null Origin", map[string]string{"Origin": "null"}, tok, tok, false, false},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site"}, tok, tok, false, false},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://example.com"}, tok, tok, false, false},
	} {
		r := httptest.NewRequest("POST", "http://example.com/", nil)
		for k, v := range tc.hdr {
			r.Header.Set(k, v)
		}
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: admin.CSRFCookie, Value: tc.cookie})
		}
		if got := admin.CheckCSRF(r, tc.got); got != tc.ok {
			t.Errorf("%s: CheckCSRF %v, want %v", tc.name, got, tc.ok)
		}
		if got := admin.SameOrigin(r); got != tc.same {
			t.Errorf("%s: SameOrigin %v, want %v", tc.name, got, tc.same)
		}
	}
}
