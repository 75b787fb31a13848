package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/engine/expr"
)

// TestsDir is the folder of the contract tests (kind ApiTest).
const TestsDir = "tests"

// MaxTestTimeout bounds a case's timeout: a pull request cannot make
// databus test wait longer than this for one case.
const MaxTestTimeout = 2 * time.Minute

// ApiTest is one file of contract tests (tests/**/*.yaml), run by databus
// test. The loader checks it like every other document; the runner is
// engine/apitest.
type ApiTest struct {
	APIVersion  string     `yaml:"apiVersion" json:"apiVersion"`
	Kind        string     `yaml:"kind" json:"kind"`
	Description string     `yaml:"description,omitempty" json:"description,omitempty"`
	API         string     `yaml:"api,omitempty" json:"api,omitempty"`
	Credential  string     `yaml:"credential,omitempty" json:"credential,omitempty"`
	Cases       []TestCase `yaml:"cases" json:"cases"`

	Source Source `yaml:"-" json:"-"`
}

// TestCase is one case of an ApiTest.
type TestCase struct {
	Name       string        `yaml:"name" json:"name"`
	API        string        `yaml:"api,omitempty" json:"api,omitempty"`
	Credential string        `yaml:"credential,omitempty" json:"credential,omitempty"`
	Keys       *TestKeys     `yaml:"keys,omitempty" json:"keys,omitempty"`
	Repeat     int           `yaml:"repeat,omitempty" json:"repeat,omitempty"`
	Timeout    Duration      `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Request    TestRequest   `yaml:"request,omitempty" json:"request,omitempty"`
	Stubs      []TestStub    `yaml:"stubs,omitempty" json:"stubs,omitempty"`
	Expect     *TestExpect   `yaml:"expect,omitempty" json:"expect,omitempty"`
	Places     *TestPlaces   `yaml:"-" json:"-"`
	compiled   *testPrograms // jq assertions as the loader compiled them
}

// TestPlaces are the lines of a case's parts, for failure messages.
type TestPlaces struct {
	Case     int            // the line of the case (its first key)
	Expect   map[string]int // expect key (code, message, response, assert[i], ran, skipped, accessLog, accessLog.<field>) -> line
	Stubs    []int          // stub i -> line
	StubKeys []map[string]int
}

// Line returns the line of the expectation key, else the case's.
func (p *TestPlaces) Line(key string) int {
	if p == nil {
		return 0
	}
	if l, ok := p.Expect[key]; ok {
		return l
	}
	return p.Case
}

// StubLine returns the line of stub i's key (expect.<k>), else the stub's.
func (p *TestPlaces) StubLine(i int, key string) int {
	if p == nil || i >= len(p.Stubs) {
		return 0
	}
	if l, ok := p.StubKeys[i][key]; ok {
		return l
	}
	return p.Stubs[i]
}

// testPrograms are the compiled jq assertions of a case.
type testPrograms struct {
	expect []*expr.Program
	stubs  [][]*expr.Program
}

// ExpectPrograms returns the compiled programs of expect.assert, in order
// (nil entries when the loader did not compile them).
func (c *TestCase) ExpectPrograms() []*expr.Program {
	if c.compiled == nil {
		return nil
	}
	return c.compiled.expect
}

// StubPrograms returns the compiled programs of stubs[i].expect.assert.
func (c *TestCase) StubPrograms(i int) []*expr.Program {
	if c.compiled == nil || i >= len(c.compiled.stubs) {
		return nil
	}
	return c.compiled.stubs[i]
}

// APIRef returns the API the case calls: its own, else the file's.
func (t *ApiTest) APIRef(c *TestCase) string {
	if c.API != "" {
		return c.API
	}
	return t.API
}

// CredentialOf returns the appId the case signs with: its own, else the
// file's ("" unsigned).
func (t *ApiTest) CredentialOf(c *TestCase) string {
	if c.Credential != "" {
		return c.Credential
	}
	return t.Credential
}

// TestKeys replace a credential's keys in a case.
type TestKeys struct {
	Encryption *TestKey `yaml:"encryption,omitempty" json:"encryption,omitempty"`
	Signature  *TestKey `yaml:"signature,omitempty" json:"signature,omitempty"`
}

// TestKey is a secret reference or a literal test-only value.
type TestKey struct {
	SecretRef string `yaml:"secretRef,omitempty" json:"secretRef,omitempty"`
	Value     string `yaml:"value,omitempty" json:"value,omitempty"`
}

// Resolve returns the key's bytes. A reference is read as the sandbox of
// databus test reads secrets (SecretRef.ResolveInRepo): only a file inside
// the repository, never the environment or a file elsewhere.
func (k *TestKey) Resolve(repoDir string) ([]byte, error) {
	if k.Value != "" {
		return []byte(k.Value), nil
	}
	return SecretRef{Ref: k.SecretRef}.ResolveInRepo(repoDir)
}

// TestRequest is the request of a case.
type TestRequest struct {
	Method      string            `yaml:"method,omitempty" json:"method,omitempty"`
	Query       map[string]string `yaml:"query,omitempty" json:"query,omitempty"`
	Headers     map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Tenant      string            `yaml:"tenant,omitempty" json:"tenant,omitempty"`
	Body        any               `yaml:"body,omitempty" json:"body,omitempty"`
	RawBody     *string           `yaml:"rawBody,omitempty" json:"rawBody,omitempty"`
	Nonce       string            `yaml:"nonce,omitempty" json:"nonce,omitempty"`
	ClockOffset SignedDuration    `yaml:"clockOffset,omitempty" json:"clockOffset,omitempty"`
	RemoteAddr  string            `yaml:"remoteAddr,omitempty" json:"remoteAddr,omitempty"`
	// HasBody: the file sets body (a null body included).
	HasBody bool `yaml:"-" json:"-"`
}

// SignedDuration is a Duration that may be negative ("-10m").
type SignedDuration time.Duration

// UnmarshalYAML parses a duration string with an optional sign.
func (d *SignedDuration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: expected a number with a unit such as 500ms or -10m", s)
	}
	*d = SignedDuration(v)
	return nil
}

// TestStub answers some of the flow's outbound calls.
type TestStub struct {
	Step    string      `yaml:"step,omitempty" json:"step,omitempty"`
	URL     string      `yaml:"url,omitempty" json:"url,omitempty"`
	Method  string      `yaml:"method,omitempty" json:"method,omitempty"`
	Service *ServiceRef `yaml:"service,omitempty" json:"service,omitempty"`
	// StubAnswer is the stub's one answer, when it has no sequence.
	StubAnswer `yaml:",inline"`
	// Sequence: the answers in turn, the last one repeating; excludes the
	// answer keys of StubAnswer.
	Sequence []StubAnswer `yaml:"sequence,omitempty" json:"sequence,omitempty"`
	Expect   *StubExpect  `yaml:"expect,omitempty" json:"expect,omitempty"`
}

// StubAnswer is one answer of a stub's sequence.
type StubAnswer struct {
	Status  int               `yaml:"status,omitempty" json:"status,omitempty"`
	Code    int               `yaml:"code,omitempty" json:"code,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    any               `yaml:"body,omitempty" json:"body,omitempty"`
	RawBody *string           `yaml:"rawBody,omitempty" json:"rawBody,omitempty"`
	Delay   Duration          `yaml:"delay,omitempty" json:"delay,omitempty"`
	Hang    bool              `yaml:"hang,omitempty" json:"hang,omitempty"`
	Reset   bool              `yaml:"reset,omitempty" json:"reset,omitempty"`
	HasBody bool              `yaml:"-" json:"-"`
}

