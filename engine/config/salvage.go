package config

import (
	"sort"
	"strings"

	"github.com/databus-gateway/databus/schema"
)

// A document the schema refuses does not decode, so the checks that need a
// decoded value (step order, references, compiled programs) would wait for
// the next round. salvage makes the checks that need no decoded document on
// the parts the schema did accept: every jq program and ${...} template
// that is a string where one is expected, the scripts, and the references
// by name (kept as a partial value for the checks across files). A key the
// schema refused as a likely misspelling (stpes: for steps:) is read under
// the name it suggests, so that its contents are checked too (against the
// schema and by these checks) and reported at the misspelled key.
type salvage struct {
	d     *document
	value any               // d.value, misspelled keys renamed
	alias map[string]string // pointer under the suggested name -> pointer in the file
	bad   []string          // pointers (under suggested names) of refused values
}

// realPtr maps a pointer under a suggested name to the file's pointer.
func (s *salvage) realPtr(ptr string) string {
	for to, from := range s.alias {
		if ptr == to || strings.HasPrefix(ptr, to+"/") {
			return from + ptr[len(to):]
		}
	}
	return ptr
}

// refused reports whether the value at ptr, or one of its parents, broke
// the schema.
func (s *salvage) refused(ptr string) bool {
	for _, b := range s.bad {
		if ptr == b || strings.HasPrefix(ptr, b+"/") || b == "" {
			return true
		}
	}
	return false
}

// checkSchema validates d against kind and reports the violations; when
// there are any, it also reports the salvage checks of kind. It returns
// true when the document passed the schema, and otherwise the partial
// value the checks across files read (nil when none) and its anchors.
func (l *loader) checkSchema(d *document, kind schema.Kind) (ok bool, partial any, anchors []anchor) {
	vs := schema.Validate(kind, d.value)
	if len(vs) == 0 {
		return true, nil, nil
	}
	s := &salvage{d: d, value: cloneValue(d.value), alias: map[string]string{}}
	// Read misspelled keys under the names they suggest, when the object
	// does not have that key already.
	supplied := map[string]bool{}
	for _, v := range vs {
		if v.Kind != schema.UnknownKey || v.Suggestion == "" {
			continue
		}
		m, isMap := valueAt(s.value, v.Pointer).(map[string]any)
		if !isMap {
			continue
		}
		if _, has := m[v.Suggestion]; has {
			continue
		}
		m[v.Suggestion] = m[v.Key]
		delete(m, v.Key)
		to := v.Pointer + "/" + escapePointer(v.Suggestion)
		s.alias[to] = v.Pointer + "/" + escapePointer(v.Key)
		supplied[to] = true
	}
	for _, v := range vs {
		// A required key the misspelling stands for is not missing: the
		// unknown-key finding already names it.
		if v.Kind == schema.MissingKey && supplied[v.Pointer+"/"+escapePointer(v.Key)] {
			continue
		}
		d.reportViolation(v, v.Pointer)
	}
	again := vs
	if len(s.alias) > 0 {
		again = schema.Validate(kind, s.value)
		for _, v := range again {
			ptr := v.Pointer
			if v.Kind == schema.UnknownKey {
				ptr += "/" + escapePointer(v.Key)
			}
			// Only what lies under a renamed key is new: the rest was
			// reported above.
			if real := s.realPtr(ptr); real != ptr {
				d.reportViolation(v, s.realPtr(v.Pointer))
			}
		}
	}
	for _, v := range again {
		switch v.Kind {
		case schema.BadValue:
			s.bad = append(s.bad, v.Pointer)
		case schema.UnknownKey:
			s.bad = append(s.bad, v.Pointer+"/"+escapePointer(v.Key))
		}
	}
	switch kind {
	case schema.KindApi:
		a := s.api()
		return false, a, s.anchors(a)
	case schema.KindRateLimitPolicy:
		if t, ok := s.str("/keyTemplate"); ok {
			if err := CheckKeyTemplate(t); err != nil {
				d.errorf(s.realPtr("/keyTemplate"), "%v", err)
			}
		}
		if name, ok := s.str("/name"); ok {
			return false, &RateLimitPolicy{Name: name}, nil
		}
	case schema.KindCredential:
		if app, ok := s.str("/appId"); ok {
			return false, &Credential{AppID: app}, nil
		}
	}
	return false, nil, nil
}

// str returns the string at ptr when the schema accepted it.
func (s *salvage) str(ptr string) (string, bool) {
	if s.refused(ptr) {
		return "", false
	}
	v, ok := valueAt(s.value, ptr).(string)
	return v, ok && v != ""
}

func (s *salvage) jq(ptr string) {
	if src, ok := s.str(ptr); ok {
		checkJQ(s.d, s.realPtr(ptr), src)
	}
}

func (s *salvage) template(ptr string) {
	if src, ok := s.str(ptr); ok {
		checkTemplate(s.d, s.realPtr(ptr), src)
	}
}

func (s *salvage) templates(ptr string) {
	m, _ := valueAt(s.value, ptr).(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.template(ptr + "/" + escapePointer(k))
	}
}

func (s *salvage) transforms(ptr string) {
	for _, phase := range []string{"request", "response", "error"} {
		s.jq(ptr + "/" + phase)
	}
}

// api checks an Api's expressions and scripts and returns its references
// (with code and version when they are strings) for the checks across files.
func (s *salvage) api() *Api {
	s.transforms("/transforms")
	steps, _ := valueAt(s.value, "/steps").([]any)
	for i := range steps {
		ptr := pointerOf("steps", i)
		if s.refused(ptr) {
			continue
		}
		s.jq(ptr + "/when")
		s.transforms(ptr + "/transforms")
		h := ptr + "/http"
		s.template(h + "/url")
		s.templates(h + "/headers")
		s.templates(h + "/query")
		s.jq(h + "/poll/until")
		s.jq(h + "/poll/failWhen")
		s.jq(h + "/multipart/content")
		s.templates(h + "/multipart/fields")
		sc := ptr + "/script"
		lang, _ := valueAt(s.value, sc+"/lang").(string)
		if src, ok := s.str(sc + "/source"); ok && (lang == "" || lang == "javascript") {
			checkScript(s.d, s.realPtr(sc), &Script{Lang: "javascript", Source: src})
		}
	}
	a := &Api{}
	a.Code, _ = s.str("/code")
	a.Version, _ = s.str("/version")
	if p, ok := s.str("/policies/rateLimit"); ok {
		a.Policies = &ApiPolicies{RateLimit: p}
	}
	if list, ok := valueAt(s.value, "/auth/credentials").([]any); ok {
		a.Auth = &Auth{Credentials: make([]string, len(list))}
		for i := range list {
			// A refused entry stays "": the checks across files skip it.
			a.Auth.Credentials[i], _ = s.str(pointerOf("auth", "credentials", i))
		}
	}
	return a
}

// anchors places the partial value's references (under suggested names)
// at the file's positions.
func (s *salvage) anchors(a *Api) []anchor {
	ptrs := []string{"/code", "/policies/rateLimit"}
	if a.Auth != nil {
		for i := range a.Auth.Credentials {
			ptrs = append(ptrs, pointerOf("auth", "credentials", i))
		}
	}
	out := make([]anchor, len(ptrs))
	for i, p := range ptrs {
		line, col := s.d.pos(s.realPtr(p))
		out[i] = anchor{ptr: p, line: int32(line), col: int32(col)}
	}
	return out
}

// cloneValue copies the maps and lists of a decoded document.
func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = cloneValue(e)
		}
		return l
	}
	return v
}
