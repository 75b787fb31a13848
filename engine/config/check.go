package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"

	"github.com/databus-gateway/databus/engine/egress"
	"github.com/databus-gateway/databus/engine/expr"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/internal/safefile"
	"github.com/databus-gateway/databus/schema"
)

// ParsePrefix parses an IP ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8")
// into a prefix; a bare IP is a single-address prefix.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q: expected e.g. 10.0.0.0/8 or fd00::/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad IP %q: expected an IPv4 or IPv6 address or a CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (l *loader) checkIPList(d *document, ptr string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			d.errorf(pointerJoin(ptr, i), "%v", err)
		}
	}
}

func pointerJoin(ptr string, tokens ...any) string { return ptr + pointerOf(tokens...) }

func (l *loader) checkSettings(d *document, s *Settings) {
	p := s.APIPortal
	seen := map[string]string{p.BasePath: "apiPortal.basePath"}
	for i, lp := range p.LegacyBasePaths {
		if first, dup := seen[lp]; dup {
			d.errorf(pointerOf("apiPortal", "legacyBasePaths", i), "path %q is already served by %s", lp, first)
		}
		seen[lp] = fmt.Sprintf("apiPortal.legacyBasePaths[%d]", i)
	}
	if p.MaxBodyBytesInFlight < p.MaxBodyBytes {
		d.errorf("/apiPortal/maxBodyBytesInFlight", "%d is less than apiPortal.maxBodyBytes (%d): no body of the largest size could ever be read; expected at least maxBodyBytes", p.MaxBodyBytesInFlight, p.MaxBodyBytes)
	}
	l.checkIPList(d, "/apiPortal/allowedIps", p.AllowedIPs)
	l.checkIPList(d, "/apiPortal/deniedIps", p.DeniedIPs)
	l.checkIPList(d, "/apiPortal/trustedProxies", p.TrustedProxies)
	if k := p.Security.JWT.Key; k != nil {
		l.checkSecret(d, "/apiPortal/security/jwt/key/secretRef", k)
	}
	if s.Redis.Addr != "" {
		if _, _, err := net.SplitHostPort(s.Redis.Addr); err != nil {
			d.errorf("/redis/addr", "bad address %q: expected host:port", s.Redis.Addr)
		}
	}
	for i, a := range s.Redis.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			d.errorf(pointerOf("redis", "addrs", i), "bad address %q: expected host:port", a)
		}
	}
	if s.Redis.Addr != "" && len(s.Redis.Addrs) > 0 {
		d.errorAtKey("/redis/addrs", "redis.addr and redis.addrs exclude each other: addr for one Redis, addrs for a Cluster or Sentinels")
	}
	if s.Redis.MasterName != "" && len(s.Redis.Addrs) == 0 {
		d.errorAtKey("/redis/masterName", "redis.masterName needs the Sentinel addresses in redis.addrs")
	}
	l.checkTelemetry(d, s.Telemetry)
	if s.Redis.Password != nil {
		l.checkSecret(d, "/redis/password/secretRef", s.Redis.Password)
	}
	checkPositive(d, "/redis/timeout", s.Redis.Timeout)
	checkPositive(d, "/gitSync/interval", s.GitSync.Interval)
	names := map[string]int{}
	for i, t := range s.Admin.Tokens {
		if j, dup := names[t.Name]; dup {
			d.errorf(pointerOf("admin", "tokens", i, "name"), "duplicate token name %q (also admin.tokens[%d])", t.Name, j)
		}
		names[t.Name] = i
		l.checkSecret(d, pointerOf("admin", "tokens", i, "secret", "secretRef"), &t.Secret)
	}
	h := s.Hooks
	if (h.ClientAuthentication || h.SiteAuthentication || h.Permission) && h.Server == "" {
		d.errorAtKey("/hooks", "hooks are enabled but hooks.server is empty: name the registered server that serves them")
	}
	checkPositive(d, "/gateway/webClient/timeout", s.Gateway.WebClient.Timeout)
	for i, h := range s.Gateway.WebClient.AllowedHosts {
		if err := egress.CheckEntry(h); err != nil {
			d.errorf(pointerOf("gateway", "webClient", "allowedHosts", i), "%v", err)
		}
	}
	checkPositive(d, "/gateway/jq/timeout", s.Gateway.JQ.Timeout)
	checkPositive(d, "/apiPortal/queue/timeout", s.APIPortal.Queue.Timeout)
	checkPositive(d, "/hooks/timeout", s.Hooks.Timeout)
	checkPositive(d, "/apiPortal/security/jwt/ttl", s.APIPortal.Security.JWT.TTL)
}

