// Package replay runs recorded traffic against a candidate config: each
// access-log record kept whole by storage.accessLog.capture is sent again
// through a sandbox (engine/sandbox, built by the one gate) whose stubs
// answer every outbound call with the raw result the record holds for the
// same step, so no upstream is called. The candidate's answer is compared
// with the recorded one: status, message, the response as JSON, the steps'
// path and what each step sent upstream.
//
// Sessions are Trusted: the recorded request's signature cannot be made
// again (the record never holds it, nor any key), so the candidate takes
// the recorded appId without proof and the body as the plaintext the
// record holds; IP filters, the credential's API list, tenant, hooks and
// rate limits still apply. Changes to the signature, timestamp, nonce or
// encryption settings are therefore not exercised by a replay.
//
// Records are read (an admin URL or a JSON-lines export) by engine/traffic.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/hooks"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/sandbox"
	"github.com/databus-gateway/databus/engine/security"
	"github.com/databus-gateway/databus/engine/store"
)

// Outcomes of one record.
const (
	Identical     = "identical"
	Differs       = "differs"
	NotReplayable = "not replayable"
)

// Difference kinds.
const (
	DiffStatus      = "status"
	DiffMessage     = "message"
	DiffResponse    = "response"
	DiffPath        = "path"         // the steps that ran, skipped or failed
	DiffStepRequest = "step request" // what a step sent upstream
	DiffNotRecorded = "step not recorded"
)

// Result is the replay of one record.
type Result struct {
	ID      string       `json:"id"`
	TraceID string       `json:"traceId"`
	API     string       `json:"api"` // code:version; "-" when the request matched none
	Outcome string       `json:"outcome"`
	Reason  string       `json:"reason,omitempty"` // not replayable: why
	Diffs   []Difference `json:"differences,omitempty"`
}

// Difference is one way the candidate's answer differs from the record.
type Difference struct {
	Kind      string   `json:"kind"`
	Step      string   `json:"step,omitempty"`
	Recorded  string   `json:"recorded,omitempty"`
	Candidate string   `json:"candidate,omitempty"`
	Changes   []Change `json:"changes,omitempty"` // response, step request: the JSON diff
	More      int      `json:"more,omitempty"`    // changes beyond those listed
}

// Replayer replays records on a sandbox, one at a time.
type Replayer struct {
	sb       *sandbox.Sandbox
	services []registry.Service
}

// New makes a Replayer on sb: its sessions' registries hold every service
// the candidate's steps and hooks name, answered from the records.
func New(sb *sandbox.Sandbox) *Replayer {
	return &Replayer{sb: sb, services: servicesOf(sb.Snapshot().Repo)}
}

func servicesOf(repo *config.Repository) []registry.Service {
	seen := map[string]bool{}
	var out []registry.Service
	add := func(server, name string) {
		k := strings.ToUpper(server) + "\x00" + name
		if server == "" || name == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, registry.Service{ServerName: server, ServiceName: name, Method: http.MethodPost})
	}
	for _, api := range repo.APIs {
		for _, st := range api.Steps {
			if st.HTTP != nil && st.HTTP.Service != nil {
				add(st.HTTP.Service.Server, st.HTTP.Service.Name)
			}
			if st.RPC != nil && st.RPC.Service != nil {
				add(st.RPC.Service.Server, st.RPC.Service.Name)
			}
		}
	}
	if repo.Settings != nil {
		for _, name := range []string{hooks.ClientAuthentication, hooks.SiteAuthentication, hooks.Signature, hooks.Permission} {
			add(repo.Settings.Hooks.Server, name)
		}
	}
	return out
}

// truncatedMark is what store.Truncate appends to what it cut.
const truncatedMark = "…(truncated, "

