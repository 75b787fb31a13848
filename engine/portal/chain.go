package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// Refusal reasons, for logs, metrics and the access log's errorCode. Every
// refusal names one where it is made (refuse); nothing is inferred from a
// message afterwards.
const (
	ReasonRoute     = "route"
	ReasonIP        = "ip"
	ReasonBody      = "body"        // the body is too large or could not be read
	ReasonBudget    = "body_budget" // apiPortal.maxBodyBytesInFlight is spent
	ReasonHeader    = "header"      // the headers are too large
	ReasonCred      = "credential"
	ReasonNoKey     = "no_key"
	ReasonTimestamp = "timestamp"
	ReasonNonce     = "nonce"
	ReasonReplay    = "replay"
	ReasonDecrypt   = "decrypt"
	ReasonSignature = "signature"
	ReasonTenant    = "tenant"
	ReasonForbidden = "forbidden"
	ReasonMethod    = "method"
	ReasonInternal  = "internal"
	ReasonNoConfig  = "unavailable" // no configuration is loaded yet
)

// Messages beyond DESIGN.md's table.
const (
	MsgTenantMismatch = "租户与应用凭证不符"
	MsgNonceStore     = "防重放校验暂不可用"
)

// Nonce length bounds.
const (
	minNonce = 8
	maxNonce = 128
)

// serve runs the portal in DESIGN.md section 4's order, except that
// everything the request line and headers decide comes before the body is
// read, so that no caller who would be refused anyway can make the gateway
// hold a body: IP deny/allow → credential → timestamp → tenant → API and
// method → caller allowed → admission (apiPortal.maxInFlight and its
// queue) → body (apiPortal.maxBodyBytes, the in-flight budget) → nonce form → body decryption → signature → nonce spent → JSON
// bounds → anonymous user → hooks (client and site authentication,
// permission) → rate limit → flow. With security.enabled false the
// credential, timestamp, nonce, decryption and signature stages are skipped.
//
// The nonce is checked in two places: its form before decryption, its reuse
// right after the signature verified (spend). Only a request signed with the
// credential's key can spend a nonce, so callers who merely know an appId
// (it travels in clear) can neither burn a real caller's nonce nor fill the
// nonce store.
func (h *Handler) serve(c *Call) *fault {
	var f *fault
	if c.span != nil {
		f = h.tracedChain(c)
	} else {
		f = h.chain(c)
	}
	if f != nil {
		return f
	}
	return h.runFlow(c)
}

// chain is serve's checks, in order, up to the flow.
func (h *Handler) chain(c *Call) *fault {
	code, version, ok := route(c.Snap.BasePaths, c.R.URL.EscapedPath())
	if !ok {
		return refuse(ReasonRoute, http.StatusNotFound, MsgNotFound)
	}
	c.ClientIP = security.ClientIP(c.R, c.Snap.TrustedProxies)
	if !security.IPAllowed(c.ClientIP, c.Snap.AllowedIPs, c.Snap.DeniedIPs) {
		return refuse(ReasonIP, http.StatusForbidden, MsgIPDenied)
	}
	sec := c.Snap.Settings.APIPortal.Security
	// A trusted portal (a sandbox replaying recorded traffic) knows the
	// caller by its appId alone: the crypto stages are skipped.
	proof := *sec.Enabled && !h.trusted
	switch {
	case proof:
		if f := h.credential(c); f != nil {
			return f
		}
		if f := h.timestamp(c, sec.AllowedClockSkewSeconds); f != nil {
			return f
		}
	case *sec.Enabled:
		cred, f := h.caller(c)
		if f != nil {
			return f
		}
		c.Cred = cred
	}
	if f := h.tenant(c); f != nil {
		return f
	}
	c.Route = c.Snap.Online(code, version)
	if c.Route == nil {
		return refuse(ReasonRoute, http.StatusNotFound, MsgNotFound)
	}
	if !c.Route.Methods[c.R.Method] {
		c.W.Header().Set("Allow", c.Route.Allow)
		return refuse(ReasonMethod, http.StatusMethodNotAllowed, MsgMethod)
	}
	if c.Cred != nil && !c.Route.Allows(c.Cred.AppID) {
		return refuse(ReasonForbidden, http.StatusForbidden, MsgForbiddenAPI)
	}
	if f := h.admit(c); f != nil {
		return f
	}
	if f := h.readBody(c); f != nil {
		return f
	}
	if proof {
		if f := h.nonce(c); f != nil {
			return f
		}
		if f := h.decrypt(c, *sec.RequireBodyEncryption); f != nil {
			return f
		}
		if f := h.signature(c); f != nil {
			return f
		}
		if f := h.spend(c, time.Duration(sec.NonceTTLSeconds)*time.Second); f != nil {
			return f
		}
	}
	if f := h.checkJSON(c); f != nil {
		return f
	}
	if f := h.anonymous(c); f != nil {
		return f
	}
	if f := h.hooks(c); f != nil {
		return f
	}
	return h.rateLimit(c)
}

