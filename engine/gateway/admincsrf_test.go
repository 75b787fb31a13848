package gateway

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/engine/admin"
	"github.com/databus-gateway/databus/engine/ui"
)

const csrfTokens = `admin:
  tokens:
    - {name: ops, role: operator, secret: {secretRef: 'env:DATABUS_TEST_OPERATOR'}}
`

// browser is a signed-in browser on the admin listener: its cookies, kept
// by hand so that each request says exactly what it sends.
type browser struct {
	ts      *testServer
	session *http.Cookie
	csrf    *http.Cookie
}

func (b *browser) send(t *testing.T, method, path, body string, hdr map[string]string, cookies ...*http.Cookie) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, b.ts.adminURL+path, strings.NewReader(body))
	if strings.HasPrefix(body, "{") {
		req.Header.Set("Content-Type", "application/json")
	} else if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		if c != nil {
			req.AddCookie(c)
		}
	}
	client := *b.ts.client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Jar = nil
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		switch c.Name {
		case ui.CSRFCookie:
			b.csrf = c
		case ui.SessionCookie:
			b.session = c
		}
	}
	return resp.StatusCode, string(out)
}

// signIn signs in through the pages' form, as a browser does.
func (b *browser) signIn(t *testing.T, token string) {
	t.Helper()
	b.session = nil
	if st, _ := b.send(t, http.MethodGet, "/ui/login", "", nil); st != 200 || b.csrf == nil {
		t.Fatalf("sign-in form: HTTP %d, csrf cookie %v", st, b.csrf)
	}
	form := url.Values{"token": {token}, "csrf": {b.csrf.Value}, "next": {"/ui/"}}.Encode()
	if st, body := b.send(t, http.MethodPost, "/ui/login", form, map[string]string{"Origin": b.ts.adminURL}, b.csrf); st != http.StatusSeeOther || b.session == nil {
		t.Fatalf("sign in: HTTP %d %s", st, body)
	}
}