// Answers returns what the stub answers, in turn (the last one repeating):
// its sequence, or its own answer keys as the only one.
func (s *TestStub) Answers() []StubAnswer {
	if len(s.Sequence) > 0 {
		return s.Sequence
	}
	return []StubAnswer{s.StubAnswer}
}

// AnswerRun is an item of expect.answers: Count answers of Status in a row
// (a status, or "STATUS xN").
type AnswerRun struct {
	Status, Count int
}

// UnmarshalYAML reads 429 or "200 x10".
func (a *AnswerRun) UnmarshalYAML(n *yaml.Node) error {
	st, cnt, found := strings.Cut(n.Value, " x")
	if !found {
		cnt = "1"
	}
	s, err1 := strconv.Atoi(st)
	c, err2 := strconv.Atoi(cnt)
	if err1 != nil || err2 != nil || c < 1 {
		return fmt.Errorf("bad answer %q: expected a status (429) or STATUS xN (200 x10)", n.Value)
	}
	a.Status, a.Count = s, c
	return nil
}

// ExpandAnswers lists the statuses of runs, one per answer.
func ExpandAnswers(runs []AnswerRun) []int {
	var out []int
	for _, r := range runs {
		for i := 0; i < r.Count && len(out) < 100000; i++ {
			out = append(out, r.Status)
		}
	}
	return out
}

