// Package client is the Go client of the Databus portal for third parties:
// it signs, encrypts, sends and decrypts calls exactly as the gateway
// expects (DESIGN.md section 4), sharing the gateway's own wire code.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/security"
)

// Credential is what a caller holds: its appId, algorithms and keys.
type Credential struct {
	AppID          string
	SignatureType  string // MD5 | SHA256 | HMAC-SHA256 (default)
	EncryptionType string // AES (default) | DES | AES-GCM | NONE
	EncryptionKey  []byte
	SignatureKey   []byte // HMAC key; defaults to EncryptionKey
}

func (c Credential) sigType() string {
	if c.SignatureType == "" {
		return security.SignHMACSHA256
	}
	return c.SignatureType
}

func (c Credential) encType() string {
	if c.EncryptionType == "" {
		return security.EncAES
	}
	return c.EncryptionType
}

func (c Credential) signKey() []byte {
	if len(c.SignatureKey) > 0 {
		return c.SignatureKey
	}
	return c.EncryptionKey
}

// Cipher returns the credential's body cipher (nil for NONE).
func (c Credential) Cipher() (security.Cipher, error) {
	return security.NewCipher(c.encType(), c.EncryptionKey)
}

// Client calls one gateway's portal.
type Client struct {
	// BaseURL is the portal's base, e.g.
	// http://127.0.0.1:8080/admin-api/databus/api/portal.
	BaseURL    string
	Credential Credential
	TenantID   string       // sent in ZT-Tenant-Id when set
	HTTP       *http.Client // nil: http.DefaultClient
	// Now and Nonce are the clock and nonce source; nil: the real clock and
	// 16 random hex digits.
	Now   func() time.Time
	Nonce func() string
}

// Request is a signed, encrypted request ready to send.
type Request struct {
	Method     string
	URL        string
	Header     http.Header
	Body       []byte // the wire body (Base64 ciphertext, or the plaintext for NONE)
	Plain      []byte // the plaintext body
	SignString string
}

// ParseAPI splits "code:version" (or "code", meaning v1).
func ParseAPI(api string) (code, version string) {
	code, version, ok := strings.Cut(api, ":")
	if !ok || version == "" {
		version = "v1"
	}
	return code, version
}

// DefaultPortal is where `databus sign` and `databus call` send calls
// unless told otherwise: the portal of `databus serve` on this machine
// (apiPortal.basePath follows).
const DefaultPortal = "http://127.0.0.1:8080"

