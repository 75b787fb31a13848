package admin

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

// Definition is an API as the admin API shows it: the definition, where it
// comes from, and whether it is served.
type Definition struct {
	ID     string `json:"id"`
	File   string `json:"file"`
	Served bool   `json:"served"`
	*config.Api
}

func definitionOf(rt *snapshot.Route) Definition {
	return Definition{ID: rt.API.ID(), File: rt.API.Source.File, Served: rt.API.Status == config.StatusOnline, Api: rt.API}
}

func (a *API) definitionPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	q := r.URL.Query()
	code, status := q.Get("code"), q.Get("status")
	var list []Definition
	for _, rt := range a.gw.Current().Routes() {
		if code != "" && !strings.Contains(rt.API.Code, code) && !strings.Contains(rt.API.Description, code) {
			continue
		}
		if status != "" && string(rt.API.Status) != status {
			continue
		}
		list = append(list, definitionOf(rt))
	}
	ok(w, pageOf(nonNil(list), pageNo, pageSize))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *API) definitionGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	code, version, found := strings.Cut(id, ":")
	if !found {
		version = "v1"
	}
	rt := a.gw.Current().Route(code, version)
	if rt == nil {
		fail(w, http.StatusNotFound, "no API %s:%s in the repository", code, version)
		return
	}
	ok(w, definitionOf(rt))
}

func (a *API) definitions(w http.ResponseWriter, r *http.Request) {
	list := []Definition{}
	for _, rt := range a.gw.Current().Routes() {
		if rt.API.Status == config.StatusOnline {
			list = append(list, definitionOf(rt))
		}
	}
	ok(w, list)
}

// SecretView is a secret reference and whether it resolved — never a value.
type SecretView struct {
	SecretRef string `json:"secretRef"`
	Resolved  bool   `json:"resolved"`
}

// CredentialView is a credential without its secrets.
type CredentialView struct {
	AppID          string                `json:"appId"`
	Description    string                `json:"description,omitempty"`
	Enabled        bool                  `json:"enabled"`
	SignatureType  string                `json:"signatureType"`
	EncryptionType string                `json:"encryptionType"`
	EncryptionKey  *SecretView           `json:"encryptionKey,omitempty"`
	SignatureKey   *SecretView           `json:"signatureKey,omitempty"`
	TenantID       string                `json:"tenantId,omitempty"`
	AllowedIPs     []string              `json:"allowedIps"`
	AllowAnonymous bool                  `json:"allowAnonymous"`
	AnonymousUser  *config.AnonymousUser `json:"anonymousUser,omitempty"`
	File           string                `json:"file"`
	Usable         bool                  `json:"usable"`
	Problem        string                `json:"problem,omitempty"` // names references, never values
}

func credentialOf(snap *snapshot.Snapshot, c *config.Credential) CredentialView {
	v := CredentialView{
		AppID: c.AppID, Description: c.Description, Enabled: c.IsEnabled(), SignatureType: c.SignatureType,
		EncryptionType: c.EncryptionType, TenantID: c.TenantID, AllowedIPs: nonNil(c.AllowedIPs),
		AllowAnonymous: c.AllowAnonymous, AnonymousUser: c.AnonymousUser, File: c.Source.File,
	}
	resolved := snap.Credentials[c.AppID]
	problem := ""
	if resolved != nil {
		problem = resolved.KeyProblem
	}
	v.Usable = resolved != nil && problem == ""
	v.Problem = problem
	if c.EncryptionKey != nil {
		v.EncryptionKey = secretView(snap, c.EncryptionKey)
	}
	if c.SignatureKey != nil {
		v.SignatureKey = secretView(snap, c.SignatureKey)
	}
	return v
}

// secretView tells whether a reference resolves by resolving it (the value
// goes nowhere). The load's KeyProblem cannot say: it stops at the first
// secret that fails, so a later one was never tried, and a signatureKey is
// not read at all for MD5 or SHA256 signatures.
func secretView(snap *snapshot.Snapshot, ref *config.SecretRef) *SecretView {
	_, err := ref.Resolve(snap.Repo.Dir)
	return &SecretView{SecretRef: ref.Ref, Resolved: err == nil}
}

func (a *API) credentialPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	snap := a.gw.Current()
	q := r.URL.Query().Get("appId")
	list := []CredentialView{}
	for _, c := range snap.Repo.Credentials {
		if q == "" || strings.Contains(c.AppID, q) {
			list = append(list, credentialOf(snap, c))
		}
	}
	ok(w, pageOf(list, pageNo, pageSize))
}