// checkTelemetry checks the OTLP endpoint's form, the trace link and the
// export headers' secret references.
func (l *loader) checkTelemetry(d *document, t TelemetrySettings) {
	if e := t.OTLP.Endpoint; e != "" {
		if _, err := ParseOTLPEndpoint(e); err != nil {
			d.errorf("/telemetry/otlp/endpoint", "%v", err)
		}
	}
	if t.TraceURL != "" && !strings.Contains(t.TraceURL, "{traceId}") {
		d.errorf("/telemetry/traceUrl", "%q does not contain {traceId}: expected a link such as https://jaeger.example/trace/{traceId}", t.TraceURL)
	}
	checkPositive(d, "/telemetry/otlp/timeout", t.OTLP.Timeout)
	if t.OTLP.BatchSize > t.OTLP.QueueSize {
		d.errorf("/telemetry/otlp/batchSize", "%d is more than telemetry.otlp.queueSize (%d): expected at most queueSize", t.OTLP.BatchSize, t.OTLP.QueueSize)
	}
	names := make([]string, 0, len(t.OTLP.Headers))
	for n := range t.OTLP.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ref := t.OTLP.Headers[n]
		l.checkSecret(d, pointerOf("telemetry", "otlp", "headers", n, "secretRef"), &ref)
	}
}

// checkSecret reports a committed secret (a file reference inside the
// repository) and a missing in-repository file. It returns the secret's
// value when it lies in the repository and could be read, "" otherwise.
func (l *loader) checkSecret(d *document, ptr string, ref *SecretRef) string {
	path, ok := strings.CutPrefix(ref.Ref, "file:")
	if !ok {
		return ""
	}
	abs := path
	if filepath.IsAbs(abs) {
		d.dirBound = true // inside or outside depends on where the repository is
	} else {
		abs = filepath.Join(l.dir, filepath.FromSlash(path))
	}
	rel, err := filepath.Rel(l.dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "" // outside the repository: the deployment provides it
	}
	rel = filepath.ToSlash(rel)
	var data []byte
	if l.files != nil {
		var e *fileEntry
		e, data, err = l.files.read(rel, nil)
		d.deps = append(d.deps, depFrom(rel, false, e, err))
	} else {
		data, err = safefile.Read(abs, MaxFileBytes)
	}
	if errors.Is(err, fs.ErrNotExist) {
		d.errorf(ptr, "secret file %s does not exist in the repository", rel)
		return ""
	}
	d.warnf(ptr, "secret %s lies inside the repository (a committed secret): acceptable for demo data only; use env:NAME or a file outside the repository", ref.Ref)
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(data), "\r\n")
}

func (l *loader) checkCredential(d *document, c *Credential) {
	var encKey string
	if c.EncryptionKey != nil {
		encKey = l.checkSecret(d, "/encryptionKey/secretRef", c.EncryptionKey)
	}
	if c.SignatureKey != nil {
		l.checkSecret(d, "/signatureKey/secretRef", c.SignatureKey)
	}
	if c.EncryptionType != EncNone && c.EncryptionKey == nil {
		d.errorf("/encryptionType", "encryptionKey is required when encryptionType is %s (or set encryptionType: NONE)", c.EncryptionType)
	}
	if c.SignatureType == SignHMACSHA256 && c.SignatureKey == nil && c.EncryptionKey == nil {
		d.errorf("/signatureType", "HMAC-SHA256 needs a key: set signatureKey or encryptionKey")
	}
	if (c.SignatureType == SignMD5 || c.SignatureType == SignSHA256) && c.EncryptionType == EncNone {
		d.warnf("/signatureType", "unkeyed %s signature without body encryption: anyone who sees one request can forge others; use HMAC-SHA256 or an encryption type", c.SignatureType)
	}
	if encKey != "" {
		if _, err := security.NewCipher(c.EncryptionType, []byte(encKey)); err != nil {
			d.errorf("/encryptionKey/secretRef", "%v (UTF-8 bytes of the key)", err)
		}
	}
	l.checkIPList(d, "/allowedIps", c.AllowedIPs)
	if c.AllowAnonymous {
		if c.AnonymousUser == nil {
			d.errorf("/allowAnonymous", "allowAnonymous needs anonymousUser {id, name}")
		}
		if !l.view.jwtKey {
			d.errorf("/allowAnonymous", "allowAnonymous needs apiPortal.security.jwt.key in databus.yaml to sign the internal JWT")
		}
	}
}

var keyVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// KeyVars are the variables of a rate-limit keyTemplate.
var KeyVars = []string{"apiCode", "version", "appId", "tenantId", "clientIp", "header.NAME"}

// CheckKeyTemplate reports the first problem of a rate-limit key template.
func CheckKeyTemplate(t string) error {
	rest := keyVarRE.ReplaceAllString(t, "")
	if strings.Contains(rest, "${") {
		return fmt.Errorf("unclosed ${ in %q", t)
	}
	for _, m := range keyVarRE.FindAllStringSubmatch(t, -1) {
		v := m[1]
		switch {
		case v == "apiCode", v == "version", v == "appId", v == "tenantId", v == "clientIp":
		case strings.HasPrefix(v, "header.") && len(v) > len("header.") && headerNameRE.MatchString(v[len("header."):]):
		default:
			return fmt.Errorf("unknown variable ${%s}: expected one of %s", v, strings.Join(KeyVars, ", "))
		}
	}
	return nil
}

var headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)

// metadataKeyRE is what gRPC allows in a metadata key (sent lower-cased).
var metadataKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func (l *loader) checkPolicy(d *document, p *RateLimitPolicy) {
	if err := CheckKeyTemplate(p.KeyTemplate); err != nil {
		d.errorf("/keyTemplate", "%v", err)
	}
}

func (a *Api) applyDefaults() {
	for i := range a.Steps {
		s := &a.Steps[i]
		if s.OnError == "" {
			s.OnError = "fail"
		}
		if s.HTTP != nil && s.HTTP.Method == "" && s.HTTP.URL != "" {
			s.HTTP.Method = "GET"
			if s.HTTP.Multipart != nil {
				s.HTTP.Method = "POST"
			}
		}
		if s.Script != nil {
			if s.Script.Lang == "" {
				s.Script.Lang = "javascript"
			}
			if s.Script.Timeout == 0 {
				s.Script.Timeout = Duration(time.Second)
			}
		}
	}
}