// Describe names the stub in messages: step approve, GET http://..., service s/n.
func (s *TestStub) Describe() string {
	switch {
	case s.Step != "":
		return "step " + s.Step
	case s.URL != "":
		if s.Method != "" {
			return s.Method + " " + s.URL
		}
		return s.URL
	case s.Service != nil:
		return "service " + s.Service.Server + "/" + s.Service.Name
	}
	return "stub"
}

// StubExpect is what a stub must have received.
type StubExpect struct {
	Calls   *int              `yaml:"calls,omitempty" json:"calls,omitempty"`
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Path    string            `yaml:"path,omitempty" json:"path,omitempty"`
	Query   map[string]string `yaml:"query,omitempty" json:"query,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    any               `yaml:"body,omitempty" json:"body,omitempty"`
	Assert  []string          `yaml:"assert,omitempty" json:"assert,omitempty"`
	// HasBody: the file sets body.
	HasBody bool `yaml:"-" json:"-"`
}

// TestExpect is what the last answer of a case must be.
type TestExpect struct {
	Code      int            `yaml:"code,omitempty" json:"code,omitempty"`
	Answers   []AnswerRun    `yaml:"answers,omitempty" json:"answers,omitempty"`
	Encrypted *bool          `yaml:"encrypted,omitempty" json:"encrypted,omitempty"`
	Message   *string        `yaml:"message,omitempty" json:"message,omitempty"`
	Response  any            `yaml:"response,omitempty" json:"response,omitempty"`
	Assert    []string       `yaml:"assert,omitempty" json:"assert,omitempty"`
	Ran       []string       `yaml:"ran,omitempty" json:"ran,omitempty"`
	Skipped   []string       `yaml:"skipped,omitempty" json:"skipped,omitempty"`
	AccessLog map[string]any `yaml:"accessLog,omitempty" json:"accessLog,omitempty"`
	// HasResponse: the file sets response (a null response included).
	HasResponse bool `yaml:"-" json:"-"`
	// RanSet, SkippedSet: the file sets ran, skipped (an empty list included).
	RanSet, SkippedSet bool `yaml:"-" json:"-"`
}

// ParseAPIRef splits "code:version".
func ParseAPIRef(s string) (code, version string, ok bool) {
	code, version, ok = strings.Cut(s, ":")
	return code, version, ok && code != "" && version != ""
}

// checkTest checks one ApiTest document on its own: names, jq assertions,
// stub shapes. References to APIs and credentials are checked across files
// (crossCheckTests).
func (l *loader) checkTest(d *document, t *ApiTest) {
	names := map[string]int{}
	for i := range t.Cases {
		c := &t.Cases[i]
		ptr := pointerOf("cases", i)
		if j, dup := names[c.Name]; dup {
			d.errorf(ptr+"/name", "duplicate case name %q (first at cases[%d], line %d): names are unique within a file", c.Name, j, lineOf(d, pointerOf("cases", j, "name")))
		} else {
			names[c.Name] = i
		}
		if t.APIRef(c) == "" {
			d.errorAtKey(ptr, "the case names no API: set api (code:version) on the case or at the top of the file")
		}
		_, c.Request.HasBody = d.nodes[ptr+"/request/body"]
		if c.Request.HasBody && c.Request.RawBody != nil {
			d.errorf(ptr+"/request/rawBody", "body and rawBody exclude each other: keep one")
		}
		if k := c.Keys; k != nil {
			for _, p := range []struct {
				name string
				key  *TestKey
			}{{"encryption", k.Encryption}, {"signature", k.Signature}} {
				if p.key == nil {
					continue
				}
				kp := ptr + "/keys/" + p.name
				if p.key.Value != "" {
					d.warnf(kp+"/value", "a literal key is a committed secret: acceptable for keys that exist only in tests; reference a real key with secretRef")
				} else {
					l.checkSecret(d, kp+"/secretRef", &SecretRef{Ref: p.key.SecretRef})
				}
			}
		}
		checkPositive(d, ptr+"/timeout", c.Timeout)
		if c.Timeout.D() > MaxTestTimeout {
			d.errorf(ptr+"/timeout", "timeout %s is longer than %s, the most a case may take", c.Timeout.D(), MaxTestTimeout)
		}
		progs := &testPrograms{stubs: make([][]*expr.Program, len(c.Stubs))}
		for j := range c.Stubs {
			s := &c.Stubs[j]
			sp := pointerOf("cases", i, "stubs", j)
			n := 0
			for _, set := range []bool{s.Step != "", s.URL != "", s.Service != nil} {
				if set {
					n++
				}
			}
			switch {
			case n == 0:
				d.errorAtKey(sp, "a stub needs step (a step id of the API), url or service {server, name}: say which calls it answers")
			case n > 1:
				d.errorAtKey(sp, "step, url and service exclude each other: a stub answers the calls of one of them")
			}
			if s.Method != "" && s.Step != "" {
				d.errorf(sp+"/method", "method narrows url or service stubs; a step stub answers every call of its step")
			}
			checkAnswer(d, sp, &s.StubAnswer)
			if len(s.Sequence) > 0 {
				for _, k := range []string{"status", "code", "headers", "body", "rawBody", "delay", "hang", "reset"} {
					if _, ok := d.nodes[sp+"/"+k]; ok {
						d.errorf(sp+"/"+k, "sequence lists the stub's answers: put %s in its items, not beside it", k)
					}
				}
			}
			for k := range s.Sequence {
				checkAnswer(d, pointerJoin(sp, "sequence", k), &s.Sequence[k])
			}
			if s.Delay != 0 && c.Timeout != 0 && s.Delay > c.Timeout {
				d.errorf(sp+"/delay", "delay %s is longer than the case's timeout %s", s.Delay.D(), c.Timeout.D())
			}
			if e := s.Expect; e != nil {
				_, e.HasBody = d.nodes[sp+"/expect/body"]
				for k, src := range e.Assert {
					progs.stubs[j] = append(progs.stubs[j], compileAssert(d, pointerJoin(sp, "expect", "assert", k), src))
				}
			}
		}
		if e := c.Expect; e != nil {
			if n, want := len(ExpandAnswers(e.Answers)), max(c.Repeat, 1); len(e.Answers) > 0 && n != want {
				d.errorf(ptr+"/expect/answers", "expect.answers lists %d answers, the case sends %d (repeat): list one status per answer", n, want)
			}
			_, e.HasResponse = d.nodes[ptr+"/expect/response"]
			_, e.RanSet = d.nodes[ptr+"/expect/ran"]
			_, e.SkippedSet = d.nodes[ptr+"/expect/skipped"]
			for k, src := range e.Assert {
				progs.expect = append(progs.expect, compileAssert(d, pointerJoin(ptr, "expect", "assert", k), src))
			}
		}
		c.compiled = progs
		c.Places = placesOf(d, i, c)
	}
}

// compileAssert compiles a jq assertion, reporting where it fails.
func compileAssert(d *document, ptr, src string) *expr.Program {
	checkJQ(d, ptr, src)
	return d.exprs[ptr].prog
}

// placesOf records the lines of case i's parts.
func placesOf(d *document, i int, c *TestCase) *TestPlaces {
	ptr := pointerOf("cases", i)
	p := &TestPlaces{Case: lineOf(d, ptr), Expect: map[string]int{}}
	if c.Expect != nil {
		for _, k := range []string{"code", "answers", "encrypted", "message", "response", "ran", "skipped", "accessLog"} {
			if n, ok := d.keys[ptr+"/expect/"+k]; ok {
				p.Expect[k] = n.Line
			}
		}
		for k := range c.Expect.Assert {
			p.Expect[fmt.Sprintf("assert[%d]", k)] = lineOf(d, pointerJoin(ptr, "expect", "assert", k))
		}
		for f := range c.Expect.AccessLog {
			if n, ok := d.keys[pointerJoin(ptr, "expect", "accessLog", f)]; ok {
				p.Expect["accessLog."+f] = n.Line
			}
		}
	}
	for j, s := range c.Stubs {
		sp := pointerOf("cases", i, "stubs", j)
		p.Stubs = append(p.Stubs, lineOf(d, sp))
		keys := map[string]int{}
		if s.Expect != nil {
			for _, k := range []string{"calls", "method", "path", "query", "headers", "body"} {
				if n, ok := d.keys[sp+"/expect/"+k]; ok {
					keys["expect."+k] = n.Line
				}
			}
			for k := range s.Expect.Assert {
				keys[fmt.Sprintf("expect.assert[%d]", k)] = lineOf(d, pointerJoin(sp, "expect", "assert", k))
			}
		}
		p.StubKeys = append(p.StubKeys, keys)
	}
	return p
}

// takeValues replaces the free-form values (bodies, expected responses,
// access-log fields) with their JSON-shaped form as the loader read them
// (numbers as json.Number, maps with string keys), so that they compare
// with what a run decodes from JSON.
func (t *ApiTest) takeValues(d *document) {
	for i := range t.Cases {
		c := &t.Cases[i]
		ptr := pointerOf("cases", i)
		c.Request.Body = valueAt(d.value, ptr+"/request/body")
		for j := range c.Stubs {
			s := &c.Stubs[j]
			sp := pointerJoin(ptr, "stubs", j)
			s.Body = valueAt(d.value, sp+"/body")
			for k := range s.Sequence {
				s.Sequence[k].Body = valueAt(d.value, pointerJoin(sp, "sequence", k, "body"))
			}
			if s.Expect != nil {
				s.Expect.Body = valueAt(d.value, sp+"/expect/body")
			}
		}
		if e := c.Expect; e != nil {
			e.Response = valueAt(d.value, ptr+"/expect/response")
			if m, ok := valueAt(d.value, ptr+"/expect/accessLog").(map[string]any); ok {
				e.AccessLog = m
			}
		}
	}
}

// valueAt returns the value at a JSON pointer of v, or nil.
func valueAt(v any, ptr string) any {
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch x := v.(type) {
		case map[string]any:
			v = x[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// anchorPointers are the values of the file the checks across files speak
// of: the API and credential references, the stub step ids and the
// expected step ids.
func (t *ApiTest) anchorPointers() []string {
	ptrs := []string{"/api", "/credential"}
	for i, c := range t.Cases {
		ptr := pointerOf("cases", i)
		ptrs = append(ptrs, ptr, ptr+"/api", ptr+"/credential")
		for j, s := range c.Stubs {
			if s.Step != "" {
				ptrs = append(ptrs, pointerJoin(ptr, "stubs", j, "step"))
			}
		}
		if e := c.Expect; e != nil {
			for j := range e.Ran {
				ptrs = append(ptrs, pointerJoin(ptr, "expect", "ran", j))
			}
			for j := range e.Skipped {
				ptrs = append(ptrs, pointerJoin(ptr, "expect", "skipped", j))
			}
		}
	}
	return ptrs
}

// crossCheckTests checks what the tests name in other files: each case's
// API (code:version) and credential exist, its stubs' step ids are http
// or rpc steps of that API, and its expected step ids are steps of it.
func (l *loader) crossCheckTests(repo *Repository, tests []*loaded) {
	var apiKnown, credKnown string
	for _, r := range tests {
		t := r.obj.(*ApiTest)
		for i := range t.Cases {
			c := &t.Cases[i]
			ptr := pointerOf("cases", i)
			ref := t.APIRef(c)
			at := ptr + "/api"
			if c.API == "" {
				at = "/api"
			}
			var api *Api
			if ref != "" {
				code, version, _ := ParseAPIRef(ref)
				if api = repo.API(code, version); api == nil {
					if apiKnown == "" {
						apiKnown = known(apiNames(repo.APIs))
					}
					r.at(&l.diags, SevError, at, "case %q: API %s not found in %s/ (known: %s)", c.Name, ref, APIsDir, apiKnown)
				}
			}
			if app := t.CredentialOf(c); app != "" && repo.Credential(app) == nil {
				at := ptr + "/credential"
				if c.Credential == "" {
					at = "/credential"
				}
				if credKnown == "" {
					credKnown = known(credNames(repo.Credentials))
				}
				r.at(&l.diags, SevError, at, "case %q: credential %q not found in %s/ (known: %s)", c.Name, app, CredentialsDir, credKnown)
			}
			if api == nil {
				continue
			}
			steps := map[string]string{}
			var ids []string
			for _, s := range api.Steps {
				steps[s.ID] = s.Type
				ids = append(ids, s.ID)
			}
			for j, s := range c.Stubs {
				if s.Step == "" {
					continue
				}
				sp := pointerJoin(ptr, "stubs", j, "step")
				switch typ, ok := steps[s.Step]; {
				case !ok:
					r.at(&l.diags, SevError, sp, "API %s has no step %q (steps: %s)", api.ID(), s.Step, strings.Join(ids, ", "))
				case typ != StepHTTP && typ != StepRPC:
					r.at(&l.diags, SevError, sp, "step %q of API %s is of type %s, which calls nothing: stubs answer http and rpc steps", s.Step, api.ID(), typ)
				}
			}
			if e := c.Expect; e != nil {
				for _, list := range []struct {
					key string
					ids []string
				}{{"ran", e.Ran}, {"skipped", e.Skipped}} {
					for j, id := range list.ids {
						if _, ok := steps[id]; !ok {
							r.at(&l.diags, SevError, pointerJoin(ptr, "expect", list.key, j), "API %s has no step %q (steps: %s)", api.ID(), id, strings.Join(ids, ", "))
						}
					}
				}
			}
		}
		repo.Tests = append(repo.Tests, t)
	}
}

func apiNames(as []*Api) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID()
	}
	return out
}

// checkAnswer checks one answer of a stub (its own, or an item of its
// sequence) at ptr, and notes whether the file sets its body.
func checkAnswer(d *document, ptr string, a *StubAnswer) {
	_, a.HasBody = d.nodes[ptr+"/body"]
	if a.HasBody && a.RawBody != nil {
		d.errorf(ptr+"/rawBody", "body and rawBody exclude each other: keep one")
	}
	if a.Hang && a.Reset {
		d.errorf(ptr+"/reset", "hang and reset exclude each other: keep one")
	}
	checkPositive(d, ptr+"/delay", a.Delay)
}