// replayable says why r cannot be replayed, "" when it can.
func replayable(r *store.Record) string {
	if r.Capture == nil || !r.Capture.Kept() {
		cut := strings.Contains(r.RequestBody, truncatedMark)
		why := "not captured (storage.accessLog.capture off or not sampled)"
		switch {
		case r.Capture != nil:
			why = "not captured: " + r.Capture.Skipped
		case r.ErrorCode != "" && r.ErrorCode != call.ErrorFlow:
			why = "refused before the flow (" + r.ErrorCode + "): a replay takes the caller as proven"
		case cut && r.Extra["encrypted"] == true:
			why = "encrypted payload not kept: the record holds the decrypted body cut at maxBodyChars (not captured)"
		case cut:
			why = "body truncated (not captured)"
		}
		return why
	}
	if r.ErrorCode != "" && r.ErrorCode != call.ErrorFlow {
		return "refused before the flow (" + r.ErrorCode + "): a replay takes the caller as proven"
	}
	if r.APICode == "" {
		return "the request matched no API"
	}
	for _, s := range r.StepResults {
		if m, ok := s.Response.(map[string]any); ok && m["body"] == "(streamed)" {
			return "step " + strconv.Quote(s.ID) + " streamed its body: not recorded"
		}
		if noAnswer(&s) && timedOut(&s) {
			// A stub that hangs would reproduce it, at the cost of the
			// step's whole timeout per record.
			return "step " + strconv.Quote(s.ID) + " got no upstream answer (" + s.Error + ")"
		}
	}
	return ""
}

// noAnswer: an http step that was sent and got no answer (a refused or
// reset connection, a timeout).
func noAnswer(s *store.StepRecord) bool {
	return s.Type == config.StepHTTP && !s.Skipped && s.Attempts > 0 && s.Response == nil && s.Error != ""
}

func timedOut(s *store.StepRecord) bool {
	return strings.Contains(s.Error, "timed out") || strings.Contains(s.Error, "request cancelled")
}

// RecordTimeout bounds the replay of one record, whatever the candidate's
// step timeouts (the change under review sets them).
const RecordTimeout = 30 * time.Second

// Replay runs r against the candidate and compares.
func (rp *Replayer) Replay(ctx context.Context, r *store.Record) Result {
	ctx, cancel := context.WithTimeout(ctx, RecordTimeout)
	defer cancel()
	res := Result{ID: r.ID, TraceID: r.TraceID, API: apiLabel(r)}
	if why := replayable(r); why != "" {
		res.Outcome, res.Reason = NotReplayable, why
		return res
	}
	stubs := newStubs(r)
	ss := rp.sb.Session(sandbox.SessionOptions{Responder: stubs, Services: rp.services, Trusted: true, RemoteAddr: remoteAddr(r.ClientIP)})
	req, err := request(ctx, r)
	if err != nil {
		res.Outcome, res.Reason = NotReplayable, err.Error()
		return res
	}
	x := ss.Do(req)
	res.Diffs = compare(r, x, stubs)
	res.Outcome = Identical
	if len(res.Diffs) > 0 {
		res.Outcome = Differs
	}
	return res
}

func apiLabel(r *store.Record) string {
	if r.APICode == "" {
		return "-"
	}
	return r.APICode + ":" + r.Version
}

func remoteAddr(ip string) string {
	if ip == "" {
		return ""
	}
	return net.JoinHostPort(ip, "40000")
}

// request rebuilds the recorded request: method, path, query, headers (a
// redacted one is left out: its value was not kept) and the plaintext body.
func request(ctx context.Context, r *store.Record) (*http.Request, error) {
	target := r.Path
	if r.Capture.Query != "" {
		target += "?" + r.Capture.Query
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, target, strings.NewReader(r.RequestBody))
	if err != nil || !strings.HasPrefix(target, "/") {
		return nil, fmt.Errorf("the recorded request cannot be made again: method %.40q, path %.100q", r.Method, r.Path)
	}
	for k, v := range r.RequestHeaders {
		if v == "***" || strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, security.HeaderSignature) {
			continue
		}
		req.Header.Set(k, v)
	}
	if r.Extra["encrypted"] == true || strings.HasPrefix(req.Header.Get("Content-Type"), "text/plain") {
		// The body was sent encrypted; the record holds its plaintext.
		if json.Valid([]byte(r.RequestBody)) {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if r.TraceID != "" {
		req.Header.Set("X-Trace-Id", r.TraceID)
	}
	return req, nil
}

// stubs answers a replay's outbound calls from the record.
type stubs struct {
	steps map[string]*store.StepRecord // http/rpc steps and hooks, by id

	mu          sync.Mutex
	notRecorded []string // steps (or hooks) called but not in the record, in order
}

func newStubs(r *store.Record) *stubs {
	s := &stubs{steps: map[string]*store.StepRecord{}}
	for i := range r.StepResults {
		st := &r.StepResults[i]
		if st.Response != nil || noAnswer(st) {
			s.steps[st.Type+"\x00"+st.ID] = st
			if _, ok := s.steps[st.ID]; !ok || st.Type != "hook" {
				s.steps[st.ID] = st
			}
		}
	}
	return s
}

func (s *stubs) Answer(_ context.Context, c *sandbox.Call) sandbox.Answer {
	id := c.Step
	st := s.steps[id]
	if c.Kind == sandbox.KindHook {
		id = c.Service
		st = s.steps["hook\x00"+id]
	}
	if id == "" || st == nil {
		if id == "" {
			id = c.Service
		}
		s.mu.Lock()
		s.notRecorded = append(s.notRecorded, id)
		s.mu.Unlock()
		return sandbox.Answer{Status: sandbox.StatusNoStub, Body: []byte(`{"error":"step not recorded"}`)}
	}
	if noAnswer(st) {
		// A refused or reset connection, reproduced.
		return sandbox.Answer{Reset: true}
	}
	m, _ := st.Response.(map[string]any)
	status := intOf(m["status"])
	if c.Kind == sandbox.KindRPC || st.Type == config.StepRPC {
		a := sandbox.Answer{Code: status}
		if status == 0 {
			a.Body = bodyBytes(m["body"])
		} else if st.Error != "" {
			a.Body = []byte(st.Error)
		}
		return a
	}
	return sandbox.Answer{Status: status, Body: bodyBytes(m["body"])}
}

func intOf(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case json.Number:
		n, _ := x.Int64()
		return int(n)
	}
	return 0
}

