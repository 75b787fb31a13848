package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/client"
	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
	"github.com/databus-gateway/databus/engine/view"
)

var funcs = template.FuncMap{
	"json":     prettyJSON,
	"join":     strings.Join,
	"time":     func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 -0700") },
	"ms":       formatMs,
	"editURL":  editURL,
	"traceURL": traceURL,
	"statusName": func(s int) string {
		switch s {
		case store.StatusSuccess:
			return "success"
		case store.StatusClientError:
			return "client error"
		case store.StatusServerError:
			return "server error"
		}
		return "unknown"
	},
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	// ago says how long ago, in milliseconds, for the fleet's heartbeats.
	"ago": func(ms int64) string {
		switch d := time.Duration(ms) * time.Millisecond; {
		case d < time.Second:
			return "just now"
		case d < 2*time.Minute:
			return strconv.Itoa(int(d.Seconds())) + " s ago"
		default:
			return strconv.Itoa(int(d.Minutes())) + " min ago"
		}
	},
	"msDuration": func(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() },
	"shortHash": func(h string) string {
		if len(h) > 7 {
			return h[:7]
		}
		return h
	},
	"maxReplicas": func() int { return fleet.MaxReplicas },
	// label names what is served as the logs and /readyz do: the short
	// commit, "-dirty" with uncommitted config changes, content:<hash>
	// outside git.
	"label":     revision.Label,
	"compact":   compactJSON,
	"diffLines": diffLines,
}

// prettyJSON renders v as indented JSON for a pre (the template escapes it).
func prettyJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// editURL is where an operator edits file: repoURL/<file>, or "" when
// ui.repoUrl is unset.
func editURL(repoURL, file string) string {
	if repoURL == "" || file == "" {
		return ""
	}
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return repoURL + "/" + strings.Join(parts, "/")
}

// ---- overview

// overviewData is view.Overview with what only this listener knows: the
// last reload and the traffic of the last hour.
type overviewData struct {
	view.Overview
	Reload    *Reload
	Chart     chart
	Requests  int
	Errors    int
	ReqRate   string
	RateSpan  string // what ReqRate averages over: "the last hour", "the 5 min since the gateway started"
	ErrRate   string
	AccessLog bool
	Fleet     *fleet.View // nil: no fleet panel
}

func (u *UI) overview(w http.ResponseWriter, r *http.Request, p *page) {
	d := overviewData{Overview: view.OverviewOf(p.Snap), AccessLog: u.src.AccessLog != nil}
	if u.src.LastReload != nil {
		d.Reload = u.src.LastReload()
	}
	if u.src.Fleet != nil {
		v := u.src.Fleet()
		d.Fleet = &v
	}
	win := u.traffic()
	for _, m := range win.Minutes {
		d.Requests += m.Requests
		d.Errors += m.Errors
	}
	d.Chart = chartOf(win.Minutes)
	d.ReqRate, d.RateSpan = rateOf(d.Requests, win)
	d.ErrRate = "0.0%"
	if d.Requests > 0 {
		d.ErrRate = strconv.FormatFloat(100*float64(d.Errors)/float64(d.Requests), 'f', 1, 64) + "%"
	}
	p.Title = "Overview"
	u.render(w, http.StatusOK, "overview", p, d)
}

// rateOf is requests per minute over the time w covers (the gateway may
// have run for less than the hour), and that span in words.
func rateOf(requests int, w metrics.Window) (rate, span string) {
	covered := max(w.Covered, time.Second) // a rate over nothing is no rate
	rate = strconv.FormatFloat(float64(requests)/covered.Minutes(), 'f', 2, 64)
	if !w.Partial {
		return rate, "the last hour"
	}
	if covered < time.Minute {
		return rate, "the " + strconv.Itoa(int(covered.Seconds())) + " s since the gateway started"
	}
	return rate, "the " + strconv.Itoa(int(covered.Minutes())) + " min since the gateway started"
}

// ---- APIs

type apisData struct {
	Q    string
	Rows []view.Definition
	All  int
}

