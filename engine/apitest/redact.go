package apitest

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// alwaysRedacted are the headers whose values a report never shows as a
// stub received them, whatever storage.accessLog.redactHeaders says: the
// internal JWT, the site signature, the request signature.
var alwaysRedacted = []string{"Authorization", "Site-Signature", "ZT-Signature"}

// minRedacted is the shortest value scrubbed wherever it appears in a
// report (a shorter one would blank out unrelated text); the header's
// own place always shows ***.
const minRedacted = 4

// redactor keeps the values of sensitive headers out of a case's report:
// the headers storage.accessLog.redactHeaders names and alwaysRedacted, as
// the stubs received them. The sandbox may redact them already; the report
// does not rely on it.
type redactor struct {
	names  map[string]bool // canonical header names
	values map[string]bool
}

func newRedactor(configured []string) *redactor {
	r := &redactor{names: map[string]bool{}, values: map[string]bool{}}
	for _, n := range append(append([]string(nil), configured...), alwaysRedacted...) {
		r.names[http.CanonicalHeaderKey(n)] = true
	}
	return r
}

// sensitive reports whether the header name is redacted.
func (r *redactor) sensitive(name string) bool {
	return r != nil && r.names[http.CanonicalHeaderKey(name)]
}

// collect notes the values of h's sensitive headers.
func (r *redactor) collect(h http.Header) {
	if r == nil {
		return
	}
	for k, vs := range h {
		if !r.sensitive(k) {
			continue
		}
		for _, v := range vs {
			if len(v) >= minRedacted && v != "***" {
				r.values[v] = true
				// The value may also appear JSON-escaped (in a diff) or
				// without its scheme (a token read out of "Bearer x").
				b, _ := json.Marshal(v)
				r.values[strings.Trim(string(b), `"`)] = true
				if _, tok, ok := strings.Cut(v, " "); ok && len(tok) >= minRedacted {
					r.values[tok] = true
				}
			}
		}
	}
}

// scrub replaces the collected values in s with ***, longest first.
func (r *redactor) scrub(s string) string {
	if r == nil || len(r.values) == 0 || s == "" {
		return s
	}
	vs := make([]string, 0, len(r.values))
	for v := range r.values {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return len(vs[i]) > len(vs[j]) })
	for _, v := range vs {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

// apply scrubs the failures' messages and compared values.
func (r *redactor) apply(fs []*Failure) {
	for _, f := range fs {
		f.Message, f.Expected, f.Actual = r.scrub(f.Message), r.scrub(f.Expected), r.scrub(f.Actual)
	}
}
