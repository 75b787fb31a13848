// Package impact judges a change of the config repository against the
// traffic a gateway recorded: for each changed API, credential and policy,
// who calls it, and which changes would break those callers (databus diff
// --traffic). Both revisions are judged through the gate (Build), so an
// input schema is the compiled one the start step validates with, and a
// rate-limit key is rendered by the limiter's own Policy.Key.
package impact

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/traffic"
)

// Severities of a Finding.
const (
	Breaking = "breaking" // callers recorded in the traffic would be refused or answered differently
	Warning  = "warning"  // callers may notice; not a refusal the traffic proves
	Info     = "info"     // a change and who calls what it changes
)

// Kinds of Finding.
const (
	KindAPIRemoved       = "api-removed"        // the API is gone while called
	KindAPINotOnline     = "api-not-online"     // offline, draft or deprecated: only online is served
	KindMethodRemoved    = "method-removed"     // a method callers used is no longer allowed
	KindInputRefused     = "input-refused"      // the input schema refuses recorded bodies the old one accepted
	KindCallerRefused    = "caller-refused"     // auth.credentials no longer lists a calling appId
	KindRateLimit        = "rate-limit"         // a limit below the observed peak of a key
	KindCredRemoved      = "credential-removed" // a calling credential is gone
	KindCredDisabled     = "credential-disabled"
	KindCredIPs          = "credential-ips"        // allowedIps exclude addresses callers came from
	KindCredTenant       = "credential-tenant"     // tenantId pinned to another tenant than callers used
	KindCredCrypto       = "credential-crypto"     // signatureType or encryptionType changed while in use
	KindCredKey          = "credential-key"        // a key reference changed while in use
	KindResponseChanged  = "response-changed"      // replay: recorded requests answered differently
	KindRevisionInvalid  = "revision-invalid"      // the gate refuses the new revision
	KindChanged          = "changed"               // info: a changed document and its callers
	KindUnknownBodies    = "input-unchecked"       // bodies that could not be checked (truncated)
	KindPolicyUnmeasured = "rate-limit-unmeasured" // the key template names a redacted header
)

// Subject kinds.
const (
	SubjectAPI        = "api"
	SubjectCredential = "credential"
	SubjectPolicy     = "policy"
	SubjectRevision   = "revision"
)

// Subject is what a finding is about.
type Subject struct {
	Kind string `json:"kind"` // api, credential, policy, revision
	ID   string `json:"id"`   // code:version, appId, policy name, revision
}

func (s Subject) String() string { return s.Kind + " " + s.ID }

// Caller is one appId's recorded use of the subject.
type Caller struct {
	AppID    string    `json:"appId"`
	Requests int       `json:"requests"`
	LastCall time.Time `json:"lastCall"`
}

// Finding is one judgement.
type Finding struct {
	Severity string   `json:"severity"`
	Kind     string   `json:"kind"`
	Subject  Subject  `json:"subject"`
	Message  string   `json:"message"`
	Callers  []Caller `json:"callers"`
}

// Side is one revision as the gate built it.
type Side struct {
	Rev  string             // full hash, or gitops.Worktree
	Repo *config.Repository // what loaded; never nil
	// Snap is the dry-built Snapshot (compiled flows and policies); nil
	// when the gate refused the revision (Errors).
	Snap   *snapshot.Snapshot
	Errors config.Diagnostics
}

// Build judges a folder through the gate (a dry build: nothing dialled or
// opened) and keeps what the analysis needs.
func Build(ctx context.Context, rev, dir string) (*Side, error) {
	res := gate.Build(ctx, dir, gate.Options{Mode: gate.Dry})
	if res.Err != nil {
		return nil, res.Err
	}
	return &Side{Rev: rev, Repo: res.Repo, Snap: res.Snapshot, Errors: res.Diagnostics.Errors()}, nil
}