func (u *UI) apis(w http.ResponseWriter, r *http.Request, p *page) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	d := apisData{Q: q, All: len(p.Snap.Repo.APIs), Rows: view.Definitions(p.Snap, view.DefinitionFilter{Q: q})}
	p.Title = "APIs"
	u.render(w, http.StatusOK, "apis", p, d)
}

type stepRow struct {
	config.Step
	Target string
}

type versionRow struct {
	view.Version
	Prev string // the previous (older) version's hash; "" for the first
}

// apiData is view.Definition with what the page draws from it.
type apiData struct {
	view.Definition
	Steps      []stepRow
	Flow       flowDiagram
	Versions   []versionRow
	VersionErr string
	Call       callData
}

// callData is the "Call it" card.
type callData struct {
	Sign, Curl  string
	BodyProblem string // the input schema needs a body written by hand: why
	FromSchema  bool   // the body was built from the input schema
}

func (u *UI) api(w http.ResponseWriter, r *http.Request, p *page) {
	def, found := view.FindDefinition(p.Snap, r.PathValue("id"))
	if !found {
		u.notFound(w, p, "No API "+r.PathValue("id")+" in the repository.")
		return
	}
	a := def.Api
	d := apiData{Definition: def, Flow: flowOf(a)}
	for _, s := range a.Steps {
		d.Steps = append(d.Steps, stepRow{Step: s, Target: target(s)})
	}
	vs, _, err := view.Versions(u.git(), a.ID())
	if err != nil {
		d.VersionErr = err.Error()
	}
	for i, v := range vs {
		row := versionRow{Version: v}
		if i+1 < len(vs) {
			row.Prev = vs[i+1].Hash
		}
		d.Versions = append(d.Versions, row)
	}
	d.Call = callOf(p.Snap, a)
	p.Title = a.ID()
	p.Nav = "apis"
	u.render(w, http.StatusOK, "api", p, d)
}

func (u *UI) git() *gitops.Repo {
	if u.src.Git == nil {
		return nil
	}
	return u.src.Git()
}

// target is what a step calls, for the diagram and the table.
func target(s config.Step) string {
	switch {
	case s.HTTP != nil:
		m := s.HTTP.Method
		if m == "" {
			m = "GET"
		}
		if s.HTTP.Service != nil {
			return m + " service " + s.HTTP.Service.Server + "/" + s.HTTP.Service.Name
		}
		return m + " " + s.HTTP.URL
	case s.RPC != nil:
		t := s.RPC.Target
		if s.RPC.Service != nil {
			t = "service " + s.RPC.Service.Server + "/" + s.RPC.Service.Name
		}
		return t + " " + s.RPC.Method
	case s.Script != nil:
		lang := s.Script.Lang
		if lang == "" {
			lang = "javascript"
		}
		return lang + " script"
	}
	return ""
}

// callOf is the "Call it" card: the `databus sign` command for the API,
// with an example body built from its input schema, and the request that
// command prints, from the same code (client.Template is client.Prepare
// without the keys: what only they and the moment of the call fill in is
// a placeholder).
func callOf(snap *snapshot.Snapshot, a *config.Api) callData {
	var d callData
	cred := client.Credential{AppID: "<appId>"}
	var c *config.Credential
	if a.Auth != nil && len(a.Auth.Credentials) > 0 {
		cred.AppID = a.Auth.Credentials[0]
		c = snap.Repo.Credential(cred.AppID)
	} else if len(snap.Repo.Credentials) > 0 {
		c = snap.Repo.Credentials[0]
		cred.AppID = c.AppID
	}
	if c != nil {
		cred.SignatureType, cred.EncryptionType = c.SignatureType, c.EncryptionType
	}
	method := http.MethodPost
	if len(a.Methods) > 0 {
		method = a.Methods[0]
	}
	body, err := view.ExampleBody(a.Input)
	switch {
	case err != nil:
		d.BodyProblem = err.Error()
		body = []byte("{}")
	case body == nil && method != http.MethodGet:
		body = []byte("{}")
	default:
		d.FromSchema = body != nil
	}
	api := a.Code + ":" + a.Version
	var b strings.Builder
	b.WriteString("databus sign " + api + " --app " + client.ShellQuote(cred.AppID))
	if method != http.MethodPost {
		b.WriteString(" --method " + method)
	}
	if len(body) > 0 {
		b.WriteString(" --body " + client.ShellQuote(string(body)))
	}
	d.Sign = b.String()
	cl := &client.Client{BaseURL: client.DefaultPortal + snap.Settings.APIPortal.BasePath, Credential: cred}
	d.Curl = cl.Template(method, api, nil, body).Curl()
	return d
}

