package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	iofs "io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/schema"
)

// Repository is a loaded config repository: immutable once Load returns.
type Repository struct {
	Dir         string // absolute path of the repository
	Settings    *Settings
	APIs        []*Api             // sorted by code, then version
	Credentials []*Credential      // sorted by appId
	Policies    []*RateLimitPolicy // sorted by name
	// Tests are the contract tests of tests/, sorted by file (databus
	// test runs them; the gateway only checks them).
	Tests []*ApiTest
	// Hash is the content hash: sha256 over every config file's path and
	// the sha256 of its bytes (databus.yaml, the kind folders' files in
	// path order, then the descriptor sets the APIs name).
	Hash string
	// Loaded says what the load cost: files listed, read and parsed.
	Loaded LoadStats

	files *fileIndex // what the load learnt of each file, for Reload
}

// LoadStats says how much of the repository a load read and parsed
// (Reload reads and parses only what changed).
type LoadStats struct {
	Files  int // config files listed, databus.yaml included
	Read   int // files read (databus.yaml always; the others when their metadata changed)
	Parsed int // documents parsed and checked (the others were reused)
}

// API returns the API code:version, or nil.
func (r *Repository) API(code, version string) *Api {
	for _, a := range r.APIs {
		if a.Code == code && a.Version == version {
			return a
		}
	}
	return nil
}

// Credential returns the credential of appID, or nil.
func (r *Repository) Credential(appID string) *Credential {
	for _, c := range r.Credentials {
		if c.AppID == appID {
			return c
		}
	}
	return nil
}