func bodyBytes(v any) []byte {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []byte(x)
	}
	b, _ := json.Marshal(v)
	return b
}

// envelope is the portal's answer.
type envelope struct {
	Code     int             `json:"code"`
	Message  string          `json:"message"`
	Response json.RawMessage `json:"response"`
}

func compare(r *store.Record, x *sandbox.Exchange, s *stubs) []Difference {
	var out []Difference
	var env envelope
	if err := json.Unmarshal(x.Body, &env); err != nil {
		return []Difference{{Kind: DiffResponse, Recorded: "an envelope", Candidate: fmt.Sprintf("not an envelope: %.200s", x.Body)}}
	}
	if x.Status != r.HTTPStatus {
		out = append(out, Difference{Kind: DiffStatus, Recorded: strconv.Itoa(r.HTTPStatus), Candidate: strconv.Itoa(x.Status)})
	}
	recMsg := call.MsgOK
	if r.HTTPStatus >= 400 {
		recMsg = r.ErrorMessage
	}
	if env.Message != recMsg {
		out = append(out, Difference{Kind: DiffMessage, Recorded: recMsg, Candidate: env.Message})
	}
	if changes, total := DiffJSON([]byte(r.ResponseBody), env.Response); total > 0 {
		out = append(out, Difference{Kind: DiffResponse, Changes: changes, More: total - len(changes)})
	}
	var candSteps []store.StepRecord
	if x.Record != nil {
		candSteps = x.Record.StepResults
	}
	if d, ok := pathDiff(r.StepResults, candSteps); ok {
		out = append(out, d)
	}
	out = append(out, stepRequests(r, x.Calls)...)
	s.mu.Lock()
	for _, id := range s.notRecorded {
		out = append(out, Difference{Kind: DiffNotRecorded, Step: id, Candidate: "called", Recorded: "not in the record"})
	}
	s.mu.Unlock()
	return out
}

// pathState is how a step went: ran, skipped or failed.
func pathState(s *store.StepRecord) string {
	switch {
	case s.Skipped:
		return "skipped"
	case s.Error != "":
		return "failed"
	}
	return "ran"
}

// pathDiff finds the first step whose path differs: another step at that
// place, or the same step run, skipped or failed otherwise.
func pathDiff(rec, cand []store.StepRecord) (Difference, bool) {
	for i := 0; i < max(len(rec), len(cand)); i++ {
		switch {
		case i >= len(rec):
			return Difference{Kind: DiffPath, Step: cand[i].ID, Recorded: "(no step)", Candidate: cand[i].ID + " " + pathState(&cand[i])}, true
		case i >= len(cand):
			return Difference{Kind: DiffPath, Step: rec[i].ID, Recorded: rec[i].ID + " " + pathState(&rec[i]), Candidate: "(no step)"}, true
		case rec[i].ID != cand[i].ID || rec[i].Type != cand[i].Type:
			return Difference{Kind: DiffPath, Step: rec[i].ID, Recorded: rec[i].ID + " " + pathState(&rec[i]), Candidate: cand[i].ID + " " + pathState(&cand[i])}, true
		case pathState(&rec[i]) != pathState(&cand[i]):
			return Difference{Kind: DiffPath, Step: rec[i].ID, Recorded: pathState(&rec[i]), Candidate: pathState(&cand[i])}, true
		}
	}
	return Difference{}, false
}

