package config

import (
	"fmt"
	"sort"
	"strings"
)

// crossCheck gathers the documents into the repository and applies the rules
// that span files: uniqueness and references. It reads the documents and
// never changes them (a later Reload may reuse them).
func (l *loader) crossCheck(repo *Repository, all []*loaded) {
	n := len(all)
	type apiID struct{ code, version string }
	apiByID := make(map[apiID]*loaded, n)
	credByID := map[string]*loaded{}
	polByName := make(map[string]*loaded, n)
	type apiDoc struct {
		a *Api
		r *loaded
	}
	apis := make([]apiDoc, 0, n)
	var tests []*loaded
	// Documents the schema refused: an API's references are still checked;
	// a policy or credential that did not decode is not reported as
	// missing by the files that name it (its own file says what is wrong).
	var partialAPIs []apiDoc
	brokenPol, brokenCred := map[string]bool{}, map[string]bool{}

	// all is in file order, so "first" is stable.
	for _, r := range all {
		switch o := r.obj.(type) {
		case *Api:
			id := apiID{o.Code, o.Version}
			if first, dup := apiByID[id]; dup {
				r.at(&l.diags, SevError, "/code", "API %s is already defined in %s:%d; code+version must be unique", o.ID(), first.file, first.lineOf("/code"))
				continue
			}
			apiByID[id] = r
			apis = append(apis, apiDoc{o, r})
		case *Credential:
			if first, dup := credByID[o.AppID]; dup {
				r.at(&l.diags, SevError, "/appId", "appId %q is already defined in %s:%d; appIds must be unique", o.AppID, first.file, first.lineOf("/appId"))
				continue
			}
			credByID[o.AppID] = r
			repo.Credentials = append(repo.Credentials, o)
		case *RateLimitPolicy:
			if first, dup := polByName[o.Name]; dup {
				r.at(&l.diags, SevError, "/name", "policy %q is already defined in %s:%d; policy names must be unique", o.Name, first.file, first.lineOf("/name"))
				continue
			}
			polByName[o.Name] = r
			repo.Policies = append(repo.Policies, o)
		case *ApiTest:
			tests = append(tests, r)
		case nil:
			switch p := r.partial.(type) {
			case *Api:
				partialAPIs = append(partialAPIs, apiDoc{p, r})
			case *RateLimitPolicy:
				brokenPol[p.Name] = true
			case *Credential:
				brokenCred[p.AppID] = true
			}
		}
	}
	sort.Slice(apis, func(i, j int) bool {
		a, b := apis[i].a, apis[j].a
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return versionLess(a.Version, b.Version)
	})
	repo.APIs = make([]*Api, len(apis))
	for i, d := range apis {
		repo.APIs[i] = d.a
	}
	sort.Slice(repo.Credentials, func(i, j int) bool { return repo.Credentials[i].AppID < repo.Credentials[j].AppID })
	sort.Slice(repo.Policies, func(i, j int) bool { return repo.Policies[i].Name < repo.Policies[j].Name })

	portalPaths := append([]string{l.settings.APIPortal.BasePath}, l.settings.APIPortal.LegacyBasePaths...)
	var deprecated []*Api
	for _, a := range repo.APIs {
		if a.Status == StatusDeprecated {
			deprecated = append(deprecated, a)
		}
	}
	var polKnown, credKnown string // the lists in messages, made once
	for i, d := range append(apis, partialAPIs...) {
		a, r := d.a, d.r
		partial := i >= len(apis)
		if a.Policies == nil || a.Policies.RateLimit == "" {
			if !partial {
				r.at(&l.diags, SevWarning, "/code", "API %s has no rate-limit policy: set policies.rateLimit", a.ID())
			}
		} else if polByName[a.Policies.RateLimit] == nil && !brokenPol[a.Policies.RateLimit] {
			if polKnown == "" {
				polKnown = known(polNames(repo.Policies))
			}
			r.at(&l.diags, SevError, "/policies/rateLimit", "rate-limit policy %q not found in %s/ (known: %s)", a.Policies.RateLimit, PoliciesDir, polKnown)
		}
		if a.Auth != nil {
			for i, app := range a.Auth.Credentials {
				var c *Credential
				if cr := credByID[app]; cr != nil {
					c = cr.obj.(*Credential)
				}
				switch {
				case app == "" || c == nil && brokenCred[app]:
				case c == nil:
					if credKnown == "" {
						credKnown = known(credNames(repo.Credentials))
					}
					r.at(&l.diags, SevError, pointerOf("auth", "credentials", i), "credential %q not found in %s/ (known: %s)", app, CredentialsDir, credKnown)
				case !c.IsEnabled():
					r.at(&l.diags, SevWarning, pointerOf("auth", "credentials", i), "credential %q is disabled (%s): it cannot call this API", app, c.Source.File)
				}
			}
		}
		if len(deprecated) > 0 && !partial {
			checkDeprecatedRefs(&l.diags, r, a, deprecated, portalPaths)
		}
	}
	l.crossCheckTests(repo, tests)
}

// checkDeprecatedRefs warns when a step calls, through the portal, an API
// that is deprecated.
func checkDeprecatedRefs(diags *Diagnostics, r *loaded, a *Api, deprecated []*Api, portal []string) {
	for i, s := range a.Steps {
		if s.HTTP == nil || s.HTTP.URL == "" {
			continue
		}
		for _, target := range deprecated {
			if target == a {
				continue
			}
			for _, base := range portal {
				ref := base + "/" + target.Code + "/" + target.Version
				if at := strings.Index(s.HTTP.URL, ref); at >= 0 {
					rest := s.HTTP.URL[at+len(ref):]
					if rest == "" || strings.ContainsAny(rest[:1], "/?#") {
						r.at(diags, SevWarning, pointerOf("steps", i, "http", "url"), "calls API %s, which is deprecated (%s)", target.ID(), target.Source.File)
						break
					}
				}
			}
		}
	}
}

func versionLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func known(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func polNames(ps []*RateLimitPolicy) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func credNames(cs []*Credential) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.AppID
	}
	return out
}

// String describes the repository in one line.
func (r *Repository) String() string {
	s := plural(len(r.APIs), "API", "APIs") + ", " + plural(len(r.Credentials), "credential", "credentials") + ", " +
		plural(len(r.Policies), "policy", "policies")
	if len(r.Tests) > 0 {
		n := 0
		for _, t := range r.Tests {
			n += len(t.Cases)
		}
		s += ", " + plural(n, "test case", "test cases")
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