// Policy returns the rate-limit policy called name, or nil.
func (r *Repository) Policy(name string) *RateLimitPolicy {
	for _, p := range r.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// The files and folders of a repository.
const (
	SettingsFile   = "databus.yaml"
	APIsDir        = "apis"
	CredentialsDir = "credentials"
	PoliciesDir    = "policies"
)

// KindDirs are the folders whose YAML files the loader reads, in the order
// it walks them.
var KindDirs = []string{APIsDir, CredentialsDir, PoliciesDir, TestsDir}

// ErrNotRepository is returned by Load when the path cannot be read as a
// repository (missing, not a directory, unreadable).
var ErrNotRepository = errors.New("not a readable config repository")

var kindOfDir = map[string]schema.Kind{
	APIsDir:        schema.KindApi,
	CredentialsDir: schema.KindCredential,
	PoliciesDir:    schema.KindRateLimitPolicy,
	TestsDir:       schema.KindApiTest,
}

// IsConfigFile reports whether a repository-relative, slash-separated path is
// one the loader reads. Watchers use it to ignore unrelated changes.
func IsConfigFile(rel string) bool {
	if rel == SettingsFile {
		return true
	}
	dir, _, ok := strings.Cut(rel, "/")
	if !ok {
		return false
	}
	_, known := kindOfDir[dir]
	return known && isYAML(rel) && !hidden(rel)
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

func hidden(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}

// loaded is one checked document of a kind folder. Once its Load returns
// it is immutable (a later Reload may reuse it) and holds no YAML tree.
type loaded struct {
	doc  *document // during its Load only
	file string
	kind schema.Kind
	obj  any // *Api, *Credential, *RateLimitPolicy or *ApiTest; nil when it did not decode
	// partial is, for a document the schema refused, what could still be
	// read of it: an *Api's references, a *RateLimitPolicy's name or a
	// *Credential's appId (see salvage).
	partial any
	diags   Diagnostics
	// anchors place the values the checks across files speak of.
	anchors []anchor
	// deps are the other files its checks read; dirBound: its checks
	// depend on the repository's absolute path (an absolute secret path).
	deps     []dep
	dirBound bool
}

// docView is what the checks of one document read of the settings.
type docView struct {
	securityOff  bool // apiPortal.security.enabled: false (policies' default key)
	jwtKey       bool // apiPortal.security.jwt.key is set (anonymous credentials)
	allowedHosts bool // gateway.webClient.allowedHosts is not empty (templated hosts)
	hooksServer  bool // hooks.server is set (site steps)
	hooksParty   bool // hooks.partyId is set (site steps)
}

func viewOf(s *Settings) docView {
	sec := s.APIPortal.Security.Enabled
	return docView{
		securityOff:  sec != nil && !*sec,
		jwtKey:       s.APIPortal.Security.JWT.Key != nil,
		allowedHosts: len(s.Gateway.WebClient.AllowedHosts) > 0,
		hooksServer:  s.Hooks.Server != "",
		hooksParty:   s.Hooks.PartyID != "",
	}
}

// anchor is where a value stands in its file.
type anchor struct {
	ptr       string
	line, col int32
}

// loader carries the state of one Load.
type loader struct {
	dir      string
	settings *Settings
	// view is all the checks of a kind folder's document read of the
	// settings: a document is checked again on Reload when its bytes,
	// this view or the files it names changed.
	view   docView
	setDoc *document
	diags  Diagnostics

	files *files // the repository's files, with what the previous Load learnt

	protoMu sync.Mutex
	protos  map[string]*protoFile // descriptor sets by repository-relative path
}

// Load reads, validates and checks the repository at dir. Every finding is
// returned in Diagnostics, sorted; the Repository holds what could be read.
// A repository whose Diagnostics hold errors must not be served. The error
// is non-nil only when dir cannot be read at all.
func Load(dir string) (*Repository, Diagnostics, error) {
	return load(dir, nil)
}

// Reload is Load reusing what the load of prev learnt: a file whose
// metadata is unchanged is not read again (in the same folder), and a
// document whose bytes, settings and referenced files are unchanged is
// not parsed or checked again (in any folder: a git revision's tree
// reuses the checkout's documents). The checks across files run over
// every document each time, so the findings are Load's. prev may be nil.
func Reload(dir string, prev *Repository) (*Repository, Diagnostics, error) {
	var idx *fileIndex
	if prev != nil {
		idx = prev.files
	}
	return load(dir, idx)
}

func load(dir string, prev *fileIndex) (*Repository, Diagnostics, error) {
	return loadHinted(dir, prev, nil)
}

// loadHinted is load told by a file watcher which files changed (nil:
// unknown).
func loadHinted(dir string, prev *fileIndex, h *hint) (*Repository, Diagnostics, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s: %w: not a directory", dir, ErrNotRepository)
	}
	var (
		list      []listed
		walkDiags Diagnostics
		hinted    bool
	)
	if h != nil {
		list, walkDiags, hinted = h.listFrom(abs, prev)
	}
	links := prev != nil && prev.links
	if !hinted {
		h = nil
		if list, walkDiags, links, err = listFiles(abs); err != nil {
			return nil, nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
		}
	}
	fs := newFiles(abs, prev)
	fs.idx.walkDiags, fs.idx.links = walkDiags, links
	fs.idx.listed = make([]string, len(list))
	for i, f := range list {
		fs.idx.listed[i] = f.rel
	}
	l := &loader{dir: abs, diags: append(Diagnostics(nil), walkDiags...), files: fs}
	repo := &Repository{Dir: abs, files: fs.idx}

	// Settings first: other checks read them. A folder without
	// databus.yaml is not a repository: validating one (a CI step pointed
	// at the wrong folder) or reloading after the file was deleted must not
	// pass on the built-in defaults.
	l.settings = DefaultSettings()
	if _, data, err := fs.read(SettingsFile, nil); err == nil {
		l.loadSettings(data)
	} else if errors.Is(err, iofs.ErrNotExist) {
		l.diags = append(l.diags, Diagnostic{File: SettingsFile, Line: 1, Column: 1, Severity: SevError, Message: missingSettings(dir, abs)})
	} else {
		l.diags = append(l.diags, Diagnostic{File: SettingsFile, Severity: SevError, Message: "cannot read: " + readErr(err)})
	}
	repo.Settings = l.settings
	// What the walk and the settings found (secret files the settings name
	// are not in the content hash: their findings are compared instead).
	settingsDiags := slices.Clone(l.diags)
	fs.idx.settingsDiags = settingsDiags
	l.view = viewOf(l.settings)
	fs.idx.view = l.view
	settingsSame := prev != nil && prev.view == l.view

	// Documents of the kind folders: each looked at, then reused when
	// unchanged or read, parsed and checked, in parallel (a cold load reads
	// and hashes every file: that is work to share too).
	results := make([]*loaded, len(list))
	entries := make([]*fileEntry, len(list))
	readErrs := make([]error, len(list))
	var parsed atomic.Int64
	one := func(i int) {
		f := list[i]
		e := h.unchanged(fs, f)
		var (
			data []byte
			err  error
		)
		if e == nil {
			e, data, err = fs.look(f.rel, f.st)
		}
		if err == nil {
			if r := fs.reusable(f.rel, e.sum, settingsSame); r != nil {
				results[i], entries[i] = r, e
				return
			}
			if data == nil {
				e, data, err = fs.read(f.rel, f.st)
			}
		}
		if err != nil {
			readErrs[i] = err
			return
		}
		entries[i] = e
		r := l.loadDocument(f.rel, data)
		r.doc = nil // what the checks across files need is in its anchors
		results[i] = r
		parsed.Add(1)
	}
	const batch = 64
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), (len(list)+batch-1)/batch); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(batch)) - batch
				if from >= len(list) {
					return
				}
				for i := from; i < min(from+batch, len(list)); i++ {
					one(i)
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range readErrs {
		if err != nil {
			l.diags = append(l.diags, Diagnostic{File: list[i].rel, Severity: SevError, Message: "cannot read: " + readErr(err)})
		}
	}

	var all []*loaded
	for i, r := range results {
		if r == nil {
			continue
		}
		if entries[i].res != r {
			// Entries are shared with the previous index: a new document
			// goes into a new one.
			e := *entries[i]
			e.res = r
			entries[i] = &e
			fs.put(list[i].rel, &e)
		}
		l.diags = append(l.diags, r.diags...)
		all = append(all, r)
	}

	// The content hash: settings, the kind folders' files in path order,
	// then the descriptor sets the APIs name (a reload sees a changed set).
	hash := contentHash{h: sha256.New()}
	if e := fs.idx.entries[SettingsFile]; e != nil {
		hash.add(SettingsFile, e.sum)
	}
	for i, f := range list {
		if entries[i] != nil {
			hash.add(f.rel, entries[i].sum)
		}
	}
	for _, d := range protoDeps(all) {
		hash.add(d.rel, d.sum)
	}
	repo.Hash = hex.EncodeToString(hash.h.Sum(nil))
	repo.Loaded = LoadStats{Files: len(list) + 1, Read: int(fs.reads.Load()), Parsed: int(parsed.Load()) + 1}

	// Every document reused and the same bytes as the previous load:
	// its outcome stands (the checks across files would find the same).
	if p := prev; p != nil && p.repo != nil && p.dir == abs && parsed.Load() == 0 && p.repo.Hash == repo.Hash && slices.Equal(p.settingsDiags, settingsDiags) {
		same := *p.repo
		same.Loaded, same.files = repo.Loaded, fs.idx
		fs.idx.repo, fs.idx.diags = &same, p.diags
		return &same, slices.Clone(p.diags), nil
	}

	l.crossCheck(repo, all)
	l.diags.Sort()
	fs.idx.repo, fs.idx.diags = repo, slices.Clone(l.diags)
	return repo, l.diags, nil
}

