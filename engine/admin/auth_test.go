package admin_test

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"

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

// TestTokenOf: the bearer token first (the scheme in any case), else the
// session cookie of a signed-in browser.
func TestTokenOf(t *testing.T) {
	for _, tc := range []struct {
		auth, cookie, want string
	}{
		{"Bearer abc", "", "abc"},
		{"bearer abc", "", "abc"},
		{"Bearer abc", "def", "abc"},
		{"", "def", "def"},
		{"Basic abc", "def", "def"},
		{"abc", "", ""},
		{"Bearer ", "", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if tc.cookie != "" {
			r.Header.Set("Cookie", admin.SessionCookie+"="+tc.cookie)
		}
		if got := admin.TokenOf(r); got != tc.want {
			t.Errorf("Authorization %q, cookie %q: %q; want %q", tc.auth, tc.cookie, got, tc.want)
		}
	}
}