// BuildRevision builds rev of a git-backed config repository ("" the
// working tree): its tree is written to a temporary folder, as diff,
// rollback and git sync do, and built through the gate there.
func BuildRevision(ctx context.Context, r *gitops.Repo, rev string) (*Side, error) {
	name := gitops.Worktree
	if rev != "" {
		h, err := r.Resolve(rev)
		if err != nil {
			return nil, err
		}
		name = h
	}
	var side *Side
	err := r.InRevision(rev, func(dir string) error {
		var err error
		side, err = Build(ctx, name, dir)
		return err
	})
	return side, err
}

func (s *Side) api(id string) *config.Api {
	for _, a := range s.Repo.APIs {
		if a.ID() == id {
			return a
		}
	}
	return nil
}

func (s *Side) credential(appID string) *config.Credential {
	for _, c := range s.Repo.Credentials {
		if c.AppID == appID {
			return c
		}
	}
	return nil
}

func (s *Side) policyDef(name string) *config.RateLimitPolicy {
	for _, p := range s.Repo.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// policy returns the compiled policy the Snapshot holds, or compiles the
// definition as the Snapshot does when the revision was refused.
func (s *Side) policy(name string) *ratelimit.Policy {
	if name == "" {
		return nil
	}
	if s.Snap != nil {
		return s.Snap.Policies[name]
	}
	def := s.policyDef(name)
	if def == nil {
		return nil
	}
	p, err := ratelimit.Compile(def)
	if err != nil {
		return nil
	}
	return p
}

func policyName(a *config.Api) string {
	if a == nil || a.Policies == nil {
		return ""
	}
	return a.Policies.RateLimit
}

// meterName names the meter of a policy on one side.
func meterName(side, policy string) string { return side + "\x00" + policy }

// Meters returns the rate-limit meters traffic.Options needs for Analyze:
// one per policy of either side, over the APIs that use it there, keyed by
// the policy's own key template.
func Meters(old, new *Side) []*traffic.Meter {
	var out []*traffic.Meter
	for _, sd := range []struct {
		name string
		s    *Side
	}{{"old", old}, {"new", new}} {
		users := map[string]map[string]bool{} // policy -> API ids
		for _, a := range sd.s.Repo.APIs {
			if n := policyName(a); n != "" {
				if users[n] == nil {
					users[n] = map[string]bool{}
				}
				users[n][a.ID()] = true
			}
		}
		names := make([]string, 0, len(users))
		for n := range users {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := sd.s.policy(n)
			if p == nil {
				continue
			}
			apis := users[n]
			out = append(out, traffic.NewMeter(meterName(sd.name, n), p.Window, func(id string) bool { return apis[id] },
				func(r *store.Record) string {
					return p.Key(&ratelimit.Vars{APICode: r.APICode, Version: r.Version, AppID: r.AppID, TenantID: r.TenantID,
						ClientIP: r.ClientIP, Header: traffic.Header(r)})
				}))
		}
	}
	return out
}

// ResponseResult is what replaying one API's recorded requests against the
// new revision found (databus replay, engine/replay).
type ResponseResult struct {
	Compared      int    `json:"compared"` // requests replayed and compared
	Differ        int    `json:"differ"`   // of those, answered differently
	NotReplayable int    `json:"notReplayable"`
	First         string `json:"first,omitempty"` // the first difference, in words
}

// ResponseCheck reports the replay result of one API (code:version); ok
// false: not compared. It is where databus replay's per-API "responses
// differ" result plugs in.
type ResponseCheck func(apiID string) (res ResponseResult, ok bool)

// Input is what Analyze judges.
type Input struct {
	Old, New *Side
	Diff     *gitops.RepoDiff // the documents that changed (info findings); nil: none
	Traffic  *traffic.Aggregate
	Meters   []*traffic.Meter // from Meters, fed with the traffic
	// Responses, when set, turns APIs whose replayed responses differ
	// into breaking findings.
	Responses ResponseCheck
	// MaxListed bounds the items a message lists (addresses, errors);
	// 0: 5.
	MaxListed int
}

// Analyze returns the findings, breaking first, then warnings, then info;
// within a severity by subject.
func Analyze(in Input) []Finding {
	if in.MaxListed <= 0 {
		in.MaxListed = 5
	}
	a := &analysis{Input: in, meters: map[string]*traffic.Meter{}}
	for _, m := range in.Meters {
		a.meters[m.Name] = m
	}
	if len(in.New.Errors) > 0 {
		a.add(Finding{Severity: Warning, Kind: KindRevisionInvalid, Subject: Subject{SubjectRevision, gitops.Label(in.New.Rev)},
			Message: fmt.Sprintf("the gate refuses this revision (%d errors; first: %s): a gateway keeps serving the one before; findings below judge what loaded, input schemas unchecked", len(in.New.Errors), in.New.Errors[0])})
	}
	for _, id := range sortedKeys(in.Traffic.APIs) {
		a.api(in.Traffic.APIs[id])
	}
	for _, appID := range sortedKeys(in.Traffic.Credentials) {
		a.credential(in.Traffic.Credentials[appID])
	}
	a.rateLimits()
	a.changed()
	sort.SliceStable(a.out, func(i, j int) bool {
		x, y := a.out[i], a.out[j]
		if x.Severity != y.Severity {
			return sevRank[x.Severity] < sevRank[y.Severity]
		}
		if x.Subject != y.Subject {
			if x.Subject.Kind != y.Subject.Kind {
				return subjRank[x.Subject.Kind] < subjRank[y.Subject.Kind]
			}
			return x.Subject.ID < y.Subject.ID
		}
		return x.Kind < y.Kind
	})
	return a.out
}

var (
	sevRank  = map[string]int{Breaking: 0, Warning: 1, Info: 2}
	subjRank = map[string]int{SubjectRevision: 0, SubjectAPI: 1, SubjectCredential: 2, SubjectPolicy: 3}
)

// Count returns the number of findings of a severity.
func Count(fs []Finding, severity string) int {
	n := 0
	for _, f := range fs {
		if f.Severity == severity {
			n++
		}
	}
	return n
}

type analysis struct {
	Input
	meters map[string]*traffic.Meter
	out    []Finding
}

func (a *analysis) add(f Finding) {
	if f.Callers == nil {
		f.Callers = []Caller{}
	}
	a.out = append(a.out, f)
}

func callersOf(t *traffic.Table, keep func(appID string) bool) []Caller {
	var out []Caller
	for _, e := range t.Sorted() {
		if keep == nil || keep(e.Key) {
			out = append(out, Caller{AppID: e.Key, Requests: e.Requests, LastCall: e.LastCall})
		}
	}
	return out
}

func sumRequests(cs []Caller) int {
	n := 0
	for _, c := range cs {
		n += c.Requests
	}
	return n
}

// api judges one called API.
func (a *analysis) api(t *traffic.API) {
	if t.Accepted == 0 {
		return // nothing the gateway accepted: no caller to break
	}
	id := t.ID()
	old, nw := a.Old.api(id), a.New.api(id)
	if old == nil {
		return // not the old revision's: the traffic is of another one
	}
	subj := Subject{SubjectAPI, id}
	callers := callersOf(t.Callers, nil)
	if nw == nil {
		a.add(Finding{Severity: Breaking, Kind: KindAPIRemoved, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("removed while called: %d accepted requests from %s; the gateway answers 404", t.Accepted, plural(len(callers), "caller"))})
		return
	}
	if nw.Status != config.StatusOnline {
		if old.Status == config.StatusOnline {
			a.add(Finding{Severity: Breaking, Kind: KindAPINotOnline, Subject: subj, Callers: callers,
				Message: fmt.Sprintf("status %s → %s while called (%d accepted requests): only online APIs are served, callers get 404", old.Status, nw.Status, t.Accepted)})
		}
		return
	}
	// Methods.
	allowed := map[string]bool{}
	for _, m := range nw.Methods {
		allowed[m] = true
	}
	for _, m := range sortedKeys(t.Methods) {
		if !allowed[m] && t.Methods[m] > 0 && contains(old.Methods, m) {
			a.add(Finding{Severity: Breaking, Kind: KindMethodRemoved, Subject: subj, Callers: callers,
				Message: fmt.Sprintf("method %s removed: %d accepted requests used it; the gateway answers 405", m, t.Methods[m])})
		}
	}
	// auth.credentials.
	oldR, newR := a.route(a.Old, id), a.route(a.New, id)
	if oldR != nil && newR != nil {
		refused := callersOf(t.Callers, func(appID string) bool {
			return appID != "" && oldR.Allows(appID) && !newR.Allows(appID)
		})
		if len(refused) > 0 {
			a.add(Finding{Severity: Breaking, Kind: KindCallerRefused, Subject: subj, Callers: refused,
				Message: fmt.Sprintf("auth.credentials no longer lists %s (%d accepted requests): the gateway answers 403", joinCallers(refused, a.MaxListed), sumRequests(refused))})
		}
	}
	a.input(t, subj, callers, oldR, newR)
	if a.Responses != nil {
		if r, ok := a.Responses(id); ok && r.Differ > 0 {
			msg := fmt.Sprintf("responses differ: %d of %d replayed", r.Differ, r.Compared)
			if r.First != "" {
				msg += " (first: " + r.First + ")"
			}
			a.add(Finding{Severity: Breaking, Kind: KindResponseChanged, Subject: subj, Callers: callers, Message: msg})
		}
	}
}

func (a *analysis) route(s *Side, id string) *snapshot.Route {
	if s.Snap == nil {
		return nil
	}
	code, version, _ := strings.Cut(id, ":")
	return s.Snap.Route(code, version)
}

// input checks the sampled bodies with the compiled input schemas of both
// revisions (flow.CheckInput, as the start step does).
func (a *analysis) input(t *traffic.API, subj Subject, callers []Caller, oldR, newR *snapshot.Route) {
	if newR == nil || !newR.Flow.HasInput() || oldR == nil {
		return
	}
	checked, refused := 0, 0
	first := ""
	for _, b := range t.Bodies {
		if oldR.Flow.CheckInput([]byte(b.Text)) != nil {
			continue // the old revision refused it too
		}
		checked += b.Count
		if e := newR.Flow.CheckInput([]byte(b.Text)); e != nil {
			refused += b.Count
			if first == "" {
				first = e.Message
			}
		}
	}
	unknown := t.Truncated + t.Unsampled
	if refused > 0 {
		msg := fmt.Sprintf("the input schema refuses %d of %d recorded bodies the old one accepted; first: %s", refused, checked, first)
		if unknown > 0 {
			msg += fmt.Sprintf(" (%d more unchecked: %d truncated by storage.accessLog.maxBodyChars, %d outside the sample)", unknown, t.Truncated, t.Unsampled)
		}
		a.add(Finding{Severity: Breaking, Kind: KindInputRefused, Subject: subj, Callers: callers, Message: msg})
		return
	}
	if unknown > 0 && !sameJSON(a.Old.api(subj.ID).Input, a.New.api(subj.ID).Input) {
		a.add(Finding{Severity: Warning, Kind: KindUnknownBodies, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("the input schema changed: %d recorded bodies pass it, %d could not be checked (%d truncated by storage.accessLog.maxBodyChars, %d outside the sample)", checked, unknown, t.Truncated, t.Unsampled)})
	}
}

// credential judges one calling appId.
func (a *analysis) credential(t *traffic.Credential) {
	if t.AppID == "" || t.Requests == 0 {
		return
	}
	old, nw := a.Old.credential(t.AppID), a.New.credential(t.AppID)
	if old == nil || !old.IsEnabled() {
		return
	}
	subj := Subject{SubjectCredential, t.AppID}
	callers := []Caller{{AppID: t.AppID, Requests: t.Requests, LastCall: t.LastCall}}
	apis := apiList(t.APIs, a.MaxListed)
	switch {
	case nw == nil:
		a.add(Finding{Severity: Breaking, Kind: KindCredRemoved, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("removed while in use (%d accepted requests to %s): the gateway answers 401", t.Requests, apis)})
		return
	case !nw.IsEnabled():
		a.add(Finding{Severity: Breaking, Kind: KindCredDisabled, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("disabled while in use (%d accepted requests to %s): the gateway answers 401", t.Requests, apis)})
		return
	}
	if len(nw.AllowedIPs) > 0 {
		var lost []string
		n := 0
		for _, e := range t.ClientIPs.Sorted() {
			if ipAllowed(old.AllowedIPs, e.Key) && !ipAllowed(nw.AllowedIPs, e.Key) {
				lost = append(lost, e.Key)
				n += e.Requests
			}
		}
		if len(lost) > 0 {
			a.add(Finding{Severity: Breaking, Kind: KindCredIPs, Subject: subj, Callers: callers,
				Message: fmt.Sprintf("allowedIps %v exclude %s callers came from (%d accepted requests): the gateway answers 403", nw.AllowedIPs, listed(lost, a.MaxListed, "address"), n)})
		}
	}
	if nw.TenantID != "" && nw.TenantID != old.TenantID {
		var other []string
		n := 0
		for _, e := range t.Tenants.Sorted() {
			if e.Key != "" && e.Key != nw.TenantID {
				other = append(other, e.Key)
				n += e.Requests
			}
		}
		if len(other) > 0 {
			a.add(Finding{Severity: Breaking, Kind: KindCredTenant, Subject: subj, Callers: callers,
				Message: fmt.Sprintf("tenantId pinned to %q: %d accepted requests ran as %s; a request naming another tenant is refused (401), one naming none runs as %q", nw.TenantID, n, listed(other, a.MaxListed, "tenant"), nw.TenantID)})
		}
	}
	if nw.SignatureType != old.SignatureType || nw.EncryptionType != old.EncryptionType {
		a.add(Finding{Severity: Breaking, Kind: KindCredCrypto, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("signatureType %s → %s, encryptionType %s → %s while in use (%d accepted requests): callers must change how they sign or encrypt at the same moment", old.SignatureType, nw.SignatureType, old.EncryptionType, nw.EncryptionType, t.Requests)})
	} else if refOf(old.EncryptionKey) != refOf(nw.EncryptionKey) || refOf(old.SignatureKey) != refOf(nw.SignatureKey) {
		a.add(Finding{Severity: Warning, Kind: KindCredKey, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("a key reference changed while in use (%d accepted requests): callers fail unless the referenced secret holds the key they use", t.Requests)})
	}
}

func refOf(r *config.SecretRef) string {
	if r == nil {
		return ""
	}
	return r.Ref
}

// ipAllowed reports whether a client address passes a credential's
// allowedIps (empty: all). An address that does not parse passes only an
// empty list.
func ipAllowed(list []string, ip string) bool {
	if len(list) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, s := range list {
		if p, err := config.ParsePrefix(s); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// rateLimits judges each policy of the new revision that changed, or that
// an API switched to: a limit below the peak the traffic shows for one key
// of it (requests the old revision accepted) is breaking.
func (a *analysis) rateLimits() {
	scope := map[string][]string{} // new policy -> the called APIs using it
	switched := map[string][]string{}
	for _, id := range sortedKeys(a.Traffic.APIs) {
		t := a.Traffic.APIs[id]
		old, nw := a.Old.api(id), a.New.api(id)
		if t.Accepted == 0 || old == nil || nw == nil || nw.Status != config.StatusOnline {
			continue
		}
		n := policyName(nw)
		if n == "" {
			continue
		}
		scope[n] = append(scope[n], id)
		if policyName(old) != n {
			switched[n] = append(switched[n], id)
		}
	}
	for _, n := range sortedKeys(scope) {
		oldDef, newDef := a.Old.policyDef(n), a.New.policyDef(n)
		defChanged := oldDef != nil && !sameJSON(oldDef, newDef) // a new policy counts as a switch
		if !defChanged && len(switched[n]) == 0 {
			continue
		}
		m := a.meters[meterName("new", n)]
		p := a.New.policy(n)
		if m == nil || p == nil {
			continue
		}
		peak, key := m.Peak()
		if int64(peak) <= p.Limit {
			continue
		}
		subj := Subject{SubjectPolicy, n}
		why := fmt.Sprintf("policy %s changed", n)
		if !defChanged {
			subj = Subject{SubjectAPI, strings.Join(switched[n], ", ")}
			why = fmt.Sprintf("%s now use policy %s", strings.Join(switched[n], ", "), n)
		}
		callers := a.callersOfAPIs(scope[n])
		a.add(Finding{Severity: Breaking, Kind: KindRateLimit, Subject: subj, Callers: callers,
			Message: fmt.Sprintf("%s: limit %d per %s (%s) is below the observed peak of %d accepted requests in one window for key %s; the excess would get 429", why, p.Limit, p.Window, p.Algorithm, peak, strings.TrimPrefix(key, ratelimit.KeyPrefix))})
	}
}

// changed adds an info finding, with its callers, for every API,
// credential and policy the diff lists.
func (a *analysis) changed() {
	if a.Diff == nil {
		return
	}
	for _, d := range a.Diff.Docs {
		var subj Subject
		var callers []Caller
		switch d.Kind {
		case gitops.DocApi:
			subj = Subject{SubjectAPI, d.ID}
			if t := a.Traffic.APIs[d.ID]; t != nil {
				callers = callersOf(t.Callers, nil)
			}
		case gitops.DocCredential:
			subj = Subject{SubjectCredential, d.ID}
			if t := a.Traffic.Credentials[d.ID]; t != nil {
				callers = []Caller{{AppID: d.ID, Requests: t.Requests, LastCall: t.LastCall}}
			}
		case gitops.DocPolicy:
			subj = Subject{SubjectPolicy, d.ID}
			callers = a.policyCallers(d.ID)
		default:
			continue
		}
		msg := d.Status + ": no recorded calls"
		if len(callers) > 0 {
			msg = fmt.Sprintf("%s: %d accepted requests from %s", d.Status, sumRequests(callers), plural(len(callers), "caller"))
			if d.Kind == gitops.DocCredential {
				msg = fmt.Sprintf("%s: %d accepted requests to %s", d.Status, callers[0].Requests, apiList(a.Traffic.Credentials[d.ID].APIs, a.MaxListed))
			}
		}
		a.add(Finding{Severity: Info, Kind: KindChanged, Subject: subj, Callers: callers, Message: msg})
	}
}

// policyCallers are the callers of the APIs that use the policy on either
// side.
func (a *analysis) policyCallers(name string) []Caller {
	var ids []string
	for _, id := range sortedKeys(a.Traffic.APIs) {
		if policyName(a.Old.api(id)) == name || policyName(a.New.api(id)) == name {
			ids = append(ids, id)
		}
	}
	return a.callersOfAPIs(ids)
}

// callersOfAPIs merges the callers of the APIs ids: requests summed, the
// latest call kept; most requests first.
func (a *analysis) callersOfAPIs(ids []string) []Caller {
	merged := map[string]*Caller{}
	for _, id := range ids {
		for _, c := range callersOf(a.Traffic.APIs[id].Callers, nil) {
			if x := merged[c.AppID]; x != nil {
				x.Requests += c.Requests
				if c.LastCall.After(x.LastCall) {
					x.LastCall = c.LastCall
				}
			} else {
				cc := c
				merged[c.AppID] = &cc
			}
		}
	}
	out := make([]Caller, 0, len(merged))
	for _, c := range merged {
		out = append(out, *c)
	}
	sortCallers(out)
	return out
}

func sortCallers(cs []Caller) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Requests != cs[j].Requests {
			return cs[i].Requests > cs[j].Requests
		}
		return cs[i].AppID < cs[j].AppID
	})
}

func apiList(t *traffic.Table, max int) string {
	var ids []string
	for _, e := range t.Sorted() {
		ids = append(ids, e.Key)
	}
	return listed(ids, max, "API")
}

// listed joins at most max items, saying how many more there are.
func listed(items []string, max int, noun string) string {
	if len(items) == 0 {
		return "no " + noun
	}
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}

func joinCallers(cs []Caller, max int) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.AppID
	}
	return listed(ids, max, "caller")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sameJSON compares two model values by their JSON form (their source
// positions are not part of it).
func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