// refuse is the refusal of a request: every refusal names its reason,
// which the metrics and the access log's errorCode carry.
func refuse(reason string, status int, message string) *fault {
	return &fault{reason: reason, status: status, message: message}
}

// single returns the one value of header name; more than one is malformed.
func single(r *http.Request, name string) (string, bool) {
	v := r.Header.Values(name)
	switch len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	return "", false
}

// caller finds the credential ZT-App-Id names: known, enabled, and
// allowed from the client's address.
func (h *Handler) caller(c *Call) (*snapshot.Credential, *fault) {
	appID, ok := single(c.R, security.HeaderAppID)
	if !ok || appID == "" {
		return nil, refuse(ReasonCred, http.StatusUnauthorized, MsgBadCredential)
	}
	cred := c.Snap.Credentials[appID]
	if cred == nil || !cred.IsEnabled() {
		return nil, refuse(ReasonCred, http.StatusUnauthorized, MsgBadCredential)
	}
	if len(cred.AllowedIPs) > 0 && !security.Contains(cred.AllowedIPs, c.ClientIP) {
		return nil, refuse(ReasonIP, http.StatusForbidden, MsgIPDenied)
	}
	return cred, nil
}

// credential is caller for a caller that proves itself: the credential
// needs a usable key.
func (h *Handler) credential(c *Call) *fault {
	cred, f := h.caller(c)
	if f != nil {
		return f
	}
	appID := cred.AppID
	if cred.KeyProblem != "" {
		// Anyone who knows the appId can send this: log once per interval.
		if due, suppressed := h.faults.due("key " + appID); due {
			h.log.Error("credential has no usable key", "appId", appID, "problem", cred.KeyProblem, "traceId", c.TraceID, "failuresNotLogged", suppressed)
		}
		return refuse(ReasonNoKey, http.StatusInternalServerError, MsgNoKey)
	}
	c.Cred = cred
	// From here on the caller is known: answers are encrypted for it.
	if *c.Snap.Settings.APIPortal.Security.EncryptResponse {
		c.encrypt = cred.Cipher
	}
	return nil
}

func (h *Handler) timestamp(c *Call, skewSeconds int) *fault {
	msg := fmt.Sprintf(MsgClockSkewFmt, skewSeconds)
	raw, ok := single(c.R, security.HeaderTimestamp)
	ts, err := strconv.ParseInt(raw, 10, 64)
	if !ok || err != nil || ts <= 0 {
		return refuse(ReasonTimestamp, http.StatusUnauthorized, msg+"（ZT-Timestamp 须为毫秒时间戳）")
	}
	skew := h.now().UnixMilli() - ts
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(skewSeconds)*1000 {
		return refuse(ReasonTimestamp, http.StatusUnauthorized, msg)
	}
	c.timestamp = raw
	return nil
}

// nonce checks the nonce's form; spend records it once the signature
// verified.
func (h *Handler) nonce(c *Call) *fault {
	n, ok := single(c.R, security.HeaderNonce)
	if !ok || len(n) < minNonce || len(n) > maxNonce {
		return refuse(ReasonNonce, http.StatusUnauthorized, fmt.Sprintf("%s（ZT-Nonce 须为 %d 到 %d 个字符）", MsgReplay, minNonce, maxNonce))
	}
	c.nonce = n
	return nil
}

