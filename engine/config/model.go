package config

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/databus-gateway/databus/engine/rpc/protoset"
	"github.com/databus-gateway/databus/engine/security"

	"github.com/databus-gateway/databus/engine/expr"
)

// APIVersion is the apiVersion of every document.
const APIVersion = "databus/v1"

// Duration is a time.Duration written as "5s", "100ms" or "1m30s".
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: expected a number with a unit such as 500ms, 5s or 1m", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back in its string form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration in its string form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Status is an API's lifecycle status.
type Status string

// API statuses; only StatusOnline is served.
const (
	StatusDraft      Status = "draft"
	StatusOnline     Status = "online"
	StatusOffline    Status = "offline"
	StatusDeprecated Status = "deprecated"
)

// Step types.
const (
	StepStart  = "start"
	StepHTTP   = "http"
	StepRPC    = "rpc"
	StepScript = "script"
	StepEnd    = "end"
)

// Api is one API definition (apis/*.yaml).
type Api struct {
	APIVersion  string       `yaml:"apiVersion" json:"apiVersion"`
	Kind        string       `yaml:"kind" json:"kind"`
	Code        string       `yaml:"code" json:"code"`
	Version     string       `yaml:"version" json:"version"`
	Description string       `yaml:"description,omitempty" json:"description,omitempty"`
	Status      Status       `yaml:"status" json:"status"`
	Methods     []string     `yaml:"methods" json:"methods"`
	Auth        *Auth        `yaml:"auth,omitempty" json:"auth,omitempty"`
	Policies    *ApiPolicies `yaml:"policies,omitempty" json:"policies,omitempty"`
	Input       any          `yaml:"input,omitempty" json:"input,omitempty"` // a JSON Schema: object or boolean
	Transforms  *Transforms  `yaml:"transforms,omitempty" json:"transforms,omitempty"`
	Steps       []Step       `yaml:"steps" json:"steps"`

	// Source is where the definition was read from; not part of the file.
	Source Source `yaml:"-" json:"-"`
	// exprs are the jq programs and templates of the file by JSON
	// pointer: their line, and the program as the loader compiled it.
	exprs map[string]exprAt
}

// exprAt is a jq program or template of a definition: where it stands and,
// for a program, what the loader compiled (immutable; shared with flows).
type exprAt struct {
	line int
	prog *expr.Program
}

// Compiled returns the jq program at the JSON pointer ptr as the loader
// compiled it while checking the file, or nil (not a program the loader
// saw, or an Api built in code): a flow reuses it instead of compiling the
// source again.
func (a *Api) Compiled(ptr string) *expr.Program {
	return a.exprs[ptr].prog
}

