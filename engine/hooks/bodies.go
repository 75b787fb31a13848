package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/databus-gateway/databus/engine/flow"
)

// Headers of a site's request: who sent it, and its signature.
const (
	HeaderSrcPartyID    = flow.HeaderSrcPartyID
	HeaderSiteSignature = flow.HeaderSiteSignature
)

// Roles in the permission hook's body. A portal caller initiates the call,
// as FATE's guest initiates a job; Databus answers for its own party as the
// host.
const (
	RoleGuest = "guest"
	RoleHost  = "host"
)

// Body is a request body as a hook receives it: the JSON value when the
// bytes parse as JSON, else their text as a JSON string ("" when empty).
// It always serialises.
type Body []byte

// MarshalJSON implements json.Marshaler.
func (b Body) MarshalJSON() ([]byte, error) {
	if len(bytes.TrimSpace(b)) > 0 && json.Valid(b) {
		return b, nil
	}
	return json.Marshal(string(b))
}

// ClientAuthenticationRequest is the body of client_authentication.
type ClientAuthenticationRequest struct {
	// FullPath is the request's path and query as the caller sent them.
	FullPath string `json:"full_path"`
	// Headers are the request's headers (and Host), the values of a
	// repeated header joined with ", ".
	Headers map[string]string `json:"headers"`
	// Form holds the fields of an urlencoded or multipart body (files
	// left out), repeated values joined with ","; {} for any other body.
	Form map[string]string `json:"form"`
	// JSON is the (decrypted) body when it is JSON, else null.
	JSON json.RawMessage `json:"json"`
}

// SiteAuthenticationRequest is the body of site_authentication.
type SiteAuthenticationRequest struct {
	SrcPartyID    string `json:"src_party_id"`
	SiteSignature string `json:"site_signature"`
	Body          Body   `json:"body"`
}

// SignatureRequest is the body of signature.
type SignatureRequest struct {
	PartyID string `json:"party_id"`
	Body    Body   `json:"body"`
}

// PermissionRequest is the body of permission, in FATE Flow's shape.
type PermissionRequest struct {
	SrcRole             string              `json:"src_role"`
	SrcPartyID          string              `json:"src_party_id"`
	Role                string              `json:"role"`
	PartyID             string              `json:"party_id"`
	Initiator           map[string]string   `json:"initiator"`
	Roles               map[string][]string `json:"roles"`
	ComponentList       []string            `json:"component_list"`
	DatasetList         []any               `json:"dataset_list"`
	RunTimeConf         map[string]any      `json:"run_time_conf"`
	DSL                 map[string]any      `json:"dsl"`
	ComponentParameters map[string]any      `json:"component_parameters"`
}

// maxFormFields bounds what a form yields to client_authentication.
const maxFormFields = 1000

// NewClientAuthenticationRequest builds client_authentication's body from
// the portal request r, its (decrypted) body, and the body's content type.
func NewClientAuthenticationRequest(r *http.Request, body []byte, contentType string) *ClientAuthenticationRequest {
	req := &ClientAuthenticationRequest{
		FullPath: r.URL.RequestURI(),
		Headers:  make(map[string]string, len(r.Header)+1),
		Form:     formOf(body, contentType),
	}
	for k, v := range r.Header {
		req.Headers[k] = strings.Join(v, ", ")
	}
	if r.Host != "" {
		req.Headers["Host"] = r.Host
	}
	if len(bytes.TrimSpace(body)) > 0 && json.Valid(body) {
		req.JSON = body
	}
	return req
}

// formOf reads the fields of an urlencoded or multipart body.
func formOf(body []byte, contentType string) map[string]string {
	form := map[string]string{}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || len(body) == 0 {
		return form
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return form
		}
		for k, v := range vals {
			if len(form) == maxFormFields {
				break
			}
			form[k] = strings.Join(v, ",")
		}
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for len(form) < maxFormFields {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			name := p.FormName()
			if name == "" || p.FileName() != "" {
				continue // files are not form fields
			}
			v, err := io.ReadAll(p)
			if err != nil {
				break
			}
			if prev, ok := form[name]; ok {
				form[name] = prev + "," + string(v)
			} else {
				form[name] = string(v)
			}
		}
	}
	return form
}

