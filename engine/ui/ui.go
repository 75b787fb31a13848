// Package ui serves the read-only admin web pages under /ui/ on the admin
// listener: what is deployed (APIs with their flows and versions,
// credentials without secrets, policies), what happened (the access log,
// the last reload, a traffic chart) — and nothing that changes the
// configuration, which changes through pull requests.
//
// Pages are rendered on the server with html/template (every value from
// config or requests is escaped); styles and the small script are embedded
// with go:embed, so the pages work without any network beyond the admin
// listener.
package ui

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/admin"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Prefix is where the pages live on the admin listener.
const Prefix = "/ui/"

// Cookie names.
const (
	SessionCookie = admin.SessionCookie // the session id of a signed-in browser
	CSRFCookie    = admin.CSRFCookie    // the double-submit token of the forms and of REST calls
)

// CSP is the Content-Security-Policy of every page.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// Reload is the last reload attempt as the pages show it.
type Reload struct {
	At       time.Time
	Reason   string
	OK       bool
	Revision string
	Errors   []config.Diagnostic
	Error    string
}

// Source is what the pages read from the running gateway. Every field but
// Current may be nil.
type Source struct {
	Current    func() *snapshot.Snapshot
	LastReload func() *Reload
	Git        func() *gitops.Repo // nil or returning nil: not a git checkout
	AccessLog  admin.AccessLog     // nil: the access log is off
	Traffic    func(now time.Time) metrics.Window
	Registry   admin.Registry // nil: no registry in this gateway
	// Fleet is the replicas as this one sees them (the overview's Fleet
	// panel); nil: no panel.
	Fleet  func() fleet.View
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// Sessions is where sign-ins live; share the admin API's
	// (admin.API.Sessions) so its endpoints accept the cookie. nil: a
	// store of the pages' own.
	Sessions *admin.Sessions
}

// UI serves the pages.
type UI struct {
	src   Source
	pages map[string]*template.Template
	log   *slog.Logger
}

// New parses the embedded templates; it panics when they are broken (a
// build-time mistake the tests catch).
func New(src Source) *UI {
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Sessions == nil {
		src.Sessions = admin.NewSessions(0, 0, src.Now)
	}
	u := &UI{src: src, log: src.Logger, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		t := template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
		u.pages[strings.TrimSuffix(base, ".html")] = t
	}
	return u
}

// Register mounts the pages on mux.
func (u *UI) Register(mux *http.ServeMux) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(Prefix+"static/", http.FileServerFS(static))
	mux.Handle("GET /ui/static/", u.secure(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /ui", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
	mux.Handle("GET /ui/login", u.secure(u.loginForm))
	mux.Handle("POST /ui/login", u.secure(u.login))
	mux.Handle("POST /ui/logout", u.secure(u.logout))
	get := func(pattern string, h func(w http.ResponseWriter, r *http.Request, p *page)) {
		mux.Handle("GET "+pattern, u.secure(u.auth(h)))
	}
	get("/ui/{$}", u.overview)
	get("/ui/apis", u.apis)
	get("/ui/apis/{id}", u.api)
	get("/ui/apis/{id}/versions/{hash}", u.version)
	get("/ui/apis/{id}/diff", u.diff)
	get("/ui/credentials", u.credentials)
	get("/ui/policies", u.policies)
	get("/ui/access-log", u.accessLog)
	get("/ui/access-log/{id}", u.record)
	get("/ui/registry", u.registry)
	get("/ui/", func(w http.ResponseWriter, r *http.Request, p *page) {
		u.notFound(w, p, "No page at "+r.URL.Path+".")
	})
}

// secure sets the security headers of every answer.
func (u *UI) secure(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			hd.Set("Cache-Control", "no-store")
		}
		h(w, r)
	}
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string // the nav entry to highlight
	CSRF     string
	SignedIn bool // a session cookie is in use: show "sign out"
	RepoURL  string
	// TraceURL is telemetry.traceUrl: a record's trace id links to its
	// trace in the operator's trace viewer; "": no link.
	TraceURL string
	Snap     *snapshot.Snapshot
	Data     any
}