// protoDeps lists the descriptor sets the documents read that exist,
// sorted by path, each once.
func protoDeps(all []*loaded) []dep {
	seen := map[string]bool{}
	var out []dep
	for _, r := range all {
		for _, d := range r.deps {
			if d.proto && d.exists && !seen[d.rel] {
				seen[d.rel] = true
				out = append(out, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// missingSettings says why a folder without databus.yaml is refused, and
// where the repository probably is when a sub-folder holds one.
func missingSettings(dir, abs string) string {
	msg := fmt.Sprintf("%s is not a Databus config repository: expected %s (apiVersion: databus/v1, kind: Settings) at its top, beside %s/, %s/ and %s/",
		dir, SettingsFile, APIsDir, CredentialsDir, PoliciesDir)
	if found, _ := filepath.Glob(filepath.Join(abs, "*", SettingsFile)); len(found) > 0 {
		rel, _ := filepath.Rel(abs, filepath.Dir(found[0]))
		msg += fmt.Sprintf("; %s/%s exists: point the command at %s", filepath.ToSlash(rel), SettingsFile, filepath.ToSlash(filepath.Join(dir, rel)))
	}
	return msg
}

// contentHash is the content hash being computed: each file by its path
// and the sha256 of its bytes.
type contentHash struct {
	h   hash.Hash
	buf []byte
}

func (c *contentHash) add(name string, sum [32]byte) {
	c.buf = append(append(append(c.buf[:0], name...), 0), sum[:]...)
	c.h.Write(c.buf)
}

// listed is a file of a kind folder, with its metadata.
type listed struct {
	rel string
	st  iofs.FileInfo
}

// listFiles returns every YAML file under the kind folders, sorted by
// repository-relative path. Hidden files and folders are skipped; symlinked
// folders (Kubernetes ConfigMaps) are followed, each real folder once: a
// symlink loop or a second link to a folder already read is a warning at
// the link, and the files behind it are listed once.

// It also says whether a file is reached through a symlink or a link leads
// nowhere yet: a file watcher sees no event when such a target changes
// (see hint).
func listFiles(abs string) ([]listed, Diagnostics, bool, error) {
	var files []listed
	var diags Diagnostics
	links := false
	w := &FolderWalk{
		File: func(_, rel string, st iofs.FileInfo) {
			if isYAML(rel) {
				files = append(files, listed{rel, st})
			}
		},
		Link:     func(string) { links = true },
		Dangling: func(string) { links = true },
		Alias: func(rel, first string, loop bool) {
			msg := fmt.Sprintf("symlink loop: this link leads back to %s/, which contains it; not followed (remove the link)", first)
			if !loop {
				msg = fmt.Sprintf("this link leads to the folder already read as %s/; its files are read once, under %s/ (remove one of the two)", first, first)
			}
			diags = append(diags, Diagnostic{File: rel, Severity: SevWarning, Message: msg})
		},
	}
	for dir := range kindOfDir {
		if err := w.Walk(filepath.Join(abs, dir), dir); err != nil {
			return nil, nil, false, err
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	return files, diags, links, nil
}

// decodeStrict decodes the document into out. It decodes the parsed tree
// (the bytes are not parsed twice); unknown keys cannot reach it: the
// schema, which refuses them, has passed, and TestSchemaMatchesTypes keeps
// the schema and the Go types in step.
func decodeStrict(d *document, out any) bool {
	err := d.root.Decode(out)
	if err == nil {
		return true
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			line, msg := 1, e
			if m := lineMsgRE.FindStringSubmatch(e); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			d.errorAtLine(line, 1, "", msg)
		}
		return false
	}
	d.syntaxError(err)
	return false
}

var lineMsgRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// validateSchema reports the schema violations of d; true when there are none.
func validateSchema(d *document, kind schema.Kind) bool {
	vs := schema.Validate(kind, d.value)
	for _, v := range vs {
		d.reportViolation(v, v.Pointer)
	}
	return len(vs) == 0
}

// reportViolation reports a schema violation about the value at ptr (the
// violation's pointer, or where it stands in the file when it was found
// under a suggested key name).
func (d *document) reportViolation(v schema.Violation, ptr string) {
	switch v.Kind {
	case schema.UnknownKey:
		ptr += "/" + escapePointer(v.Key)
		line, col := d.keyPos(ptr)
		d.errorAtLine(line, col, d.path(ptr), v.Message)
	case schema.MissingKey:
		line, col := d.pos(ptr)
		if ptr == "" {
			line, col = 1, 1
		}
		d.errorAtLine(line, col, d.path(ptr), v.Message)
	default:
		d.errorf(ptr, "%s", v.Message)
	}
}

func (l *loader) loadSettings(data []byte) {
	d := parseDocument(SettingsFile, data, &l.diags)
	if d == nil {
		return
	}
	l.setDoc = d
	if !validateSchema(d, schema.KindSettings) {
		return
	}
	s := &Settings{}
	if !decodeStrict(d, s) {
		return
	}
	s.applyDefaults()
	s.Source = Source{File: SettingsFile, Hash: sum(data)}
	l.settings = s
	l.checkSettings(d, s)
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// loadDocument parses, validates and checks one file of a kind folder.
func (l *loader) loadDocument(file string, data []byte) *loaded {
	dir, _, _ := strings.Cut(file, "/")
	r := &loaded{file: file, kind: kindOfDir[dir]}
	d := parseDocument(file, data, &r.diags)
	if d == nil {
		return r
	}
	r.doc = d
	if k, ok := d.value.(map[string]any)["kind"].(string); ok && k != string(r.kind) && isKnownKind(k) {
		d.errorf("/kind", "a %s does not belong in %s/: expected kind %s (move the file to %s/)", k, dir, r.kind, folderOf(k))
		return r
	}
	if ok, partial, anchors := l.checkSchema(d, r.kind); !ok {
		r.partial, r.anchors = partial, anchors
		r.deps, r.dirBound = d.deps, d.dirBound
		return r
	}
	src := Source{File: file, Hash: sum(data)}
	switch r.kind {
	case schema.KindApi:
		a := &Api{}
		if decodeStrict(d, a) {
			a.Source = src
			l.checkAPI(d, a)
			a.exprs = d.exprs
			r.obj = a
		}
	case schema.KindCredential:
		c := &Credential{}
		if decodeStrict(d, c) {
			c.Source = src
			c.applyDefaults()
			l.checkCredential(d, c)
			r.obj = c
		}
	case schema.KindRateLimitPolicy:
		p := &RateLimitPolicy{}
		if decodeStrict(d, p) {
			p.Source = src
			p.applyDefaults(l.view.securityOff)
			l.checkPolicy(d, p)
			r.obj = p
		}
	case schema.KindApiTest:
		t := &ApiTest{}
		if decodeStrict(d, t) {
			t.Source = src
			t.takeValues(d)
			l.checkTest(d, t)
			r.obj = t
		}
	}
	r.deps, r.dirBound = d.deps, d.dirBound
	r.anchors = anchorsOf(d, r.obj)
	return r
}

// lineOf returns the line of ptr among r's anchors.
func (r *loaded) lineOf(ptr string) int { return int(r.anchor(ptr).line) }

// anchorsOf keeps where the values stand that the checks across files
// speak of: identities and references.
func anchorsOf(d *document, obj any) []anchor {
	var ptrs []string
	switch o := obj.(type) {
	case *Api:
		ptrs = append(ptrs, "/code", "/policies/rateLimit")
		if o.Auth != nil {
			for i := range o.Auth.Credentials {
				ptrs = append(ptrs, pointerOf("auth", "credentials", i))
			}
		}
		for i, s := range o.Steps {
			if s.HTTP != nil && s.HTTP.URL != "" {
				ptrs = append(ptrs, pointerOf("steps", i, "http", "url"))
			}
		}
	case *Credential:
		ptrs = append(ptrs, "/appId")
	case *RateLimitPolicy:
		ptrs = append(ptrs, "/name")
	case *ApiTest:
		ptrs = append(ptrs, o.anchorPointers()...)
	default:
		return nil
	}
	out := make([]anchor, len(ptrs))
	for i, p := range ptrs {
		line, col := d.pos(p)
		out[i] = anchor{ptr: p, line: int32(line), col: int32(col)}
	}
	return out
}

// anchor returns where ptr stands among r's anchors (1:1 when unknown).
func (r *loaded) anchor(ptr string) anchor {
	for _, a := range r.anchors {
		if a.ptr == ptr {
			return a
		}
	}
	return anchor{ptr: ptr, line: 1, col: 1}
}

// at places a finding of the checks across files at ptr. The anchors'
// pointers hold identifier keys and list indexes only, so the display
// path follows from the pointer.
func (r *loaded) at(diags *Diagnostics, sev Severity, ptr, format string, args ...any) {
	a := r.anchor(ptr)
	*diags = append(*diags, Diagnostic{File: r.file, Line: int(a.line), Column: int(a.col), Path: PointerPath(ptr), Severity: sev, Message: fmt.Sprintf(format, args...)})
}

func isKnownKind(k string) bool {
	return folderOf(k) != ""
}

func folderOf(kind string) string {
	for dir, k := range kindOfDir {
		if string(k) == kind {
			return dir
		}
	}
	return ""
}

func (c *Credential) applyDefaults() {
	if c.Enabled == nil {
		c.Enabled = boolp(true)
	}
	if c.SignatureType == "" {
		c.SignatureType = SignHMACSHA256
	}
	if c.EncryptionType == "" {
		c.EncryptionType = EncAES
	}
}

// applyDefaults fills in the policy; the default key depends on whether
// the portal verifies callers (DefaultKeyTemplate, DefaultKeyTemplateOpen).
func (p *RateLimitPolicy) applyDefaults(securityOff bool) {
	if p.Algorithm == "" {
		p.Algorithm = AlgoFixedWindow
	}
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.WindowSeconds == 0 {
		p.WindowSeconds = 60
	}
	if p.KeyTemplate == "" {
		p.KeyTemplate = DefaultKeyTemplate
		if securityOff {
			p.KeyTemplate = DefaultKeyTemplateOpen
		}
	}
}

// ParseAPI reads one API definition outside the repository (a draft sent
// to the debug invoke) and checks it like a file of apis/, including its
// references to the repository's policies and credentials. name is the
// file name its findings carry.
func ParseAPI(repo *Repository, name string, data []byte) (*Api, Diagnostics) {
	l := &loader{dir: repo.Dir, settings: repo.Settings, view: viewOf(repo.Settings)}
	r := l.loadDocument(APIsDir+"/"+name, data)
	diags := r.diags
	a, _ := r.obj.(*Api)
	if a != nil && r.doc != nil {
		r.doc.diags = &diags
		if a.Policies != nil && a.Policies.RateLimit != "" && repo.Policy(a.Policies.RateLimit) == nil {
			r.doc.errorf("/policies/rateLimit", "rate-limit policy %q not found in %s/", a.Policies.RateLimit, PoliciesDir)
		}
		if a.Auth != nil {
			for i, app := range a.Auth.Credentials {
				if repo.Credential(app) == nil {
					r.doc.errorf(pointerOf("auth", "credentials", i), "credential %q not found in %s/", app, CredentialsDir)
				}
			}
		}
	}
	diags.Sort()
	return a, diags
}

// readErr says why a file could not be read, without the path the
// finding already names (a PathError's operation and path).
func readErr(err error) string {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