// ClientAuthentication asks client_authentication about a portal request.
func (c *Caller) ClientAuthentication(ctx context.Context, traceID string, r *http.Request, body []byte, contentType string) *Result {
	return c.Call(ctx, ClientAuthentication, traceID, NewClientAuthenticationRequest(r, body, contentType))
}

// SiteAuthentication asks site_authentication whether signature is
// srcPartyID's signature of body.
func (c *Caller) SiteAuthentication(ctx context.Context, traceID, srcPartyID, signature string, body []byte) *Result {
	return c.Call(ctx, SiteAuthentication, traceID, &SiteAuthenticationRequest{SrcPartyID: srcPartyID, SiteSignature: signature, Body: body})
}

// Subject is a portal caller asking for an API, as permission sees it.
type Subject struct {
	// Party is the caller's party: the Src-Party-Id that
	// site_authentication verified, else the caller's appId.
	Party    string
	AppID    string
	TenantID string
	TraceID  string
	APICode  string
	Version  string
	Method   string
}

// NewPermissionRequest builds permission's body. The caller is the guest
// (src_role "guest", src_party_id its party), this site the host (role
// "host", party_id hooks.partyId); the API is the one component,
// "code:version"; run_time_conf carries the request's appId, tenant, method
// and trace id; no datasets, dsl or component parameters.
func (c *Caller) NewPermissionRequest(s Subject) *PermissionRequest {
	party := c.PartyID()
	return &PermissionRequest{
		SrcRole:       RoleGuest,
		SrcPartyID:    s.Party,
		Role:          RoleHost,
		PartyID:       party,
		Initiator:     map[string]string{"role": RoleGuest, "party_id": s.Party},
		Roles:         map[string][]string{RoleGuest: {s.Party}, RoleHost: {party}},
		ComponentList: []string{s.APICode + ":" + s.Version},
		DatasetList:   []any{},
		RunTimeConf: map[string]any{
			"app_id": s.AppID, "tenant_id": s.TenantID, "method": s.Method, "trace_id": s.TraceID,
		},
		DSL:                 map[string]any{},
		ComponentParameters: map[string]any{},
	}
}

// Permission asks permission whether s may call its API.
func (c *Caller) Permission(ctx context.Context, s Subject) *Result {
	return c.Call(ctx, Permission, s.TraceID, c.NewPermissionRequest(s))
}

// PartyID is this site's party id (hooks.partyId).
func (c *Caller) PartyID() string {
	if c == nil {
		return ""
	}
	return c.settings.PartyID
}

var _ flow.Signer = (*Caller)(nil)

// SignSite asks signature for body sent to party. The answer's
// site_signature (or data, as FATE Flow's own hook answers) is the
// signature; Src-Party-Id is hooks.partyId.
func (c *Caller) SignSite(ctx context.Context, traceID, party string, body []byte) (*flow.SiteSignature, error) {
	src := c.PartyID()
	if src == "" {
		return nil, &shortError{kind: ErrUnavailable, reason: "hooks.partyId is not set: the remote site needs Src-Party-Id"}
	}
	var sig string
	res := c.call(ctx, Signature, traceID, &SignatureRequest{PartyID: party, Body: body}, func(answer map[string]any) string {
		for _, k := range []string{"site_signature", "data"} {
			if s, ok := answer[k].(string); ok && s != "" {
				sig = s
				return ""
			}
		}
		return "the answer has neither site_signature nor data"
	})
	out := &flow.SiteSignature{Signature: sig, SrcPartyID: src, Record: res.Record()}
	if !res.OK() {
		return out, res.Short()
	}
	return out, nil
}

// Short is Err in a few words, for an envelope: "refused: <message>",
// "unavailable: timed out after 3s". It matches ErrRefused or
// ErrUnavailable, and context.DeadlineExceeded after a timeout.
func (r *Result) Short() error {
	switch {
	case r.Err == nil:
		return nil
	case r.Refused():
		return &shortError{kind: ErrRefused, reason: r.Reason}
	}
	return &shortError{kind: ErrUnavailable, reason: r.Reason, timeout: r.Outcome == OutcomeTimeout}
}

type shortError struct {
	kind    error
	reason  string
	timeout bool
}

func (e *shortError) Error() string { return e.kind.Error() + ": " + e.reason }

func (e *shortError) Is(target error) bool {
	return target == e.kind || (e.timeout && target == context.DeadlineExceeded)
}