// versionsFor are the versions of the page's API, which must be one of
// the repository's.
func (u *UI) versionsFor(w http.ResponseWriter, r *http.Request, p *page) (string, []view.Version, bool) {
	rt := view.Route(p.Snap, r.PathValue("id"))
	if rt == nil {
		u.notFound(w, p, "No API "+r.PathValue("id")+" in the repository.")
		return "", nil, false
	}
	vs, id, err := view.Versions(u.git(), rt.API.ID())
	if err != nil {
		u.notFound(w, p, err.Error())
		return "", nil, false
	}
	return id, vs, true
}

func (u *UI) version(w http.ResponseWriter, r *http.Request, p *page) {
	apiID, vs, ok := u.versionsFor(w, r, p)
	if !ok {
		return
	}
	v := view.FindVersion(vs, r.PathValue("hash"))
	if v == nil {
		u.notFound(w, p, fmt.Sprintf("%q is not a version of %s.", r.PathValue("hash"), apiID))
		return
	}
	d, err := view.FileAt(u.git(), apiID, v)
	if err != nil {
		u.render(w, http.StatusInternalServerError, "error", p, err.Error())
		return
	}
	p.Title = apiID + " @ " + v.Short
	p.Nav = "apis"
	u.render(w, http.StatusOK, "version", p, d)
}

type diffLine struct{ Class, Text string }

func (u *UI) diff(w http.ResponseWriter, r *http.Request, p *page) {
	apiID, vs, ok := u.versionsFor(w, r, p)
	if !ok {
		return
	}
	q := r.URL.Query()
	from, to := view.FindVersion(vs, q.Get("from")), view.FindVersion(vs, q.Get("to"))
	if from == nil || to == nil {
		u.notFound(w, p, "from and to must be versions of "+apiID+".")
		return
	}
	d, err := view.Compare(u.git(), apiID, from, to)
	if err != nil {
		u.render(w, http.StatusInternalServerError, "error", p, err.Error())
		return
	}
	p.Title = fmt.Sprintf("%s: %s → %s", apiID, from.Short, to.Short)
	p.Nav = "apis"
	u.render(w, http.StatusOK, "diff", p, d)
}

// compactJSON is v as one line of JSON; "" for nil (a field that is not
// there on one side of a change).
func compactJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// diffLines classifies the lines of a unified diff.
func diffLines(unified string) []diffLine {
	if unified == "" {
		return nil
	}
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(unified, "\n"), "\n") {
		c := "diff-ctx"
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			c = "diff-ctx diff-file"
		case strings.HasPrefix(l, "@@"):
			c = "diff-ctx diff-hunk"
		case strings.HasPrefix(l, "+"):
			c = "diff-add"
		case strings.HasPrefix(l, "-"):
			c = "diff-del"
		}
		out = append(out, diffLine{Class: c, Text: l})
	}
	return out
}

// ---- credentials and policies

func (u *UI) credentials(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "Credentials"
	u.render(w, http.StatusOK, "credentials", p, view.Credentials(p.Snap, ""))
}

func (u *UI) policies(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "Policies"
	u.render(w, http.StatusOK, "policies", p, view.Policies(p.Snap, ""))
}

// ---- access log