// stepRequests compares what each step sent upstream (method, url of a
// plain http step, body) with what the record says it sent, for the last
// call of each recorded step.
func stepRequests(r *store.Record, calls []*sandbox.Call) []Difference {
	last := map[string]*sandbox.Call{}
	var order []string
	for _, c := range calls {
		if c.Step == "" {
			continue
		}
		if _, ok := last[c.Step]; !ok {
			order = append(order, c.Step)
		}
		last[c.Step] = c
	}
	var out []Difference
	for _, id := range order {
		c := last[id]
		var st *store.StepRecord
		for i := range r.StepResults {
			if r.StepResults[i].ID == id && r.StepResults[i].Type != "hook" {
				st = &r.StepResults[i]
			}
		}
		if st == nil {
			continue // reported as not recorded
		}
		m, ok := st.Request.(map[string]any)
		if !ok {
			continue
		}
		if method, _ := m["method"].(string); method != "" && c.Kind != sandbox.KindRPC && !strings.EqualFold(method, c.Method) {
			out = append(out, Difference{Kind: DiffStepRequest, Step: id, Recorded: "method " + method, Candidate: "method " + c.Method})
		}
		if u, _ := m["url"].(string); u != "" && c.Kind == sandbox.KindHTTP && normURL(u) != normURL(c.URL) {
			out = append(out, Difference{Kind: DiffStepRequest, Step: id, Recorded: "url " + u, Candidate: "url " + c.URL})
		}
		recBody := bodyBytes(m["body"])
		if c.Kind == sandbox.KindRPC {
			recBody = bodyBytes(st.Request)
		}
		if changes, total := DiffJSON(recBody, c.Body); total > 0 {
			out = append(out, Difference{Kind: DiffStepRequest, Step: id, Recorded: "body", Candidate: "body", Changes: changes, More: total - len(changes)})
		}
	}
	return out
}

// Summary counts the results of one API.
type Summary struct {
	API          string         `json:"api"`
	Records      int            `json:"records"`
	Identical    int            `json:"identical"`
	Differ       int            `json:"differ"`
	NotReplayed  int            `json:"notReplayable"`
	Reasons      map[string]int `json:"reasons,omitempty"` // not replayable, by reason
	Details      []Result       `json:"details,omitempty"` // the first MaxDetails that differ
	DetailsTotal int            `json:"-"`
}

// MaxDetails bounds the differing records kept per API for the report.
const MaxDetails = 20

// Report is what a replay found.
type Report struct {
	Source     string     `json:"source"`
	Candidate  string     `json:"candidate"`
	Records    int        `json:"records"`
	Unreadable int        `json:"unreadable"`
	Identical  int        `json:"identical"`
	Differ     int        `json:"differ"`
	NotReplay  int        `json:"notReplayable"`
	APIs       []*Summary `json:"apis"`

	byAPI map[string]*Summary
}

// Add counts one result.
func (rep *Report) Add(res Result) {
	if rep.byAPI == nil {
		rep.byAPI = map[string]*Summary{}
	}
	s := rep.byAPI[res.API]
	if s == nil {
		s = &Summary{API: res.API}
		rep.byAPI[res.API] = s
		rep.APIs = append(rep.APIs, s)
		sort.Slice(rep.APIs, func(i, j int) bool { return rep.APIs[i].API < rep.APIs[j].API })
	}
	rep.Records++
	s.Records++
	switch res.Outcome {
	case Identical:
		rep.Identical++
		s.Identical++
	case Differs:
		rep.Differ++
		s.Differ++
		if len(s.Details) < MaxDetails {
			s.Details = append(s.Details, res)
		}
	default:
		rep.NotReplay++
		s.NotReplayed++
		if s.Reasons == nil {
			s.Reasons = map[string]int{}
		}
		if len(s.Reasons) < 50 {
			s.Reasons[res.Reason]++
		} else {
			s.Reasons["other reasons"]++
		}
	}
}

// Faithful is the share of replayed records whose answer was identical,
// 0 to 1; 1 when none was replayed.
func (rep *Report) Faithful() float64 {
	n := rep.Identical + rep.Differ
	if n == 0 {
		return 1
	}
	return float64(rep.Identical) / float64(n)
}

func normURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.String()
}