// TestAdminCSRF: a signed-in browser's cookie changes nothing through the
// admin REST API (invoke, cache/refresh, the FATE registry) without the
// pages' CSRF token from a same-origin page; bearer clients need none.
// The cookie is a session id, not the token, and dies on sign-out and when
// a reload rotates its token.
func TestAdminCSRF(t *testing.T) {
	const token = "operator-token-0123456789"
	t.Setenv("DATABUS_TEST_OPERATOR", token)
	dir := newRepo(t, map[string]string{"one.yaml": scriptAPI("t.one", "online", "one")})
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+csrfTokens)
	ts := startServer(t, Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db")})
	b := &browser{ts: ts}
	b.signIn(t, token)
	if strings.Contains(b.session.Value, token) || b.session.MaxAge <= 0 || b.session.MaxAge > int(admin.SessionTTL.Seconds()) {
		t.Fatalf("session cookie: %+v", b.session)
	}

	posts := []struct{ path, body string }{
		{"/databus/gateway/cache/refresh", ""},
		{"/databus/gateway/invoke", `{"apiCode":"t.one","version":"v1","method":"GET"}`},
		{"/v1/server/feat/register", `{"host":"127.0.0.1","port":9090}`},
	}
	same := b.ts.adminURL
	for _, p := range posts {
		for _, tc := range []struct {
			name string
			hdr  map[string]string
			want int
		}{
			{"cookie only", nil, http.StatusForbidden},
			{"cookie, same Origin, no CSRF token", map[string]string{"Origin": same}, http.StatusForbidden},
			{"cookie, wrong CSRF token", map[string]string{"Origin": same, admin.CSRFHeader: strings.Repeat("0", 32)}, http.StatusForbidden},
			{"cookie, CSRF token, no Origin", map[string]string{admin.CSRFHeader: b.csrf.Value}, http.StatusForbidden},
			{"cookie, CSRF token, foreign Origin", map[string]string{"Origin": "http://evil.example", admin.CSRFHeader: b.csrf.Value}, http.StatusForbidden},
			{"cookie, CSRF token, same-site fetch", map[string]string{"Origin": same, "Sec-Fetch-Site": "same-site", admin.CSRFHeader: b.csrf.Value}, http.StatusForbidden},
			{"cookie, CSRF token, same Origin", map[string]string{"Origin": same, admin.CSRFHeader: b.csrf.Value}, http.StatusOK},
			{"cookie, CSRF token, same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin", admin.CSRFHeader: b.csrf.Value}, http.StatusOK},
		} {
			if st, body := b.send(t, http.MethodPost, p.path, p.body, tc.hdr, b.session, b.csrf); st != tc.want {
				t.Errorf("POST %s, %s: HTTP %d, want %d: %s", p.path, tc.name, st, tc.want, body)
			}
		}
		// A bearer client needs no CSRF proof.
		if st, body := b.send(t, http.MethodPost, p.path, p.body, map[string]string{"Authorization": "Bearer " + token}); st != http.StatusOK {
			t.Errorf("POST %s with the bearer token: HTTP %d %s", p.path, st, body)
		}
	}
	// Reads need no CSRF proof.
	if st, body := b.send(t, http.MethodGet, "/databus/gateway/overview", "", nil, b.session); st != http.StatusOK {
		t.Errorf("GET overview with the cookie: HTTP %d %s", st, body)
	}
	// The token itself in the cookie, as it was before sessions, is no session.
	if st, _ := b.send(t, http.MethodGet, "/databus/gateway/overview", "", nil, &http.Cookie{Name: ui.SessionCookie, Value: token}); st != http.StatusUnauthorized {
		t.Errorf("the token as the cookie: HTTP %d", st)
	}

	// Sign-out ends the session: the old cookie opens nothing.
	old := b.session
	if st, body := b.send(t, http.MethodPost, "/ui/logout", url.Values{"csrf": {b.csrf.Value}}.Encode(), map[string]string{"Origin": same}, old, b.csrf); st != http.StatusSeeOther {
		t.Fatalf("sign out: HTTP %d %s", st, body)
	}
	if st, _ := b.send(t, http.MethodGet, "/databus/gateway/overview", "", nil, old); st != http.StatusUnauthorized {
		t.Errorf("GET with the signed-out cookie: HTTP %d", st)
	}
	if st, _ := b.send(t, http.MethodPost, posts[0].path, "", map[string]string{"Origin": same, admin.CSRFHeader: b.csrf.Value}, old, b.csrf); st != http.StatusUnauthorized {
		t.Errorf("POST with the signed-out cookie: HTTP %d", st)
	}
	if st, _ := b.send(t, http.MethodGet, "/ui/", "", nil, old); st != http.StatusSeeOther {
		t.Errorf("page with the signed-out cookie: HTTP %d", st)
	}

	// A reload that rotates the token (databus.yaml now names another
	// secret) ends its sessions.
	b.signIn(t, token)
	live := b.session
	if st, _ := b.send(t, http.MethodGet, "/ui/", "", nil, live); st != http.StatusOK {
		t.Fatalf("signed in again: HTTP %d", st)
	}
	t.Setenv("DATABUS_TEST_OPERATOR2", token+"-rotated")
	writeFile(t, filepath.Join(dir, "databus.yaml"), testSettings+strings.Replace(csrfTokens, "DATABUS_TEST_OPERATOR", "DATABUS_TEST_OPERATOR2", 1))
	if st, body := b.send(t, http.MethodPost, "/databus/gateway/cache/refresh", "", map[string]string{"Authorization": "Bearer " + token}); st != http.StatusOK {
		t.Fatalf("refresh: HTTP %d %s", st, body)
	}
	if st, _ := b.send(t, http.MethodGet, "/databus/gateway/overview", "", map[string]string{"Authorization": "Bearer " + token + "-rotated"}); st != http.StatusOK {
		t.Fatalf("the rotated token: HTTP %d", st)
	}
	if st, _ := b.send(t, http.MethodGet, "/databus/gateway/overview", "", nil, live); st != http.StatusUnauthorized {
		t.Errorf("GET with a session of a rotated token: HTTP %d", st)
	}
}