// Place names where the value at the JSON pointer ptr stands in the
// definition's file, for messages at run time:
// "apis/order.yaml:14: steps[2].transforms.response". The line is the
// value's own or its nearest ancestor's; it is left out when unknown (an
// Api built in code).
func (a *Api) Place(ptr string) string {
	for p := ptr; a.exprs != nil; {
		if e, ok := a.exprs[p]; ok {
			return fmt.Sprintf("%s:%d: %s", a.Source.File, e.line, PointerPath(ptr))
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return a.Source.File + ": " + PointerPath(ptr)
}

// ID is the API's identity, "code:version".
func (a *Api) ID() string { return a.Code + ":" + a.Version }

// Auth restricts who may call an API.
type Auth struct {
	Credentials []string `yaml:"credentials,omitempty" json:"credentials,omitempty"`
}

// ApiPolicies binds policies to an API by name.
type ApiPolicies struct {
	RateLimit string `yaml:"rateLimit,omitempty" json:"rateLimit,omitempty"`
}

// Transforms holds the jq programs of the request, response and error phases.
type Transforms struct {
	Request  string `yaml:"request,omitempty" json:"request,omitempty"`
	Response string `yaml:"response,omitempty" json:"response,omitempty"`
	Error    string `yaml:"error,omitempty" json:"error,omitempty"`
}

// Step is one step of a flow.
type Step struct {
	ID          string      `yaml:"id" json:"id"`
	Type        string      `yaml:"type" json:"type"`
	Description string      `yaml:"description,omitempty" json:"description,omitempty"`
	When        string      `yaml:"when,omitempty" json:"when,omitempty"`
	HTTP        *HTTPCall   `yaml:"http,omitempty" json:"http,omitempty"`
	RPC         *RPCCall    `yaml:"rpc,omitempty" json:"rpc,omitempty"`
	Script      *Script     `yaml:"script,omitempty" json:"script,omitempty"`
	Transforms  *Transforms `yaml:"transforms,omitempty" json:"transforms,omitempty"`
	OnError     string      `yaml:"onError,omitempty" json:"onError,omitempty"`
}

// ServiceRef names a service of the third-party registry.
type ServiceRef struct {
	Server string `yaml:"server" json:"server"`
	Name   string `yaml:"name" json:"name"`
}

// HTTPCall is the call of an http step.
type HTTPCall struct {
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	URL     string            `yaml:"url,omitempty" json:"url,omitempty"`
	Service *ServiceRef       `yaml:"service,omitempty" json:"service,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Query   map[string]string `yaml:"query,omitempty" json:"query,omitempty"`
	Timeout Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Retry   *Retry            `yaml:"retry,omitempty" json:"retry,omitempty"`
	Poll    *Poll             `yaml:"poll,omitempty" json:"poll,omitempty"`
	Stream  bool              `yaml:"stream,omitempty" json:"stream,omitempty"`
	Site    string            `yaml:"site,omitempty" json:"site,omitempty"`
	// Multipart sends the body as multipart/form-data: one file whose
	// content a jq program builds, plus form fields.
	Multipart *Multipart `yaml:"multipart,omitempty" json:"multipart,omitempty"`
}

// Multipart is the multipart/form-data body of an http step.
type Multipart struct {
	Field       string            `yaml:"field,omitempty" json:"field,omitempty"`
	Filename    string            `yaml:"filename,omitempty" json:"filename,omitempty"`
	ContentType string            `yaml:"contentType,omitempty" json:"contentType,omitempty"`
	Content     string            `yaml:"content" json:"content"`
	Fields      map[string]string `yaml:"fields,omitempty" json:"fields,omitempty"`
}

// Retry repeats failed attempts of an http step.
type Retry struct {
	Attempts int      `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	Backoff  Duration `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	Force    bool     `yaml:"force,omitempty" json:"force,omitempty"`
}

// Poll repeats an http step until a condition holds.
type Poll struct {
	Until    string   `yaml:"until" json:"until"`
	FailWhen string   `yaml:"failWhen,omitempty" json:"failWhen,omitempty"`
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// RPCCall is the call of an rpc step.
type RPCCall struct {
	Target        string            `yaml:"target,omitempty" json:"target,omitempty"`
	Service       *ServiceRef       `yaml:"service,omitempty" json:"service,omitempty"`
	Method        string            `yaml:"method" json:"method"`
	Timeout       Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Metadata      map[string]string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	TLS           bool              `yaml:"tls,omitempty" json:"tls,omitempty"`
	DescriptorSet string            `yaml:"descriptorSet,omitempty" json:"descriptorSet,omitempty"`

	// Descriptor is Method as found in DescriptorSet by the loader; nil
	// without a descriptor set (the gateway asks the server's reflection
	// service at call time). Not part of the file.
	Descriptor *protoset.Method `yaml:"-" json:"-"`
}

// Script is the program of a script step.
type Script struct {
	Lang    string   `yaml:"lang,omitempty" json:"lang,omitempty"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Source  string   `yaml:"source" json:"source"`
}

// SecretRef is a reference to a secret: env:NAME or file:PATH.
type SecretRef struct {
	Ref string `yaml:"secretRef" json:"secretRef"`
}

// Credential is one client credential (credentials/*.yaml).
type Credential struct {
	APIVersion     string         `yaml:"apiVersion" json:"apiVersion"`
	Kind           string         `yaml:"kind" json:"kind"`
	AppID          string         `yaml:"appId" json:"appId"`
	Description    string         `yaml:"description,omitempty" json:"description,omitempty"`
	Enabled        *bool          `yaml:"enabled,omitempty" json:"enabled"`
	SignatureType  string         `yaml:"signatureType,omitempty" json:"signatureType"`
	EncryptionType string         `yaml:"encryptionType,omitempty" json:"encryptionType"`
	EncryptionKey  *SecretRef     `yaml:"encryptionKey,omitempty" json:"encryptionKey,omitempty"`
	SignatureKey   *SecretRef     `yaml:"signatureKey,omitempty" json:"signatureKey,omitempty"`
	TenantID       string         `yaml:"tenantId,omitempty" json:"tenantId,omitempty"`
	AllowedIPs     []string       `yaml:"allowedIps,omitempty" json:"allowedIps,omitempty"`
	AllowAnonymous bool           `yaml:"allowAnonymous,omitempty" json:"allowAnonymous"`
	AnonymousUser  *AnonymousUser `yaml:"anonymousUser,omitempty" json:"anonymousUser,omitempty"`

	Source Source `yaml:"-" json:"-"`
}

// IsEnabled reports whether the credential may call (default true).
func (c *Credential) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// AnonymousUser is the fixed user of anonymous calls.
type AnonymousUser struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// Signature and encryption types of a credential: the wire protocol's own.
const (
	SignMD5        = security.SignMD5
	SignSHA256     = security.SignSHA256
	SignHMACSHA256 = security.SignHMACSHA256
	EncAES         = security.EncAES
	EncDES         = security.EncDES
	EncAESGCM      = security.EncAESGCM
	EncNone        = security.EncNone
)

// RateLimitPolicy is one rate-limit policy (policies/*.yaml).
type RateLimitPolicy struct {
	APIVersion    string `yaml:"apiVersion" json:"apiVersion"`
	Kind          string `yaml:"kind" json:"kind"`
	Name          string `yaml:"name" json:"name"`
	Description   string `yaml:"description,omitempty" json:"description,omitempty"`
	Algorithm     string `yaml:"algorithm,omitempty" json:"algorithm"`
	Limit         int    `yaml:"limit,omitempty" json:"limit"`
	WindowSeconds int    `yaml:"windowSeconds,omitempty" json:"windowSeconds"`
	KeyTemplate   string `yaml:"keyTemplate,omitempty" json:"keyTemplate"`

	Source Source `yaml:"-" json:"-"`
}

// Rate-limit algorithms.
const (
	AlgoFixedWindow   = "fixed-window"
	AlgoSlidingWindow = "sliding-window"
	AlgoTokenBucket   = "token-bucket"
)

// The rate-limit keys of a policy that names none. The Java gateway's
// default, ${apiCode}:${version}:${header.X-Client-Id}, counts per a header
// the caller sets freely and nothing signs: a new X-Client-Id on every call
// escaped the limit. Databus keys the default on what the chain verified
// instead; a policy that wants the header too names it in keyTemplate.
const (
	// DefaultKeyTemplate is the default with security.enabled: one counter
	// per verified appId.
	DefaultKeyTemplate = "${apiCode}:${version}:${appId}"
	// DefaultKeyTemplateOpen is the default with security.enabled false,
	// where no caller is verified: one counter per client IP
	// (X-Forwarded-For is believed only from trustedProxies).
	DefaultKeyTemplateOpen = "${apiCode}:${version}:${clientIp}"
)

// Source is the file a document was read from (relative to the repository,
// slash-separated) and the hash of its bytes.
type Source struct {
	File string `json:"file"`
	Hash string `json:"hash"`
}