// spend uses the nonce in the store, atomically: of two requests carrying
// it within its TTL, one passes. It runs after the signature verified, so
// a request that fails any earlier check leaves the nonce unspent. Checking
// reuse before the signature as well would cost every valid call a second
// store round trip and save nothing: a replay costs the same decryption
// and verification as a forgery, which anyone can send.
func (h *Handler) spend(c *Call, ttl time.Duration) *fault {
	ctx, cancel := context.WithTimeout(c.R.Context(), time.Second)
	defer cancel()
	store := c.Snap.Nonces
	if store == nil {
		store = h.nonces
	}
	fresh, err := store.Use(ctx, c.Cred.AppID+"\x00"+c.nonce, ttl)
	if err != nil {
		// Replay protection cannot be checked: fail closed.
		h.faults.report(h, "nonce", c.Snap.StoreBackend, err)
		return refuse(ReasonStore, http.StatusServiceUnavailable, MsgNonceStore)
	}
	h.faults.ok(h, "nonce")
	if !fresh {
		return refuse(ReasonReplay, http.StatusUnauthorized, MsgReplay)
	}
	return nil
}

func (h *Handler) decrypt(c *Call, required bool) *fault {
	if c.Cred.Cipher == nil || len(c.Body) == 0 {
		return nil
	}
	plain, err := security.DecryptBody(c.Cred.Cipher, c.Body)
	if err != nil {
		if required {
			return refuse(ReasonDecrypt, http.StatusBadRequest, MsgBadCiphertext)
		}
		// requireBodyEncryption: false accepts a plaintext body.
		return nil
	}
	c.Body = plain
	c.decrypted = true
	return nil
}

func (h *Handler) signature(c *Call) *fault {
	got, ok := single(c.R, security.HeaderSignature)
	if !ok || got == "" {
		return refuse(ReasonSignature, http.StatusUnauthorized, MsgBadSignature)
	}
	q, err := url.ParseQuery(c.R.URL.RawQuery)
	if err != nil {
		return refuse(ReasonSignature, http.StatusUnauthorized, MsgBadSignature)
	}
	s, err := security.SignString(c.Cred.AppID, c.timestamp, c.nonce, c.Body, q)
	if err != nil || !security.VerifySignature(c.Cred.SignatureType, c.Cred.SignKey, s, got) {
		return refuse(ReasonSignature, http.StatusUnauthorized, MsgBadSignature)
	}
	return nil
}

// tenant takes the tenant from the tenant header; a credential's pinned
// tenant wins, and a header naming another tenant is refused.
func (h *Handler) tenant(c *Call) *fault {
	p := c.Snap.Settings.APIPortal
	var header string
	if *p.EnableTenantHeader {
		v, ok := single(c.R, p.TenantHeader)
		if !ok {
			return refuse(ReasonTenant, http.StatusForbidden, MsgTenantMismatch)
		}
		header = v
	}
	c.TenantID = header
	if c.Cred != nil && c.Cred.TenantID != "" {
		if header != "" && header != c.Cred.TenantID {
			return refuse(ReasonTenant, http.StatusForbidden, MsgTenantMismatch)
		}
		c.TenantID = c.Cred.TenantID
	}
	return nil
}

// anonymous runs an allowAnonymous credential's calls as its fixed user,
// with an internal JWT for upstream steps. A caller's own Authorization
// header is passed through instead.
func (h *Handler) anonymous(c *Call) *fault {
	c.Authorization = c.R.Header.Get("Authorization")
	if c.Cred == nil || !c.Cred.AllowAnonymous || c.Cred.AnonymousUser == nil {
		return nil
	}
	u := c.Cred.AnonymousUser
	c.User = map[string]any{"id": u.ID, "name": u.Name}
	if c.Authorization != "" {
		return nil
	}
	if c.Snap.JWTKey == nil {
		h.log.Error("anonymous call without a JWT key", "appId", c.Cred.AppID, "problem", c.Snap.JWTProblem)
		return refuse(ReasonInternal, http.StatusInternalServerError, MsgNoKey)
	}
	ttl := c.Snap.Settings.APIPortal.Security.JWT.TTL.D()
	tok, err := security.IssueJWT(c.Snap.JWTKey, ttl, u.ID, u.Name, c.Cred.AppID, c.TenantID, c.TraceID, h.now())
	if err != nil {
		h.log.Error("issuing internal JWT failed", "error", err)
		return refuse(ReasonInternal, http.StatusInternalServerError, MsgInternal)
	}
	c.Authorization = "Bearer " + tok
	return nil
}

// sealed encrypts an envelope for the caller.
func sealed(cph security.Cipher, envelope []byte) ([]byte, error) {
	if cph == nil {
		return envelope, errors.New("no cipher")
	}
	return security.EncryptBody(cph, envelope)
}
