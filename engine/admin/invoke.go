package admin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/store"
)

// InvokeRequest is the body of POST /databus/gateway/invoke: a debug call
// of a repository API (apiCode, version) or of an inline draft definition,
// run without the portal's security chain.
type InvokeRequest struct {
	APICode    string            `json:"apiCode"`
	Version    string            `json:"version"`
	Definition json.RawMessage   `json:"definition,omitempty"` // an Api as a JSON object or as YAML text
	Method     string            `json:"method"`
	Headers    map[string]string `json:"headers"`
	Query      map[string]string `json:"query"`
	Body       json.RawMessage   `json:"body"` // any JSON; a JSON string is sent as plain text
	AppID      string            `json:"appId"`
	TenantID   string            `json:"tenantId"`
}

// InvokeResult is the answer: the envelope the portal would send, the step
// results, and the diagnostics of a draft that does not validate.
type InvokeResult struct {
	Envelope    map[string]any      `json:"envelope,omitempty"`
	StepResults []store.StepRecord  `json:"stepResults"`
	DurationMs  float64             `json:"durationMs"`
	TraceID     string              `json:"traceId"`
	Draft       bool                `json:"draft"`
	Errors      []config.Diagnostic `json:"errors,omitempty"`
}

const maxInvokeBody = 10 << 20

func (a *API) invoke(w http.ResponseWriter, r *http.Request) {
	var in InvokeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxInvokeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "invoke: the body must be JSON {apiCode, version | definition, method, headers, query, body}: %v", err)
		return
	}
	snap := a.gw.Acquire()
	if snap == nil {
		fail(w, http.StatusServiceUnavailable, "invoke: no configuration is loaded")
		return
	}
	defer snap.Release()
	var f *flow.Flow
	var api *config.Api
	draft := len(in.Definition) > 0 && string(in.Definition) != "null"
	if draft {
		src := []byte(in.Definition)
		var text string
		if json.Unmarshal(in.Definition, &text) == nil {
			src = []byte(text) // YAML given as a string
		}
		// The draft passes the same gate as a file of apis/.
		compiled, def, diags := gate.Draft(snap, "draft.yaml", src)
		if compiled == nil {
			write(w, http.StatusBadRequest, Reply{Code: http.StatusBadRequest, Message: "the draft definition is invalid", Data: InvokeResult{Draft: true, Errors: diags.Errors(), StepResults: []store.StepRecord{}}})
			return
		}
		f, api = compiled, def
	} else {
		version := in.Version
		if version == "" {
			version = "v1"
		}
		rt := snap.Route(in.APICode, version)
		if rt == nil {
			fail(w, http.StatusNotFound, "no API %s:%s in the repository (give apiCode and version, or a definition)", in.APICode, version)
			return
		}
		f, api = rt.Flow, rt.API
	}
	method := strings.ToUpper(in.Method)
	if method == "" {
		method = api.Methods[0]
	}
	var body []byte
	ctype := ""
	if len(in.Body) > 0 && string(in.Body) != "null" {
		var text string
		if json.Unmarshal(in.Body, &text) == nil {
			body, ctype = []byte(text), "text/plain; charset=utf-8"
		} else {
			body, ctype = []byte(in.Body), "application/json"
		}
	}
	header := http.Header{}
	for k, v := range in.Headers {
		header.Set(k, v)
	}
	query := url.Values{}
	for k, v := range in.Query {
		query.Set(k, v)
	}
	started := time.Now()
	trace := call.NewTraceID(started)
	req := &flow.Request{
		Method: method, Path: "/invoke/" + api.Code + "/" + api.Version, Header: header, Query: query, Body: body,
		ContentType: ctype, APICode: api.Code, Version: api.Version, AppID: in.AppID, TenantID: in.TenantID,
		IP: clientIP(r), TraceID: trace, Authorization: header.Get("Authorization"),
	}
	out := call.Run(r.Context(), f, req, false) // a stream is read, bounded, for the debug answer
	defer out.Close()
	elapsed := time.Since(started)
	response := json.RawMessage(out.Response)
	if len(response) == 0 {
		response = json.RawMessage("null")
	}
	al := snap.Settings.Storage.AccessLog
	steps := call.StepRecords(out.Steps, *al.MaxBodyChars)
	if a.acc != nil && *snap.Settings.APIPortal.EnableAudit {
		rec := call.Record(&call.Exchange{
			TraceID: trace, APICode: api.Code, Version: api.Version, AppID: in.AppID, TenantID: in.TenantID,
			ClientIP: req.IP, Method: method, Path: r.URL.Path, Header: header, Body: body,
			Status: out.Status, Message: out.Message, Response: response, Steps: out.Steps,
			Started: started, Elapsed: elapsed,
			Extra: map[string]any{"debug": true, "draft": draft, "by": tokenName(r.Context())},
		}, *al.MaxBodyChars, al.RedactHeaders)
		a.acc.Append(rec)
	}
	ok(w, InvokeResult{
		Envelope:    map[string]any{"code": out.Status, "message": out.Message, "response": response, "traceId": trace},
		StepResults: steps, DurationMs: call.Millis(elapsed), TraceID: trace, Draft: draft,
	})
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