// Prepare signs and encrypts a call of api ("code" or "code:version").
func (c *Client) Prepare(method, api string, query url.Values, body []byte) (*Request, error) {
	cred := c.Credential
	if cred.AppID == "" {
		return nil, errors.New("client: no appId")
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	nonce := c.Nonce
	if nonce == nil {
		nonce = RandomNonce
	}
	ts := strconv.FormatInt(now().UnixMilli(), 10)
	n := nonce()
	s, err := security.SignString(cred.AppID, ts, n, body, query)
	if err != nil {
		return nil, err
	}
	sig, err := security.Sign(cred.sigType(), cred.signKey(), s)
	if err != nil {
		return nil, err
	}
	cph, err := cred.Cipher()
	if err != nil {
		return nil, err
	}
	wire := body
	if len(body) > 0 {
		if wire, err = security.EncryptBody(cph, body); err != nil {
			return nil, err
		}
	}
	req := c.request(method, api, query, ts, n, sig, body, wire)
	req.SignString = s
	return req, nil
}

// Placeholders of a Template request: what only the credential's keys and
// the moment of the call can fill in.
const (
	PlaceholderTimestamp = "<unix ms>"
	PlaceholderNonce     = "<nonce>"
	PlaceholderSignature = "<signature>"
	PlaceholderBody      = "<the body, encrypted: see databus sign>"
)

// Template is the request Prepare builds, without the keys: timestamp,
// nonce, signature and (when the credential encrypts) the wire body are
// placeholders. Headers, URL and content type are exactly Prepare's, so a
// page that shows a template shows what `databus sign` sends.
func (c *Client) Template(method, api string, query url.Values, body []byte) *Request {
	wire := body
	if len(body) > 0 && c.Credential.encrypts() {
		wire = []byte(PlaceholderBody)
	}
	return c.request(method, api, query, PlaceholderTimestamp, PlaceholderNonce, PlaceholderSignature, body, wire)
}

// encrypts reports whether the credential's encryption type encrypts
// bodies (every type but NONE).
func (c Credential) encrypts() bool {
	return c.encType() != security.EncNone
}

// request assembles what Prepare and Template share: the URL, the headers
// and the content type.
func (c *Client) request(method, api string, query url.Values, ts, nonce, sig string, body, wire []byte) *Request {
	code, version := ParseAPI(api)
	u := strings.TrimSuffix(c.BaseURL, "/") + "/" + url.PathEscape(code) + "/" + url.PathEscape(version)
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	h := http.Header{}
	h.Set(security.HeaderAppID, c.Credential.AppID)
	h.Set(security.HeaderTimestamp, ts)
	h.Set(security.HeaderNonce, nonce)
	h.Set(security.HeaderSignature, sig)
	if c.TenantID != "" {
		h.Set("ZT-Tenant-Id", c.TenantID)
	}
	if len(body) > 0 {
		if c.Credential.encrypts() {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/json")
		}
	}
	if method == "" {
		method = http.MethodPost
	}
	return &Request{Method: method, URL: u, Header: h, Body: wire, Plain: body}
}

// SignedHeaders are the headers a call carries, in the order `databus
// sign` prints them.
var SignedHeaders = []string{"ZT-App-Id", "ZT-Timestamp", "ZT-Nonce", "ZT-Signature", "ZT-Tenant-Id", "Content-Type"}

// Curl renders the request as a curl command line.
func (r *Request) Curl() string {
	var b strings.Builder
	fmt.Fprintf(&b, "curl -sS -X %s %s", r.Method, ShellQuote(r.URL))
	for _, k := range SignedHeaders {
		if v := r.Header.Get(k); v != "" {
			fmt.Fprintf(&b, " \\\n  -H %s", ShellQuote(k+": "+v))
		}
	}
	if len(r.Body) > 0 {
		fmt.Fprintf(&b, " \\\n  --data-binary %s", ShellQuote(string(r.Body)))
	}
	return b.String()
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RandomNonce returns 16 random hex digits.
func RandomNonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Envelope is the gateway's answer.
type Envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
	TraceID  string          `json:"traceId"`
}

// Response is an answer with its envelope decrypted.
type Response struct {
	StatusCode int
	Header     http.Header
	Envelope   Envelope
	Raw        []byte // the envelope JSON as decrypted
	Encrypted  bool   // the answer came encrypted
}

// Send sends a prepared request and decrypts the answer.
func (c *Client) Send(ctx context.Context, req *Request) (*Response, error) {
	hr, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	hr.Header = req.Header.Clone()
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return c.Decode(resp.StatusCode, resp.Header, body)
}

// Decode reads an answer: an encrypted one (Content-Type text/plain) is
// decrypted with the credential's key first.
func (c *Client) Decode(status int, h http.Header, body []byte) (*Response, error) {
	out := &Response{StatusCode: status, Header: h, Raw: body}
	if strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		cph, err := c.Credential.Cipher()
		if err != nil {
			return nil, err
		}
		if cph != nil {
			plain, err := security.DecryptBody(cph, body)
			if err != nil {
				return nil, fmt.Errorf("client: answer does not decrypt with this credential: %w", err)
			}
			out.Raw, out.Encrypted = plain, true
		}
	}
	if err := json.Unmarshal(out.Raw, &out.Envelope); err != nil {
		return out, fmt.Errorf("client: answer is not an envelope (HTTP %d): %.200s", status, out.Raw)
	}
	return out, nil
}

// Call POSTs body (JSON) to api ("code" or "code:version") and returns the
// decrypted answer.
func (c *Client) Call(ctx context.Context, api string, body []byte) (*Response, error) {
	req, err := c.Prepare(http.MethodPost, api, nil, body)
	if err != nil {
		return nil, err
	}
	return c.Send(ctx, req)
}
