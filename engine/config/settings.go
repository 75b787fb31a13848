package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Settings is databus.yaml: the gateway's reloadable settings. Listen
// addresses are boot-time flags and are not part of it.
type Settings struct {
	APIVersion string            `yaml:"apiVersion,omitempty" json:"apiVersion,omitempty"`
	Kind       string            `yaml:"kind,omitempty" json:"kind,omitempty"`
	APIPortal  PortalSettings    `yaml:"apiPortal" json:"apiPortal"`
	Gateway    GatewaySettings   `yaml:"gateway" json:"gateway"`
	Storage    StorageSettings   `yaml:"storage" json:"storage"`
	Redis      RedisSettings     `yaml:"redis" json:"redis"`
	Hooks      HookSettings      `yaml:"hooks" json:"hooks"`
	GitSync    GitSyncSettings   `yaml:"gitSync" json:"gitSync"`
	UI         UISettings        `yaml:"ui" json:"ui"`
	Admin      AdminSettings     `yaml:"admin" json:"admin"`
	Telemetry  TelemetrySettings `yaml:"telemetry" json:"telemetry"`

	Source Source `yaml:"-" json:"-"`
}

// PortalSettings configures the portal third parties call.
type PortalSettings struct {
	BasePath           string   `yaml:"basePath" json:"basePath"`
	LegacyBasePaths    []string `yaml:"legacyBasePaths" json:"legacyBasePaths"`
	AllowedIPs         []string `yaml:"allowedIps" json:"allowedIps"`
	DeniedIPs          []string `yaml:"deniedIps" json:"deniedIps"`
	TrustedProxies     []string `yaml:"trustedProxies" json:"trustedProxies"`
	EnableTenantHeader *bool    `yaml:"enableTenantHeader" json:"enableTenantHeader"`
	TenantHeader       string   `yaml:"tenantHeader" json:"tenantHeader"`
	EnableAudit        *bool    `yaml:"enableAudit" json:"enableAudit"`
	EnableRateLimit    *bool    `yaml:"enableRateLimit" json:"enableRateLimit"`
	MaxBodyBytes       int64    `yaml:"maxBodyBytes" json:"maxBodyBytes"`
	// MaxBodyBytesInFlight bounds the bytes of request bodies the portal
	// holds at once, over all requests; a body that does not fit is
	// refused (503) before it is read.
	MaxBodyBytesInFlight int64 `yaml:"maxBodyBytesInFlight" json:"maxBodyBytesInFlight"`
	// MaxJSONDepth and MaxJSONValues bound a JSON request body before it
	// is decoded: nesting depth (400 above) and number of values (413
	// above), so its decoded form stays within a small multiple of its size.
	MaxJSONDepth  int `yaml:"maxJsonDepth" json:"maxJsonDepth"`
	MaxJSONValues int `yaml:"maxJsonValues" json:"maxJsonValues"`
	// MaxInFlight bounds the requests the portal works on at once (past
	// the checks the request line and headers decide); those over it wait
	// in Queue or are answered 503 before their body is read.
	MaxInFlight int              `yaml:"maxInFlight" json:"maxInFlight"`
	Queue       QueueSettings    `yaml:"queue" json:"queue"`
	Security    SecuritySettings `yaml:"security" json:"security"`
}