func (a *API) credentialGet(w http.ResponseWriter, r *http.Request) {
	snap := a.gw.Current()
	id := r.URL.Query().Get("id")
	c := snap.Repo.Credential(id)
	if c == nil {
		fail(w, http.StatusNotFound, "no credential %q in the repository", id)
		return
	}
	ok(w, credentialOf(snap, c))
}

func (a *API) credentialSimple(w http.ResponseWriter, r *http.Request) {
	type simple struct {
		AppID       string `json:"appId"`
		Description string `json:"description,omitempty"`
		Enabled     bool   `json:"enabled"`
	}
	list := []simple{}
	for _, c := range a.gw.Current().Repo.Credentials {
		list = append(list, simple{c.AppID, c.Description, c.IsEnabled()})
	}
	ok(w, list)
}

// PolicyView is a rate-limit policy, its file and the APIs bound to it.
type PolicyView struct {
	*config.RateLimitPolicy
	File   string   `json:"file"`
	UsedBy []string `json:"usedBy"`
}

func policyOf(snap *snapshot.Snapshot, p *config.RateLimitPolicy) PolicyView {
	v := PolicyView{RateLimitPolicy: p, File: p.Source.File, UsedBy: []string{}}
	for _, a := range snap.Repo.APIs {
		if a.Policies != nil && a.Policies.RateLimit == p.Name {
			v.UsedBy = append(v.UsedBy, a.ID())
		}
	}
	return v
}

func (a *API) policyPage(w http.ResponseWriter, r *http.Request) {
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	snap := a.gw.Current()
	q := r.URL.Query().Get("name")
	list := []PolicyView{}
	for _, p := range snap.Repo.Policies {
		if q == "" || strings.Contains(p.Name, q) {
			list = append(list, policyOf(snap, p))
		}
	}
	ok(w, pageOf(list, pageNo, pageSize))
}

func (a *API) policyGet(w http.ResponseWriter, r *http.Request) {
	snap := a.gw.Current()
	p := snap.Repo.Policy(r.PathValue("id"))
	if p == nil {
		fail(w, http.StatusNotFound, "no rate-limit policy %q in the repository", r.PathValue("id"))
		return
	}
	ok(w, policyOf(snap, p))
}

func (a *API) policySimple(w http.ResponseWriter, r *http.Request) {
	type simple struct {
		Name      string `json:"name"`
		Algorithm string `json:"algorithm"`
		Limit     int    `json:"limit"`
		Window    int    `json:"windowSeconds"`
	}
	list := []simple{}
	for _, p := range a.gw.Current().Repo.Policies {
		list = append(list, simple{p.Name, p.Algorithm, p.Limit, p.WindowSeconds})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	ok(w, list)
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// AccessLogFilter reads the access-log filters of a request: traceId,
// apiCode, appId, status (0 success, 1 client error, 2 server error, 3
// unknown), from and to (RFC 3339 or Unix milliseconds).
func AccessLogFilter(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	f := store.Filter{TraceID: q.Get("traceId"), APICode: q.Get("apiCode"), AppID: q.Get("appId")}
	if s := q.Get("status"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3 {
			return f, errors.New("status must be 0 (success), 1 (client error), 2 (server error) or 3 (unknown)")
		}
		f.Status = &n
	}
	var err error
	if f.From, err = parseTime(q.Get("from")); err != nil {
		return f, errors.New("from must be RFC 3339 or Unix milliseconds")
	}
	if f.To, err = parseTime(q.Get("to")); err != nil {
		return f, errors.New("to must be RFC 3339 or Unix milliseconds")
	}
	return f, nil
}

func (a *API) accessLogPage(w http.ResponseWriter, r *http.Request) {
	if a.acc == nil {
		fail(w, http.StatusNotFound, "the access log is off (apiPortal.enableAudit)")
		return
	}
	pageNo, pageSize, err := paging(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	f, err := AccessLogFilter(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	list, total, err := a.acc.Page(f, pageNo, pageSize)
	if err != nil {
		a.log.Error("access log query failed", "error", err)
		fail(w, http.StatusInternalServerError, "access log query failed: %v", err)
		return
	}
	ok(w, Page{Total: total, List: nonNil(list)})
}

func (a *API) accessLogGet(w http.ResponseWriter, r *http.Request) {
	if a.acc == nil {
		fail(w, http.StatusNotFound, "the access log is off (apiPortal.enableAudit)")
		return
	}
	id := r.URL.Query().Get("id")
	rec, err := a.acc.Get(id)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, "no access-log record %q", id)
		return
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "access log: %v", err)
		return
	}
	ok(w, rec)
}
