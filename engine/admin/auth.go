package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/databus-gateway/databus/engine/snapshot"
)

// Admin authentication, for the REST API and the pages alike: a token of
// admin.tokens, sent as "Authorization: Bearer <token>", or, from a
// browser signed in on the pages, the SessionCookie naming a session of
// Sessions; the token's role decides what it may do. A request that
// changes something (any method but GET, HEAD and OPTIONS) with the
// cookie also needs CSRF proof (CheckCSRF and SameOrigin). Without
// admin.tokens in databus.yaml the admin listener is bound to loopback and
// asks for no token, but refuses state changes that a browser marks as
// cross-site.

// Roles of admin tokens.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleRegistry = "registry"
)

// SessionCookie carries the session id of a signed-in browser.
const SessionCookie = "databus_admin"

// ErrNoToken: admin.tokens are configured and the request carries none of
// them.
var ErrNoToken = errors.New("admin token required: Authorization: Bearer <token> (admin.tokens in databus.yaml)")

// RoleError: the token is known, but its role does not allow the request.
type RoleError struct {
	Token, Has, Needs string
}

func (e *RoleError) Error() string {
	return fmt.Sprintf("token %q has role %s; this needs %s", e.Token, e.Has, e.Needs)
}

// Authorize checks tok, a token as sent, for role against snap's admin
// tokens: the token it matched (nil when no admin.tokens are configured
// and none is asked for), ErrNoToken, or a *RoleError.
func Authorize(snap *snapshot.Snapshot, tok, role string) (*snapshot.AdminToken, error) {
	if len(snap.Settings.Admin.Tokens) == 0 {
		return nil, nil
	}
	t := match(snap.AdminTokens, tok)
	if t == nil {
		return nil, ErrNoToken
	}
	if !allowed(t.Role, role) {
		return t, &RoleError{Token: t.Name, Has: t.Role, Needs: role}
	}
	return t, nil
}

// bearer is the token of an "Authorization: Bearer <token>" header (the
// scheme is case-insensitive, RFC 7235), or "" for any other header: a
// bare token without the scheme is not accepted.
func bearer(h string) string {
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// match finds the token whose secret equals tok, comparing every token in
// constant time.
func match(tokens []snapshot.AdminToken, tok string) *snapshot.AdminToken {
	var found *snapshot.AdminToken
	for i := range tokens {
		if subtle.ConstantTimeCompare(tokens[i].Secret, []byte(tok)) == 1 && tok != "" {
			found = &tokens[i]
		}
	}
	return found
}

// allowed: viewer endpoints admit viewers and operators; operator endpoints
// operators; registry endpoints the registry role (and operators).
func allowed(has, needs string) bool {
	switch needs {
	case RoleViewer:
		return has == RoleViewer || has == RoleOperator
	case RoleOperator:
		return has == RoleOperator
	case RoleRegistry:
		return has == RoleRegistry || has == RoleOperator
	}
	return false
}

// Require wraps h with authentication for role: 401 without a known token
// or live session, 403 for a token whose role does not allow it, and 403
// for a state-changing request authenticated by the session cookie without
// CSRF proof (the CSRFHeader matching the CSRFCookie, from a same-origin
// page) or, without admin.tokens, marked cross-site by the browser; all in
// the admin envelope.
func (a *API) Require(role string, h http.HandlerFunc) http.HandlerFunc {
	return a.RequireWith(role, func(w http.ResponseWriter, status int, msg string) {
		fail(w, status, "%s", msg)
	}, h)
}

// Deny writes a refusal of Require: the HTTP status and what was wrong.
type Deny func(w http.ResponseWriter, status int, msg string)

// RequireWith is Require answering its refusals with deny, for endpoints
// whose clients expect another envelope (the FATE Flow registry answers
// {retcode, retmsg}). The checks and statuses are Require's.
func (a *API) RequireWith(role string, deny Deny, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		snap := a.gw.Current()
		if snap == nil {
			deny(w, http.StatusServiceUnavailable, "no configuration loaded")
			return
		}
		t, via, err := a.sessions.Authenticate(snap, r, role)
		var re *RoleError
		switch {
		case errors.As(err, &re):
			deny(w, http.StatusForbidden, err.Error())
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="databus-admin"`)
			deny(w, http.StatusUnauthorized, err.Error())
			return
		}
		if !safeMethod(r.Method) {
			switch {
			case via == ViaSession && !(SameOrigin(r) && CheckCSRF(r, r.Header.Get(CSRFHeader))):
				deny(w, http.StatusForbidden, fmt.Sprintf("%s %s with the sign-in cookie needs CSRF proof: the %s header set to the %s cookie, from a page of this listener; other clients send Authorization: Bearer <token>", r.Method, r.URL.Path, CSRFHeader, CSRFCookie))
				return
			case via == ViaNone && CrossSite(r):
				deny(w, http.StatusForbidden, fmt.Sprintf("%s %s: cross-site request refused", r.Method, r.URL.Path))
				return
			}
		}
		if t != nil {
			r = r.WithContext(withToken(r.Context(), t))
		}
		h(w, r)
	}
}

type tokenKey struct{}

func withToken(ctx context.Context, t *snapshot.AdminToken) context.Context {
	return context.WithValue(ctx, tokenKey{}, t.Name)
}

// tokenName is the name of the token that authenticated the request.
func tokenName(ctx context.Context) string {
	n, _ := ctx.Value(tokenKey{}).(string)
	return n
}