// auth admits a request that admin.Sessions.Authenticate lets view (a
// viewer or operator token, by its session cookie or as a bearer token;
// anyone without admin.tokens), sends any other to the sign-in form, and
// builds the page context.
func (u *UI) auth(h func(w http.ResponseWriter, r *http.Request, p *page)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := u.src.Current()
		p := &page{Snap: snap}
		if snap == nil {
			p.Title = "Starting"
			u.render(w, http.StatusServiceUnavailable, "error", p, "No configuration is loaded yet.")
			return
		}
		p.RepoURL = strings.TrimSuffix(snap.Settings.UI.RepoURL, "/")
		p.TraceURL = snap.Settings.Telemetry.TraceURL
		t, _, err := u.src.Sessions.Authenticate(snap, r, admin.RoleViewer)
		if err != nil {
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if t != nil {
			p.SignedIn = true
			p.CSRF = u.csrfToken(w, r)
		}
		h(w, r, p)
	}
}

// csrfToken returns the browser's CSRF token, setting a new one when it has
// none.
func (u *UI) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) == 32 && isHex(c.Value) {
		return c.Value
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: CSRFCookie, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	return tok
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkForm verifies a POST: the Origin and Sec-Fetch-Site (when sent) are
// this host's, and the form's csrf field equals the CSRF cookie.
func checkForm(r *http.Request) bool {
	return admin.CheckCSRF(r, r.PostFormValue("csrf"))
}

// safeNext is next when it is a local page, else the overview.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n\t") || strings.Contains(next, "..") || strings.HasPrefix(next, "//") {
		return Prefix
	}
	pu, err := url.Parse(next)
	if err != nil || pu.Scheme != "" || pu.Host != "" || pu.User != nil {
		return Prefix
	}
	return next
}

type loginData struct {
	Next, Error string
	NoTokens    bool
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) {
	u.renderLogin(w, r, http.StatusOK, "")
}

func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	snap := u.src.Current()
	p := &page{Title: "Sign in", Snap: snap, CSRF: u.csrfToken(w, r)}
	d := loginData{Next: safeNext(r.FormValue("next")), Error: msg}
	if snap != nil && len(snap.Settings.Admin.Tokens) == 0 {
		d.NoTokens = true
	}
	u.render(w, status, "login", p, d)
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !checkForm(r) {
		u.forbidden(w, r)
		return
	}
	snap := u.src.Current()
	next := safeNext(r.PostFormValue("next"))
	if snap == nil {
		u.renderLogin(w, r, http.StatusServiceUnavailable, "No configuration is loaded yet.")
		return
	}
	if len(snap.Settings.Admin.Tokens) > 0 {
		tok := strings.TrimSpace(r.PostFormValue("token"))
		t, err := admin.Authorize(snap, tok, admin.RoleViewer)
		if err != nil {
			u.log.Warn("admin pages: sign-in refused", "remote", r.RemoteAddr)
			u.renderLogin(w, r, http.StatusUnauthorized, "That token is not a viewer or operator token of admin.tokens.")
			return
		}
		if c, err := r.Cookie(SessionCookie); err == nil {
			u.src.Sessions.End(c.Value) // signing in again replaces the session
		}
		id, expires := u.src.Sessions.Start(t)
		http.SetCookie(w, &http.Cookie{
			Name: SessionCookie, Value: id, Path: "/", Expires: expires, MaxAge: int(expires.Sub(u.src.Now()).Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !checkForm(r) {
		u.forbidden(w, r)
		return
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		u.src.Sessions.End(c.Value)
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func (u *UI) forbidden(w http.ResponseWriter, r *http.Request) {
	p := &page{Title: "Forbidden", Snap: u.src.Current()}
	u.render(w, http.StatusForbidden, "error", p, "The form was not sent from this page (cross-site request, or a missing or stale CSRF token). Reload the sign-in page and try again.")
}

func (u *UI) notFound(w http.ResponseWriter, p *page, msg string) {
	p.Title = "Not found"
	u.render(w, http.StatusNotFound, "error", p, msg)
}

func (u *UI) render(w http.ResponseWriter, status int, name string, p *page, data any) {
	t := u.pages[name]
	p.Data = data
	if p.Nav == "" {
		p.Nav = name
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		u.log.Error("admin pages: rendering failed", "page", name, "error", err)
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(b.String()))
}