// QueueSettings bound the wait of requests over apiPortal.maxInFlight.
type QueueSettings struct {
	// Length is how many requests may wait; 0 answers 503 at once.
	Length *int `yaml:"length" json:"length"`
	// Timeout is the longest wait while the queue empties now and then;
	// under a standing queue a request waits a twentieth of it.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// DefaultInFlightPerCPU is apiPortal.maxInFlight's default per GOMAXPROCS.
const DefaultInFlightPerCPU = 128

// SecuritySettings configures signature, encryption and replay protection.
type SecuritySettings struct {
	Enabled                 *bool       `yaml:"enabled" json:"enabled"`
	AllowedClockSkewSeconds int         `yaml:"allowedClockSkewSeconds" json:"allowedClockSkewSeconds"`
	NonceTTLSeconds         int         `yaml:"nonceTtlSeconds" json:"nonceTtlSeconds"`
	RequireBodyEncryption   *bool       `yaml:"requireBodyEncryption" json:"requireBodyEncryption"`
	EncryptResponse         *bool       `yaml:"encryptResponse" json:"encryptResponse"`
	JWT                     JWTSettings `yaml:"jwt" json:"jwt"`
}

// JWTSettings configures the internal JWT of anonymous calls.
type JWTSettings struct {
	Key *SecretRef `yaml:"key,omitempty" json:"key,omitempty"`
	TTL Duration   `yaml:"ttl" json:"ttl"`
}

// GatewaySettings configures upstream calls.
type GatewaySettings struct {
	WebClient WebClientSettings `yaml:"webClient" json:"webClient"`
	JQ        JQSettings        `yaml:"jq" json:"jq"`
}

// JQSettings is the budget of every jq evaluation.
type JQSettings struct {
	Timeout        Duration `yaml:"timeout" json:"timeout"`
	MaxMemoryBytes uint64   `yaml:"maxMemoryBytes" json:"maxMemoryBytes"`
}

// WebClientSettings configures the shared HTTP client.
type WebClientSettings struct {
	ConnectionPoolEnabled *bool    `yaml:"connectionPoolEnabled" json:"connectionPoolEnabled"`
	MaxIdleConnsPerHost   int      `yaml:"maxIdleConnsPerHost" json:"maxIdleConnsPerHost"`
	Timeout               Duration `yaml:"timeout" json:"timeout"`
	MaxResponseBytes      int64    `yaml:"maxResponseBytes" json:"maxResponseBytes"`
	// AllowedHosts are the upstream hosts an http step's URL may name
	// when its scheme or authority comes from an interpolation (see
	// engine/egress.AllowList). Empty (default): such URLs are refused.
	AllowedHosts []string `yaml:"allowedHosts" json:"allowedHosts"`
	// AllowAdminListener lets http steps connect to the gateway's own
	// admin listener. Default false.
	AllowAdminListener bool `yaml:"allowAdminListener" json:"allowAdminListener"`
}

// StorageSettings configures the bbolt file.
type StorageSettings struct {
	// Path is the bbolt file; "" (the default) is DefaultStoragePath of the
	// repository, outside it. Resolve it with ResolveStoragePath.
	Path      string            `yaml:"path" json:"path"`
	AccessLog AccessLogSettings `yaml:"accessLog" json:"accessLog"`
}

// DefaultRefusalsPerSecond is storage.accessLog.refusalsPerSecond's default.
const DefaultRefusalsPerSecond = 100

// AccessLogSettings configures the access log.
type AccessLogSettings struct {
	RetentionDays int      `yaml:"retentionDays" json:"retentionDays"`
	MaxBodyChars  *int     `yaml:"maxBodyChars" json:"maxBodyChars"`
	RedactHeaders []string `yaml:"redactHeaders" json:"redactHeaders"`
	Mode          string   `yaml:"mode" json:"mode"`
	QueueSize     int      `yaml:"queueSize" json:"queueSize"`
	MaxRecords    int      `yaml:"maxRecords" json:"maxRecords"`
	// RefusalsPerSecond bounds the records of refused requests written a
	// second (the burst is as many); the others are only counted.
	RefusalsPerSecond *int   `yaml:"refusalsPerSecond" json:"refusalsPerSecond"`
	Export            string `yaml:"export" json:"export,omitempty"`
	// Capture keeps a sample of records whole, for databus replay.
	Capture CaptureSettings `yaml:"capture" json:"capture"`
}

// DefaultCaptureMaxBytes is storage.accessLog.capture.maxBytes's default.
const DefaultCaptureMaxBytes = 64 << 10

// CaptureSettings configures the access log's capture mode: a sampled
// record of a request that reached its flow keeps the decrypted request
// body, the query, the response and every step's raw request and result
// whole (not cut at maxBodyChars), so that the request can be run again
// against another config with the recorded step results as stubs. It is
// reloadable, as maxBodyChars and redactHeaders are: it only changes what
// the next records keep.
type CaptureSettings struct {
	// SampleRatio is the share of requests captured, 0 (default: off) to 1.
	SampleRatio float64 `yaml:"sampleRatio" json:"sampleRatio"`
	// MaxBytes bounds what one captured record keeps beyond the usual
	// record (bodies, query, step values); a request over it is recorded
	// as usual, marked with why it was not captured.
	MaxBytes int `yaml:"maxBytes" json:"maxBytes"`
}

// RedisSettings configures the shared stores.
type RedisSettings struct {
	Addr       string     `yaml:"addr" json:"addr"`
	Addrs      []string   `yaml:"addrs" json:"addrs,omitempty"`
	MasterName string     `yaml:"masterName" json:"masterName,omitempty"`
	Username   string     `yaml:"username" json:"username,omitempty"`
	Password   *SecretRef `yaml:"password,omitempty" json:"password,omitempty"`
	DB         int        `yaml:"db" json:"db"`
	TLS        bool       `yaml:"tls" json:"tls"`
	Timeout    Duration   `yaml:"timeout" json:"timeout"`
	FailOpen   *bool      `yaml:"failOpen" json:"failOpen"`
}

// Enabled reports whether Redis is configured.
func (r RedisSettings) Enabled() bool { return r.Addr != "" || len(r.Addrs) > 0 }

// UISettings configures the admin web pages.
type UISettings struct {
	RepoURL string `yaml:"repoUrl" json:"repoUrl,omitempty"`
}

// GitSyncSettings configures databus serve --git-sync.
type GitSyncSettings struct {
	Remote   string   `yaml:"remote" json:"remote"`
	Branch   string   `yaml:"branch" json:"branch,omitempty"`
	Interval Duration `yaml:"interval" json:"interval"`
}

// HookSettings configures callouts to registered services.
type HookSettings struct {
	Server               string   `yaml:"server" json:"server"`
	PartyID              string   `yaml:"partyId" json:"partyId"`
	Timeout              Duration `yaml:"timeout" json:"timeout"`
	ClientAuthentication bool     `yaml:"clientAuthentication" json:"clientAuthentication"`
	SiteAuthentication   bool     `yaml:"siteAuthentication" json:"siteAuthentication"`
	Permission           bool     `yaml:"permission" json:"permission"`
}

// TelemetrySettings configure OpenTelemetry tracing: off until
// otlp.endpoint is set.
type TelemetrySettings struct {
	// ServiceName is the service.name resource of every span.
	ServiceName string `yaml:"serviceName" json:"serviceName"`
	// TraceURL links an access-log record to its trace in the operator's
	// trace viewer: {traceId} is replaced by the record's trace id.
	TraceURL string `yaml:"traceUrl" json:"traceUrl,omitempty"`
	// ForwardBaggage passes the caller's W3C baggage on to every outbound
	// call. Off by default: an internet caller writes it, and upstreams
	// and hook services would read its keys (tenant.id=…) as if the
	// gateway had set them.
	ForwardBaggage bool         `yaml:"forwardBaggage" json:"forwardBaggage"`
	OTLP           OTLPSettings `yaml:"otlp" json:"otlp"`
}

// OTLPSettings configure the OTLP trace exporter.
type OTLPSettings struct {
	// Endpoint is where spans go: host:port (plain-text gRPC or HTTP) or a
	// URL (http:// plain text, https:// TLS); "" switches tracing off.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Protocol is grpc or http (protobuf over HTTP, path /v1/traces
	// unless the URL names one).
	Protocol string `yaml:"protocol" json:"protocol"`
	// Headers go with every export (an authorization token, a tenant):
	// values by secret reference only.
	Headers map[string]SecretRef `yaml:"headers" json:"headers,omitempty"`
	// SampleRatio is the share of new traces recorded (0..1).
	SampleRatio *float64 `yaml:"sampleRatio" json:"sampleRatio"`
	// ParentBased follows the caller's sampled flag when a traceparent
	// came in; the ratio decides only for new traces. Off by default: on
	// the internet edge the caller would decide what is recorded.
	ParentBased *bool `yaml:"parentBased" json:"parentBased"`
	// Timeout bounds one export.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// QueueSize bounds the spans waiting for export; more are dropped.
	QueueSize int `yaml:"queueSize" json:"queueSize"`
	// BatchSize is the most spans one export carries.
	BatchSize int `yaml:"batchSize" json:"batchSize"`
}

// Enabled reports whether spans are made and exported.
func (t TelemetrySettings) Enabled() bool { return t.OTLP.Endpoint != "" }

// OTLPEndpoint is telemetry.otlp.endpoint parsed.
type OTLPEndpoint struct {
	HostPort string // host:port
	Path     string // the URL's path ("" when none was given)
	TLS      bool   // https://
}

// ParseOTLPEndpoint reads host:port, http://host:port[/path] or
// https://host:port[/path].
func ParseOTLPEndpoint(s string) (OTLPEndpoint, error) {
	if !strings.Contains(s, "://") {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return OTLPEndpoint{}, fmt.Errorf("bad endpoint %q: expected host:port or an http:// or https:// URL", s)
		}
		return OTLPEndpoint{HostPort: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return OTLPEndpoint{}, fmt.Errorf("bad endpoint %q: expected host:port or an http:// or https:// URL without credentials or query (headers carry tokens)", s)
	}
	hp := u.Host
	if u.Port() == "" {
		hp = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	return OTLPEndpoint{HostPort: hp, Path: strings.TrimSuffix(u.Path, "/"), TLS: u.Scheme == "https"}, nil
}

// AdminSettings configures the admin listener.
type AdminSettings struct {
	Tokens []AdminToken `yaml:"tokens" json:"tokens"`
}

// AdminToken is one bearer token of the admin listener.
type AdminToken struct {
	Name   string    `yaml:"name" json:"name"`
	Role   string    `yaml:"role" json:"role"`
	Secret SecretRef `yaml:"secret" json:"secret"`
}

func boolp(b bool) *bool { return &b }

// applyDefaults fills every setting the file left out with the documented
// default (DESIGN.md section 2).
func (s *Settings) applyDefaults() {
	p := &s.APIPortal
	if p.BasePath == "" {
		p.BasePath = "/admin-api/databus/api/portal"
	}
	if p.LegacyBasePaths == nil {
		p.LegacyBasePaths = []string{"/databus/api/portal"}
	}
	if p.EnableTenantHeader == nil {
		p.EnableTenantHeader = boolp(true)
	}
	if p.TenantHeader == "" {
		p.TenantHeader = "ZT-Tenant-Id"
	}
	if p.EnableAudit == nil {
		p.EnableAudit = boolp(true)
	}
	if p.EnableRateLimit == nil {
		p.EnableRateLimit = boolp(true)
	}
	if p.MaxBodyBytes == 0 {
		p.MaxBodyBytes = 10 << 20
	}
	if p.MaxBodyBytesInFlight == 0 {
		p.MaxBodyBytesInFlight = max(256<<20, 4*p.MaxBodyBytes)
	}
	if p.MaxJSONDepth == 0 {
		p.MaxJSONDepth = 64
	}
	if p.MaxInFlight == 0 {
		p.MaxInFlight = DefaultInFlightPerCPU * runtime.GOMAXPROCS(0)
	}
	if p.Queue.Length == nil {
		n := p.MaxInFlight
		p.Queue.Length = &n
	}
	if p.Queue.Timeout == 0 {
		p.Queue.Timeout = Duration(100 * time.Millisecond)
	}
	if p.MaxJSONValues == 0 {
		p.MaxJSONValues = 250000
	}
	sec := &p.Security
	if sec.Enabled == nil {
		sec.Enabled = boolp(true)
	}
	if sec.AllowedClockSkewSeconds == 0 {
		sec.AllowedClockSkewSeconds = 300
	}
	if sec.NonceTTLSeconds == 0 {
		sec.NonceTTLSeconds = 600
	}
	if sec.RequireBodyEncryption == nil {
		sec.RequireBodyEncryption = boolp(true)
	}
	if sec.EncryptResponse == nil {
		sec.EncryptResponse = boolp(true)
	}
	if sec.JWT.TTL == 0 {
		sec.JWT.TTL = Duration(5 * time.Minute)
	}
	wc := &s.Gateway.WebClient
	if wc.ConnectionPoolEnabled == nil {
		wc.ConnectionPoolEnabled = boolp(true)
	}
	if wc.MaxIdleConnsPerHost == 0 {
		wc.MaxIdleConnsPerHost = 256
	}
	if wc.Timeout == 0 {
		wc.Timeout = Duration(30 * time.Second)
	}
	if wc.MaxResponseBytes == 0 {
		wc.MaxResponseBytes = 32 << 20
	}
	if s.Gateway.JQ.Timeout == 0 {
		s.Gateway.JQ.Timeout = Duration(time.Second)
	}
	if s.Gateway.JQ.MaxMemoryBytes == 0 {
		s.Gateway.JQ.MaxMemoryBytes = 1 << 30
	}
	st := &s.Storage
	if st.AccessLog.RetentionDays == 0 {
		st.AccessLog.RetentionDays = 7
	}
	if st.AccessLog.MaxBodyChars == nil {
		n := 4000
		st.AccessLog.MaxBodyChars = &n
	}
	if st.AccessLog.RefusalsPerSecond == nil {
		n := DefaultRefusalsPerSecond
		st.AccessLog.RefusalsPerSecond = &n
	}
	if st.AccessLog.Capture.MaxBytes == 0 {
		st.AccessLog.Capture.MaxBytes = DefaultCaptureMaxBytes
	}
	if st.AccessLog.Mode == "" {
		st.AccessLog.Mode = "async"
	}
	if st.AccessLog.QueueSize == 0 {
		st.AccessLog.QueueSize = 10000
	}
	if st.AccessLog.RedactHeaders == nil {
		st.AccessLog.RedactHeaders = []string{"Authorization", "ZT-Signature"}
	}
	if s.GitSync.Remote == "" {
		s.GitSync.Remote = "origin"
	}
	if s.GitSync.Interval == 0 {
		s.GitSync.Interval = Duration(30 * time.Second)
	}
	if s.Redis.Timeout == 0 {
		s.Redis.Timeout = Duration(200 * time.Millisecond)
	}
	if s.Redis.FailOpen == nil {
		s.Redis.FailOpen = boolp(true)
	}
	t := &s.Telemetry
	if t.ServiceName == "" {
		t.ServiceName = "databus"
	}
	if t.OTLP.Protocol == "" {
		t.OTLP.Protocol = "grpc"
	}
	if t.OTLP.SampleRatio == nil {
		r := 1.0
		t.OTLP.SampleRatio = &r
	}
	if t.OTLP.ParentBased == nil {
		t.OTLP.ParentBased = boolp(false)
	}
	if t.OTLP.Timeout == 0 {
		t.OTLP.Timeout = Duration(10 * time.Second)
	}
	if t.OTLP.QueueSize == 0 {
		t.OTLP.QueueSize = 2048
	}
	if t.OTLP.BatchSize == 0 {
		t.OTLP.BatchSize = 512
	}
	if s.Hooks.Timeout == 0 {
		s.Hooks.Timeout = Duration(3 * time.Second)
	}
}

// DefaultSettings returns the settings of a repository without databus.yaml.
func DefaultSettings() *Settings {
	s := &Settings{}
	s.applyDefaults()
	return s
}

// Boot is what a gateway reads from databus.yaml only at start: changing
// one of these needs a restart. A reload that changes one is refused
// ("restart to apply"), so that what the admin view shows is what runs.
// Listen addresses are boot settings too, given as flags.
type Boot struct {
	StoragePath     string
	AccessLogMode   string
	AccessLogQueue  int
	AccessLogExport string
	// Telemetry lists every key of telemetry, in a fixed order: the
	// exporter is read at start (DESIGN.md section 2).
	Telemetry []BootValue
}

// BootValue is one boot setting as Boot compares it.
type BootValue struct {
	Key, Pointer, Value string
}

// telemetryBoot lists the telemetry keys of t in a fixed order; secret
// references by reference, never by value.
func telemetryBoot(t TelemetrySettings) []BootValue {
	headers := make([]string, 0, len(t.OTLP.Headers))
	for name, ref := range t.OTLP.Headers {
		headers = append(headers, name+"="+ref.Ref)
	}
	sort.Strings(headers)
	deref := func(v any) string {
		switch p := v.(type) {
		case *float64:
			if p != nil {
				return strconv.FormatFloat(*p, 'g', -1, 64)
			}
		case *bool:
			if p != nil {
				return strconv.FormatBool(*p)
			}
		}
		return ""
	}
	return []BootValue{
		{"telemetry.serviceName", "/telemetry/serviceName", t.ServiceName},
		{"telemetry.traceUrl", "/telemetry/traceUrl", t.TraceURL},
		{"telemetry.forwardBaggage", "/telemetry/forwardBaggage", strconv.FormatBool(t.ForwardBaggage)},
		{"telemetry.otlp.endpoint", "/telemetry/otlp/endpoint", t.OTLP.Endpoint},
		{"telemetry.otlp.protocol", "/telemetry/otlp/protocol", t.OTLP.Protocol},
		{"telemetry.otlp.headers", "/telemetry/otlp/headers", strings.Join(headers, ", ")},
		{"telemetry.otlp.sampleRatio", "/telemetry/otlp/sampleRatio", deref(t.OTLP.SampleRatio)},
		{"telemetry.otlp.parentBased", "/telemetry/otlp/parentBased", deref(t.OTLP.ParentBased)},
		{"telemetry.otlp.timeout", "/telemetry/otlp/timeout", t.OTLP.Timeout.D().String()},
		{"telemetry.otlp.queueSize", "/telemetry/otlp/queueSize", strconv.Itoa(t.OTLP.QueueSize)},
		{"telemetry.otlp.batchSize", "/telemetry/otlp/batchSize", strconv.Itoa(t.OTLP.BatchSize)},
	}
}

// Boot returns the boot settings of s.
func (s *Settings) Boot() Boot {
	al := s.Storage.AccessLog
	return Boot{StoragePath: s.Storage.Path, AccessLogMode: al.Mode, AccessLogQueue: al.QueueSize, AccessLogExport: al.Export,
		Telemetry: telemetryBoot(s.Telemetry)}
}

// BootChange is one boot setting that differs between two Boots.
type BootChange struct {
	Key      string // display path, e.g. storage.path
	Pointer  string // JSON pointer in databus.yaml
	From, To string
}

// Changes lists the boot settings that differ from b in next, in a fixed
// order. storagePathFixed leaves storage.path out (a flag overrides it).
func (b Boot) Changes(next Boot, storagePathFixed bool) []BootChange {
	var out []BootChange
	add := func(key, ptr, from, to string) {
		if from != to {
			out = append(out, BootChange{Key: key, Pointer: ptr, From: from, To: to})
		}
	}
	if !storagePathFixed {
		orDefault := func(p string) string {
			if p == "" {
				return "(the default, outside the repository)"
			}
			return p
		}
		add("storage.path", "/storage/path", orDefault(b.StoragePath), orDefault(next.StoragePath))
	}
	add("storage.accessLog.mode", "/storage/accessLog/mode", b.AccessLogMode, next.AccessLogMode)
	add("storage.accessLog.queueSize", "/storage/accessLog/queueSize", strconv.Itoa(b.AccessLogQueue), strconv.Itoa(next.AccessLogQueue))
	add("storage.accessLog.export", "/storage/accessLog/export", b.AccessLogExport, next.AccessLogExport)
	for i, v := range next.Telemetry {
		from := ""
		if i < len(b.Telemetry) {
			from = b.Telemetry[i].Value
		}
		add(v.Key, v.Pointer, from, v.Value)
	}
	return out
}

// DefaultStoragePath is where the bbolt file of the repository at repoDir
// goes when storage.path is not set: the user's state folder, outside the
// checkout, so that runtime data never lands in the config repository:
// $XDG_STATE_HOME/databus/<folder name>-<hash of its absolute path>/databus.db
// ($XDG_STATE_HOME defaults to ~/.local/state; without a home folder, the
// system's temporary folder). The hash keeps two repositories apart; the
// name says which one a folder belongs to.
func DefaultStoragePath(repoDir string) string {
	abs, err := filepath.Abs(repoDir)
	if err != nil {
		abs = repoDir
	}
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) { // the XDG spec ignores a relative value
		base = ""
		if home, err := os.UserHomeDir(); err == nil && home != "" {
			base = filepath.Join(home, ".local", "state")
		} else {
			base = os.TempDir()
		}
	}
	h := sha256.Sum256([]byte(abs))
	name := filepath.Base(abs) + "-" + hex.EncodeToString(h[:6])
	return filepath.Join(base, "databus", name, "databus.db")
}

// ResolveStoragePath is the bbolt file a gateway serving repoDir opens:
// override (the --storage flag) when set, else storage.path (relative to
// the repository unless absolute), else DefaultStoragePath.
func ResolveStoragePath(s *Settings, repoDir, override string) string {
	switch {
	case override != "":
		return override
	case s.Storage.Path == "":
		return DefaultStoragePath(repoDir)
	case filepath.IsAbs(s.Storage.Path):
		return s.Storage.Path
	}
	return filepath.Join(repoDir, s.Storage.Path)
}
