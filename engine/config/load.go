package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

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
	Hash        string             // sha256 over every config file's path and bytes
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

// ErrNotRepository is returned by Load when the path cannot be read as a
// repository (missing, not a directory, unreadable).
var ErrNotRepository = errors.New("not a readable config repository")

var kindOfDir = map[string]schema.Kind{
	APIsDir:        schema.KindApi,
	CredentialsDir: schema.KindCredential,
	PoliciesDir:    schema.KindRateLimitPolicy,
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

// loaded is one parsed document of a kind folder.
type loaded struct {
	doc   *document
	kind  schema.Kind
	obj   any // *Api, *Credential or *RateLimitPolicy; nil when it did not decode
	diags Diagnostics
}

// loader carries the state of one Load.
type loader struct {
	dir      string
	settings *Settings
	setDoc   *document
	diags    Diagnostics

	protoMu sync.Mutex
	protos  map[string]*protoFile // descriptor sets by repository-relative path
}

// Load reads, validates and checks the repository at dir. Every finding is
// returned in Diagnostics, sorted; the Repository holds what could be read.
// A repository whose Diagnostics hold errors must not be served. The error
// is non-nil only when dir cannot be read at all.
func Load(dir string) (*Repository, Diagnostics, error) {
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
	files, walkDiags, err := listFiles(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: %v", dir, ErrNotRepository, err)
	}
	l := &loader{dir: abs, diags: walkDiags}
	repo := &Repository{Dir: abs}
	hash := sha256.New()

	// Settings first: other checks read them. A folder without
	// databus.yaml is not a repository: validating one (a CI step pointed
	// at the wrong folder) or reloading after the file was deleted must not
	// pass on the built-in defaults.
	l.settings = DefaultSettings()
	if data, err := os.ReadFile(filepath.Join(abs, SettingsFile)); err == nil {
		hashFile(hash, SettingsFile, data)
		l.loadSettings(data)
	} else if errors.Is(err, fs.ErrNotExist) {
		l.diags = append(l.diags, Diagnostic{File: SettingsFile, Line: 1, Column: 1, Severity: SevError, Message: missingSettings(dir, abs)})
	} else {
		l.diags = append(l.diags, Diagnostic{File: SettingsFile, Severity: SevError, Message: "cannot read: " + err.Error()})
	}
	repo.Settings = l.settings

	// Documents of the kind folders, in parallel.
	datas := make([][]byte, len(files))
	for i, f := range files {
		data, err := os.ReadFile(filepath.Join(abs, filepath.FromSlash(f)))
		if err != nil {
			l.diags = append(l.diags, Diagnostic{File: f, Severity: SevError, Message: "cannot read: " + err.Error()})
			continue
		}
		hashFile(hash, f, data)
		datas[i] = data
	}
	results := make([]*loaded, len(files))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if datas[i] != nil {
					results[i] = l.loadDocument(files[i], datas[i])
				}
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()

	var all []*loaded
	for _, r := range results {
		if r == nil {
			continue
		}
		l.diags = append(l.diags, r.diags...)
		all = append(all, r)
	}
	l.crossCheck(repo, all)
	// Descriptor sets are read by the APIs that name them; their bytes
	// count in the content hash, so a reload sees a changed set.
	for _, rel := range l.protoPaths() {
		if p := l.protos[rel]; p.data != nil {
			hashFile(hash, rel, p.data)
		}
	}
	repo.Hash = hex.EncodeToString(hash.Sum(nil))
	l.diags.Sort()
	return repo, l.diags, nil
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

func hashFile(h interface{ Write([]byte) (int, error) }, name string, data []byte) {
	fmt.Fprintf(h, "%s\x00%d\x00", name, len(data))
	h.Write(data)
}

// listFiles returns the repository-relative paths of every YAML file under
// the kind folders, sorted. Hidden files and folders are skipped; symlinked
// folders (Kubernetes ConfigMaps) are followed, each real folder once: a
// symlink loop or a second link to a folder already read is a warning at
// the link, and the files behind it are listed once.
func listFiles(abs string) ([]string, Diagnostics, error) {
	var files []string
	var diags Diagnostics
	w := &FolderWalk{
		File: func(_, rel string) {
			if isYAML(rel) {
				files = append(files, rel)
			}
		},
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
			return nil, nil, err
		}
	}
	sort.Strings(files)
	return files, diags, nil
}

// decodeStrict decodes data into out with unknown keys as errors. The schema
// has already refused unknown keys; this catches any drift between the
// schema and the Go types.
func decodeStrict(d *document, out any) bool {
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	dec.KnownFields(true)
	err := dec.Decode(out)
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
		switch v.Kind {
		case schema.UnknownKey:
			ptr := v.Pointer + "/" + escapePointer(v.Key)
			line, col := d.keyPos(ptr)
			d.errorAtLine(line, col, d.path(ptr), v.Message)
		case schema.MissingKey:
			line, col := d.pos(v.Pointer)
			if v.Pointer == "" {
				line, col = 1, 1
			}
			d.errorAtLine(line, col, d.path(v.Pointer), v.Message)
		default:
			d.errorf(v.Pointer, "%s", v.Message)
		}
	}
	return len(vs) == 0
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
	r := &loaded{kind: kindOfDir[dir]}
	d := parseDocument(file, data, &r.diags)
	if d == nil {
		return r
	}
	r.doc = d
	if k, ok := d.value.(map[string]any)["kind"].(string); ok && k != string(r.kind) && isKnownKind(k) {
		d.errorf("/kind", "a %s does not belong in %s/: expected kind %s (move the file to %s/)", k, dir, r.kind, folderOf(k))
		return r
	}
	if !validateSchema(d, r.kind) {
		return r
	}
	src := Source{File: file, Hash: sum(data)}
	switch r.kind {
	case schema.KindApi:
		a := &Api{}
		if decodeStrict(d, a) {
			a.Source = src
			a.lines = make(map[string]int, len(d.nodes))
			for ptr, n := range d.nodes {
				a.lines[ptr] = n.Line
			}
			l.checkAPI(d, a)
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
			p.applyDefaults(l.settings)
			l.checkPolicy(d, p)
			r.obj = p
		}
	}
	return r
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
// set verifies callers (DefaultKeyTemplate, DefaultKeyTemplateOpen).
func (p *RateLimitPolicy) applyDefaults(set *Settings) {
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
		if sec := set.APIPortal.Security.Enabled; sec != nil && !*sec {
			p.KeyTemplate = DefaultKeyTemplateOpen
		}
	}
}

// ParseAPI reads one API definition outside the repository (a draft sent
// to the debug invoke) and checks it like a file of apis/, including its
// references to the repository's policies and credentials. name is the
// file name its findings carry.
func ParseAPI(repo *Repository, name string, data []byte) (*Api, Diagnostics) {
	l := &loader{dir: repo.Dir, settings: repo.Settings}
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
