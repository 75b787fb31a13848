package admin

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// CSRF proof for what a signed-in browser sends: the double-submit token
// the pages set in CSRFCookie and put in their forms (or, for the REST
// API, in the CSRFHeader), and an origin that is this listener.

// CSRFCookie holds a browser's double-submit CSRF token. Its path is "/",
// so the REST API sees it too.
const CSRFCookie = "databus_csrf"

// CSRFHeader carries the CSRF token of a REST call from a signed-in
// browser (the value of CSRFCookie, as the pages' forms carry it).
const CSRFHeader = "X-CSRF-Token"

// CrossSite reports whether r shows a browser's sign of coming from another
// origin: an Origin header that is not this host (or is "null"), or a
// Sec-Fetch-Site other than same-origin or none.
func CrossSite(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && !sameHost(o, r.Host) {
		return true
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	return false
}

// SameOrigin reports whether r proves it comes from this listener's own
// pages: not CrossSite, and with an Origin or a Sec-Fetch-Site header
// saying so (browsers send them on every state-changing request).
func SameOrigin(r *http.Request) bool {
	if CrossSite(r) {
		return false
	}
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// CheckCSRF reports whether r is not CrossSite and token, the CSRF token it
// sent in a form field or header, equals its CSRFCookie.
func CheckCSRF(r *http.Request, token string) bool {
	if CrossSite(r) {
		return false
	}
	c, err := r.Cookie(CSRFCookie)
	if err != nil || c.Value == "" || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), []byte(c.Value)) == 1
}

// safeMethod: requests that change nothing and need no CSRF proof.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
