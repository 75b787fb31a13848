package portal

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/hooks"
	"github.com/databus-gateway/databus/engine/security"
)

// Refusal reasons of the hooks stage.
const (
	ReasonClientAuth      = "client_authentication"
	ReasonSiteAuth        = "site_authentication"
	ReasonPermission      = "permission"
	ReasonHookUnavailable = "hook_unavailable"
)

// Messages of the hooks stage. A hook's refusal answers with the hook's own
// message; these stand in when it gave none.
const (
	MsgClientAuthFailed = "客户端认证失败"
	MsgSiteAuthFailed   = "站点认证失败"
	MsgPermissionDenied = "鉴权未通过"
	// MsgHookUnavailableFmt: the service that could not answer, and why
	// in a few words ("timed out after 3s", "answered HTTP 500", ...).
	MsgHookUnavailableFmt = "%s暂不可用（%s）"
)

// hookStage says how a hook's failure answers.
type hookStage struct {
	name       string // the hook
	service    string // the envelope's name for it
	status     int    // the status of a refusal
	reason     string // the refusal reason for logs and metrics
	refusalMsg string // the refusal message when the hook gave none
}

var (
	clientAuthStage = hookStage{hooks.ClientAuthentication, "客户端认证服务", http.StatusUnauthorized, ReasonClientAuth, MsgClientAuthFailed}
	siteAuthStage   = hookStage{hooks.SiteAuthentication, "站点认证服务", http.StatusUnauthorized, ReasonSiteAuth, MsgSiteAuthFailed}
	permissionStage = hookStage{hooks.Permission, "鉴权服务", http.StatusForbidden, ReasonPermission, MsgPermissionDenied}
)

// hooks runs the callouts hooks enables (DESIGN.md section 6), after the
// security chain and the anonymous user, before the rate limit: client and
// site authentication — both when both are on — then permission. Site
// authentication is for requests carrying Src-Party-Id or Site-Signature;
// one with neither is a caller of this site and skips it. The
// hooks see the decrypted body. A refusal answers 401 (authentication) or
// 403 (permission) with the hook's message; a hook that cannot answer
// (not registered, no registry, timeout, transport error, non-200, not
// JSON) refuses the request too, with 503 naming the service.
func (h *Handler) hooks(c *Call) *fault {
	hs := c.Snap.Settings.Hooks
	if !hs.ClientAuthentication && !hs.SiteAuthentication && !hs.Permission {
		return nil
	}
	ctx := c.R.Context()
	hk := c.Snap.Hooks
	party := "" // the caller's party once site_authentication verified it
	if hs.ClientAuthentication {
		res := hk.ClientAuthentication(ctx, c.TraceID, c.R, c.Body, c.contentType())
		if f := h.hookOutcome(c, clientAuthStage, res, nil); f != nil {
			return f
		}
	}
	if hs.SiteAuthentication {
		src, okSrc := single(c.R, hooks.HeaderSrcPartyID)
		sig, okSig := single(c.R, hooks.HeaderSiteSignature)
		hasSrc := len(c.R.Header.Values(hooks.HeaderSrcPartyID)) > 0
		hasSig := len(c.R.Header.Values(hooks.HeaderSiteSignature)) > 0
		var missing []string
		if !okSrc || src == "" {
			missing = append(missing, hooks.HeaderSrcPartyID)
		}
		if !okSig || sig == "" {
			missing = append(missing, hooks.HeaderSiteSignature)
		}
		switch {
		case !hasSrc && !hasSig:
			// Neither header: not a site's request but one of this site's
			// own callers, as FATE Flow takes a request without a source
			// party for its own party's. site_authentication is not
			// called; client authentication, the credential and
			// permission (by appId) decide.
			c.Chain = append(c.Chain, flow.StepResult{ID: hooks.SiteAuthentication, Type: "hook",
				Response: map[string]any{"outcome": "skipped", "message": "not called: no " + hooks.HeaderSrcPartyID + " or " + hooks.HeaderSiteSignature + " header, a caller of this site"}})
		case len(missing) > 0:
			// A site's request with a header missing, empty or repeated
			// is refused: it says it comes from a site but cannot be
			// verified as one.
			names := strings.Join(missing, "、")
			c.Chain = append(c.Chain, flow.StepResult{ID: hooks.SiteAuthentication, Type: "hook", Error: "not called: missing or repeated header " + names})
			return refuse(ReasonSiteAuth, http.StatusUnauthorized, fmt.Sprintf("%s：缺少 %s 请求头", MsgSiteAuthFailed, names))
		default:
			res := hk.SiteAuthentication(ctx, c.TraceID, src, sig, c.Body)
			if f := h.hookOutcome(c, siteAuthStage, res, nil); f != nil {
				return f
			}
			party = src
		}
	}
	if hs.Permission {
		s := hooks.Subject{Party: party, AppID: c.AppID(), TenantID: c.TenantID, TraceID: c.TraceID,
			APICode: c.Route.API.Code, Version: c.Route.API.Version, Method: c.R.Method}
		if s.Party == "" {
			s.Party = s.AppID
		}
		body := hk.NewPermissionRequest(s)
		res := hk.Call(ctx, hooks.Permission, c.TraceID, body)
		if f := h.hookOutcome(c, permissionStage, res, body); f != nil {
			return f
		}
	}
	return nil
}

// hookOutcome records a callout beside the step results and turns its
// failure into the refusal. sent is the request body to record (nil: none;
// authentication bodies carry the caller's headers and signatures).
func (h *Handler) hookOutcome(c *Call, st hookStage, res *hooks.Result, sent any) *fault {
	req := map[string]any{"method": res.Method}
	if res.URL != "" {
		req["url"] = res.URL
	}
	if sent != nil {
		req["body"] = sent
	}
	resp := map[string]any{"outcome": res.Outcome}
	if res.Message != "" {
		resp["message"] = res.Message
	}
	if res.Raw != nil {
		resp["body"] = string(res.Raw)
	}
	r := flow.StepResult{ID: st.name, Type: "hook", Status: res.Status, Elapsed: res.Elapsed, Request: req, Response: resp}
	if res.Err != nil {
		r.Error = res.Err.Error()
	}
	c.Chain = append(c.Chain, r)
	key := "hook " + st.name
	switch {
	case res.OK():
		if h.faults.recovered(key) {
			h.log.Info("hook available again", "hook", st.name)
		}
		return nil
	case res.Refused():
		h.log.Debug("hook refused the request", "hook", st.name, "traceId", c.TraceID, "reason", res.Reason)
		msg := res.Message
		if msg == "" {
			msg = st.refusalMsg
		}
		return refuse(st.reason, st.status, msg)
	}
	if due, suppressed := h.faults.due(key); due {
		h.log.Warn("hook unavailable: requests are refused", "hook", st.name, "error", res.Err, "traceId", c.TraceID, "failuresNotLogged", suppressed)
	}
	return refuse(ReasonHookUnavailable, http.StatusServiceUnavailable, fmt.Sprintf(MsgHookUnavailableFmt, st.service, res.Reason))
}

// AppID is the caller's appId: the credential's, or with security off the
// ZT-App-Id header as sent.
func (c *Call) AppID() string {
	if c.Cred != nil {
		return c.Cred.AppID
	}
	return c.R.Header.Get(security.HeaderAppID)
}

// contentType is the content type of c.Body: the request's, or what a
// decrypted body holds.
func (c *Call) contentType() string {
	if c.decrypted {
		return contentTypeOf(c.Body)
	}
	return c.R.Header.Get("Content-Type")
}
