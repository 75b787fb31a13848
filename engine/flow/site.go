package flow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Headers of a request to another site (DESIGN.md section 6).
const (
	HeaderSiteSignature = "Site-Signature"
	HeaderSrcPartyID    = "Src-Party-Id"
)

// Signer signs the body of an http step that calls another site (site:
// <party_id>). The gateway's hooks.Caller is one: it asks the signature hook.
type Signer interface {
	// SignSite signs body for party. The result is non-nil whenever the
	// hook was asked, so that the step records the callout even when it
	// failed; err says why the request must not go out.
	SignSite(ctx context.Context, traceID, party string, body []byte) (*SiteSignature, error)
}

// SiteSignature is what goes out with a signed request.
type SiteSignature struct {
	Signature  string // sent in Site-Signature
	SrcPartyID string // sent in Src-Party-Id: this site's party id
	Record     any    // the callout, kept in the step's result for the access log
}

// signSite asks the signature hook for p's body and sets Site-Signature and
// Src-Party-Id. Without a signature the request is not sent (fail closed):
// 504 when the hook timed out, 502 otherwise.
func (s *httpStep) signSite(ctx context.Context, inv *Invocation, st *step, p *prepared, res *StepResult) error {
	if s.env.Hooks == nil {
		return &Error{Status: http.StatusBadGateway, Message: fmt.Sprintf("step %q: site %s: no signature hook is configured (hooks.server)", st.id, s.site), Step: st.id, Phase: "http.site"}
	}
	hctx := ctx
	if s.env.MarkSteps {
		// The callout is the hook's, not the step's: a sandbox tells
		// them apart by the step mark.
		hctx = context.WithValue(ctx, stepKey{}, "")
	}
	sig, err := s.env.Hooks.SignSite(hctx, inv.Req.TraceID, s.site, p.body)
	if sig != nil && sig.Record != nil {
		if m, ok := res.Request.(map[string]any); ok {
			m["signature"] = sig.Record
		}
	}
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		return &Error{Status: status, Message: fmt.Sprintf("step %q: signature hook for site %s: %v", st.id, s.site, err), Step: st.id, Phase: "http.site", Err: err}
	}
	p.header.Set(HeaderSiteSignature, sig.Signature)
	p.header.Set(HeaderSrcPartyID, sig.SrcPartyID)
	return nil
}