// traceURL is the link of trace id in the trace viewer (telemetry.traceUrl
// with {traceId} replaced); "" without a template.
func traceURL(template, id string) string {
	if template == "" || id == "" {
		return ""
	}
	return strings.ReplaceAll(template, "{traceId}", url.PathEscape(id))
}

type accessLogData struct {
	On                                        bool
	TraceID, APICode, AppID, Status, From, To string
	Error                                     string
	Records                                   []*store.Record
	Total, PageNo, Pages                      int
	PrevURL, NextURL                          string
}

const logPageSize = 50

func (u *UI) accessLog(w http.ResponseWriter, r *http.Request, p *page) {
	q := r.URL.Query()
	d := accessLogData{On: u.src.AccessLog != nil, TraceID: q.Get("traceId"), APICode: q.Get("apiCode"), AppID: q.Get("appId"),
		Status: q.Get("status"), From: q.Get("from"), To: q.Get("to"), PageNo: 1}
	p.Title = "Access log"
	status := http.StatusOK
	if n, err := strconv.Atoi(q.Get("pageNo")); err == nil && n > 0 {
		d.PageNo = n
	}
	f, err := view.AccessLogPageFilter(q)
	switch {
	case err != nil:
		d.Error, status = err.Error(), http.StatusBadRequest
	case d.On:
		d.Records, d.Total, err = u.src.AccessLog.Page(f, d.PageNo, logPageSize)
		if err != nil {
			u.log.Error("admin pages: access log query failed", "error", err)
			d.Error, status = "access log query failed: "+err.Error(), http.StatusInternalServerError
		}
	}
	d.Pages = (d.Total + logPageSize - 1) / logPageSize
	page := func(n int) string {
		v := url.Values{}
		for _, k := range []string{"traceId", "apiCode", "appId", "status", "from", "to"} {
			if s := q.Get(k); s != "" {
				v.Set(k, s)
			}
		}
		v.Set("pageNo", strconv.Itoa(n))
		return "/ui/access-log?" + v.Encode()
	}
	if d.PageNo > 1 {
		d.PrevURL = page(d.PageNo - 1)
	}
	if d.PageNo < d.Pages {
		d.NextURL = page(d.PageNo + 1)
	}
	u.render(w, status, "access-log", p, d)
}

type recordData struct {
	*store.Record
	Timeline timeline
	Extra    string
}

func (u *UI) record(w http.ResponseWriter, r *http.Request, p *page) {
	p.Nav = "access-log"
	if u.src.AccessLog == nil {
		u.notFound(w, p, "The access log is off (apiPortal.enableAudit in databus.yaml).")
		return
	}
	rec, err := u.src.AccessLog.Get(r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		u.notFound(w, p, "No access-log record "+r.PathValue("id")+".")
		return
	}
	if err != nil {
		u.render(w, http.StatusInternalServerError, "error", p, "access log: "+err.Error())
		return
	}
	d := recordData{Record: rec, Timeline: timelineOf(rec.StepResults)}
	if len(rec.Extra) > 0 {
		d.Extra = prettyJSON(rec.Extra)
	}
	p.Title = "Request " + rec.TraceID
	u.render(w, http.StatusOK, "record", p, d)
}

// registryData is the registry page: servers and services as registered
// (third-party text: the template escapes it).
type registryData struct {
	Available bool
	Shared    bool
	Servers   []registry.Server
	Services  []registry.ServiceView
	Error     string
}

func (u *UI) registry(w http.ResponseWriter, r *http.Request, p *page) {
	p.Title = "Registry"
	d := registryData{}
	if reg := u.src.Registry; reg != nil {
		d.Available, d.Shared = true, reg.Shared()
		var err error
		if d.Servers, err = reg.Servers(r.Context()); err == nil {
			d.Services, err = reg.Views(r.Context())
		}
		if err != nil {
			d.Error = err.Error()
		}
	}
	u.render(w, http.StatusOK, "registry", p, d)
}

// formatMs prints a duration in milliseconds with enough digits to tell a
// 40 µs step from a 400 µs one: two decimals under 10 ms, one above.
func formatMs(f float64) string {
	if f < 10 {
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}