func (l *loader) checkAPI(d *document, a *Api) {
	a.applyDefaults()
	l.checkSteps(d, a)
	if a.Transforms != nil {
		checkTransforms(d, "/transforms", a.Transforms)
	}
	if a.Input != nil {
		if _, err := schema.CompileUser(d.value.(map[string]any)["input"]); err != nil {
			vs := schema.UserViolations(err)
			if len(vs) == 0 {
				d.errorf("/input", "not a valid JSON Schema: %s", oneLine(err.Error()))
			}
			for _, v := range vs {
				d.errorf("/input"+v.Pointer, "not a valid JSON Schema: %s", v.Message)
			}
		}
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (l *loader) checkSteps(d *document, a *Api) {
	steps := a.Steps
	ids := map[string]int{}
	for i, s := range steps {
		ptr := pointerOf("steps", i)
		if j, dup := ids[s.ID]; dup {
			d.errorf(ptr+"/id", "duplicate step id %q (first at steps[%d], line %d)", s.ID, j, lineOf(d, pointerOf("steps", j, "id")))
		} else {
			ids[s.ID] = i
		}
		last := len(steps) - 1
		switch {
		case s.Type == StepStart && i != 0 && steps[0].Type == StepStart:
			d.errorf(ptr+"/type", "a flow has exactly one start step: steps[0] is already the start")
		case s.Type == StepStart && i != 0:
			d.errorf(ptr+"/type", "a start step must be the first step (found at steps[%d])", i)
		case s.Type == StepEnd && i != last && steps[last].Type == StepEnd:
			d.errorf(ptr+"/type", "a flow has exactly one end step: steps[%d] is already the end", last)
		case s.Type == StepEnd && i != last:
			d.errorf(ptr+"/type", "an end step must be the last step (found at steps[%d] of %d)", i, len(steps))
		}
		l.checkStep(d, ptr, &steps[i])
	}
	if len(steps) > 0 && steps[0].Type != StepStart {
		d.errorf("/steps/0/type", "the first step must be of type start, found %s", steps[0].Type)
	}
	if n := len(steps); n > 0 && steps[n-1].Type != StepEnd {
		d.errorf(pointerOf("steps", n-1, "type"), "the last step must be of type end, found %s", steps[n-1].Type)
	}
}

func lineOf(d *document, ptr string) int {
	line, _ := d.pos(ptr)
	return line
}

// blocks of a step and the type each belongs to.
var stepBlocks = []struct{ key, typ string }{{"http", StepHTTP}, {"rpc", StepRPC}, {"script", StepScript}}

func (l *loader) checkStep(d *document, ptr string, s *Step) {
	present := map[string]bool{"http": s.HTTP != nil, "rpc": s.RPC != nil, "script": s.Script != nil}
	for _, b := range stepBlocks {
		if present[b.key] && s.Type != b.typ {
			line, col := d.keyPos(ptr + "/" + b.key)
			d.errorAtLine(line, col, d.path(ptr+"/"+b.key), fmt.Sprintf("%s is only allowed on steps of type %s (this step is of type %s)", b.key, b.typ, s.Type))
		}
	}
	if s.When != "" {
		if s.Type == StepStart || s.Type == StepEnd {
			d.errorf(ptr+"/when", "%s steps always run: remove when", s.Type)
		} else {
			checkJQ(d, ptr+"/when", s.When)
		}
	}
	if s.Transforms != nil {
		checkTransforms(d, ptr+"/transforms", s.Transforms)
	}
	switch {
	case s.Type == StepHTTP && s.HTTP != nil:
		l.checkHTTP(d, ptr+"/http", s.HTTP)
		if s.HTTP.Multipart != nil && s.Transforms != nil && s.Transforms.Request != "" {
			d.errorf(ptr+"/http/multipart", "multipart and transforms.request both build the request body: keep one")
		}
	case s.Type == StepRPC && s.RPC != nil:
		l.checkRPC(d, ptr+"/rpc", s.RPC)
	case s.Type == StepScript && s.Script != nil:
		checkScript(d, ptr+"/script", s.Script)
	}
}

func checkTransforms(d *document, ptr string, t *Transforms) {
	for _, p := range []struct{ name, src string }{{"request", t.Request}, {"response", t.Response}, {"error", t.Error}} {
		if p.src != "" {
			checkJQ(d, ptr+"/"+p.name, p.src)
		}
	}
}

// checkJQ compiles a jq program and reports where it fails, and warns
// where it can tell that the program cannot finish within its budget.
func checkJQ(d *document, ptr, src string) {
	p, err := expr.Compile(src)
	if err != nil {
		p = nil
	}
	d.expr(ptr, p)
	if err != nil {
		var e *expr.Error
		if errors.As(err, &e) && e.Offset >= 0 {
			d.errorAtOffset(ptr, e.Offset, fmt.Sprintf("jq program does not compile: %s", e.Msg))
			return
		}
		d.errorf(ptr, "jq program does not compile: %s", strings.TrimPrefix(err.Error(), "jq: "))
		return
	}
	for _, w := range expr.Lint(src) {
		d.warnf(ptr, "%s", w)
	}
}

// checkTemplate compiles a string with ${jq} interpolations.
func checkTemplate(d *document, ptr, s string) *expr.Template {
	d.expr(ptr, nil)
	t, err := expr.ParseTemplate(s)
	if err != nil {
		var te *expr.TemplateError
		if errors.As(err, &te) {
			d.errorAtOffset(ptr, te.Offset, te.Msg)
		} else {
			d.errorf(ptr, "%v", err)
		}
		return nil
	}
	for _, w := range t.Warnings() {
		d.warnf(ptr, "%s", w)
	}
	return t
}

// checkPositive reports a duration written as zero: the file sets it, so it
// is not "unset", and no timeout or interval may be zero.
func checkPositive(d *document, ptr string, _ Duration) {
	n, set := d.nodes[ptr]
	if !set {
		return
	}
	if v, err := time.ParseDuration(n.Value); err == nil && v <= 0 {
		d.errorf(ptr, "duration must be greater than 0")
	}
}

func (l *loader) checkHTTP(d *document, ptr string, h *HTTPCall) {
	switch {
	case h.URL == "" && h.Service == nil:
		d.errorAtKey(ptr, "an http step needs url or service: set url (http://host/path) or service {server, name} from the registry")
	case h.URL != "" && h.Service != nil:
		d.errorf(ptr+"/service", "url and service exclude each other: keep one")
	}
	if h.URL != "" {
		if t := checkTemplate(d, ptr+"/url", h.URL); t != nil {
			lower := strings.ToLower(h.URL)
			if !strings.HasPrefix(lower, "${") && !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
				d.errorf(ptr+"/url", "url must start with http:// or https://, got %q", h.URL)
			} else if ut, err := expr.ParseURLTemplate(h.URL); err == nil && ut.AuthorityTemplated() && !l.view.allowedHosts {
				d.errorf(ptr+"/url", "the url's scheme or host comes from an interpolation, so a caller could steer the step to any host: write the host literally, or list the hosts it may reach in gateway.webClient.allowedHosts (%s)", SettingsFile)
			}
		}
	}
	for _, k := range sortedKeys(h.Headers) {
		checkTemplate(d, pointerJoin(ptr, "headers", k), h.Headers[k])
		if !headerNameRE.MatchString(k) {
			line, col := d.keyPos(pointerJoin(ptr, "headers", k))
			d.errorAtLine(line, col, d.path(pointerJoin(ptr, "headers", k)), fmt.Sprintf("%q is not a valid HTTP header name", k))
		}
	}
	for _, k := range sortedKeys(h.Query) {
		checkTemplate(d, pointerJoin(ptr, "query", k), h.Query[k])
	}
	checkPositive(d, ptr+"/timeout", h.Timeout)
	if h.Retry != nil && h.Retry.Attempts > 0 && !h.Retry.Force && !idempotent(h.Method) {
		d.warnf(ptr+"/retry", "retries apply to idempotent methods only: %s is not retried unless retry.force is true", methodOrDefault(h.Method))
	}
	if h.Poll != nil {
		checkJQ(d, ptr+"/poll/until", h.Poll.Until)
		if h.Poll.FailWhen != "" {
			checkJQ(d, ptr+"/poll/failWhen", h.Poll.FailWhen)
		}
		checkPositive(d, ptr+"/poll/interval", h.Poll.Interval)
		checkPositive(d, ptr+"/poll/timeout", h.Poll.Timeout)
		if h.Poll.Interval != 0 && h.Poll.Timeout != 0 && h.Poll.Interval > h.Poll.Timeout {
			d.errorf(ptr+"/poll/interval", "poll interval %s is longer than its timeout %s", h.Poll.Interval.D(), h.Poll.Timeout.D())
		}
	}
	l.checkSite(d, ptr, h)
	if m := h.Multipart; m != nil {
		checkJQ(d, ptr+"/multipart/content", m.Content)
		for _, k := range sortedKeys(m.Fields) {
			checkTemplate(d, pointerJoin(ptr, "multipart", "fields", k), m.Fields[k])
		}
		if method := strings.ToUpper(h.Method); method != "" && method != "POST" && method != "PUT" && method != "PATCH" {
			d.errorf(ptr+"/multipart", "a multipart body needs method POST, PUT or PATCH, not %s", method)
		}
	}
}

// checkSite warns about a site step the signature hook cannot sign: the
// step fails (502) until databus.yaml names the hooks server and party.
func (l *loader) checkSite(d *document, ptr string, h *HTTPCall) {
	if h.Site == "" {
		return
	}
	switch {
	case !l.view.hooksServer:
		d.warnf(ptr+"/site", "site %q is signed by the signature hook of hooks.server, which databus.yaml leaves empty: this step fails until it is set", h.Site)
	case !l.view.hooksParty:
		d.warnf(ptr+"/site", "site %q needs hooks.partyId in databus.yaml (sent as Src-Party-Id): this step fails until it is set", h.Site)
	}
}

func methodOrDefault(m string) string {
	if m == "" {
		return "the registered method"
	}
	return m
}

func idempotent(m string) bool {
	switch m {
	case "GET", "HEAD", "PUT", "DELETE":
		return true
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (l *loader) checkRPC(d *document, ptr string, r *RPCCall) {
	switch {
	case r.Target == "" && r.Service == nil:
		d.errorAtKey(ptr, "an rpc step needs target (host:port) or service {server, name} from the registry")
	case r.Target != "" && r.Service != nil:
		d.errorf(ptr+"/service", "target and service exclude each other: keep one")
	}
	if r.Target != "" {
		if _, port, err := net.SplitHostPort(r.Target); err != nil || port == "" {
			d.errorf(ptr+"/target", "bad target %q: expected host:port", r.Target)
		}
	}
	for _, k := range sortedKeys(r.Metadata) {
		kptr := pointerJoin(ptr, "metadata", k)
		checkTemplate(d, kptr, r.Metadata[k])
		msg := ""
		switch {
		case !metadataKeyRE.MatchString(k):
			msg = fmt.Sprintf("%q is not a valid gRPC metadata key: expected letters, digits, '-', '_' and '.'", k)
		case strings.HasPrefix(strings.ToLower(k), "grpc-"):
			msg = fmt.Sprintf("%q: metadata keys starting with grpc- are reserved by gRPC", k)
		}
		if msg != "" {
			line, col := d.keyPos(kptr)
			d.errorAtLine(line, col, d.path(kptr), msg)
		}
	}
	checkPositive(d, ptr+"/timeout", r.Timeout)
	if r.DescriptorSet != "" {
		l.checkDescriptor(d, ptr, r)
	}
}

func checkScript(d *document, ptr string, s *Script) {
	checkPositive(d, ptr+"/timeout", s.Timeout)
	prog, err := parser.ParseFile(nil, "script", s.Source, 0)
	if err != nil {
		var list parser.ErrorList
		var one *parser.Error
		switch {
		case errors.As(err, &list) && len(list) > 0:
			one = list[0]
		case errors.As(err, &one):
		}
		if one != nil {
			line, col := scriptPos(d, ptr+"/source", one.Position.Line, one.Position.Column)
			d.errorAtLine(line, col, d.path(ptr+"/source"), "JavaScript does not parse: "+one.Message)
			return
		}
		d.errorf(ptr+"/source", "JavaScript does not parse: %v", err)
		return
	}
	if !definesMain(prog) {
		d.errorf(ptr+"/source", "script must define a function main(ctx) that returns the step's output")
	}
}

// scriptPos maps a position inside a script source to the file, exactly for
// literal block scalars and single-line scalars.
func scriptPos(d *document, ptr string, line, col int) (int, int) {
	n, ok := d.nodes[ptr]
	if !ok {
		return d.pos(ptr)
	}
	lines := strings.SplitAfter(n.Value, "\n")
	off := 0
	for i := 0; i < line-1 && i < len(lines); i++ {
		off += len(lines[i])
	}
	if line-1 < len(lines) {
		// goja counts columns in characters; convert to a byte offset.
		r := []rune(lines[line-1])
		if c := col - 1; c >= 0 && c <= len(r) {
			off += len(string(r[:c]))
		}
	}
	if off > len(n.Value) {
		return n.Line, n.Column
	}
	return scalarOffset(d.data, n, off)
}

func definesMain(p *ast.Program) bool {
	for _, st := range p.Body {
		switch s := st.(type) {
		case *ast.FunctionDeclaration:
			if s.Function != nil && s.Function.Name != nil && s.Function.Name.Name == "main" {
				return true
			}
		case *ast.VariableStatement:
			if bindsMain(s.List) {
				return true
			}
		case *ast.LexicalDeclaration:
			if bindsMain(s.List) {
				return true
			}
		}
	}
	return false
}

func bindsMain(list []*ast.Binding) bool {
	for _, b := range list {
		if id, ok := b.Target.(*ast.Identifier); ok && id.Name == "main" {
			return true
		}
	}
	return false
}
