// Package traffic reads a gateway's access log (from its admin API or from
// the JSON lines storage.accessLog.export writes) and aggregates it per API
// and per credential while streaming: who calls what, how often, when last,
// with which methods, from which addresses and tenants, the peak request
// count per window of each rate-limit key, and a bounded sample of request
// bodies for schema checks. Memory is bounded by Options, never by the
// length of the log.
package traffic

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/call"
	"github.com/databus-gateway/databus/engine/store"
)

// Defaults of Options.
const (
	DefaultLimit        = 100000           // records read
	DefaultMaxKeys      = 10000            // distinct appIds, IPs, tenants, APIs, rate keys per table
	DefaultMaxBodies    = 200              // distinct request bodies kept per API
	DefaultMaxBodyBytes = 64 << 10         // longer bodies are not kept (counted as unknown)
	DefaultWindow       = 60 * time.Second // the window of API.Peak
)

// Options bound and filter what is read and kept.
type Options struct {
	Since time.Duration // only records that started within Since of Now; 0: all
	Now   time.Time     // zero: time.Now()
	API   string        // only this API code; "": all
	Limit int           // records aggregated at most; 0: DefaultLimit
	// MaxKeys bounds each table (callers per API, APIs, IPs and tenants
	// per credential, APIs, credentials, keys per Meter): a value beyond it
	// is counted in the table's Dropped, not kept. 0: DefaultMaxKeys.
	MaxKeys      int
	MaxBodies    int           // distinct bodies kept per API; 0: DefaultMaxBodies
	MaxBodyBytes int           // 0: DefaultMaxBodyBytes
	Window       time.Duration // the window of API.Peak; 0: DefaultWindow
	// Meters count requests per key and window (rate-limit policies).
	Meters []*Meter
}

func (o *Options) defaults() {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MaxBodies <= 0 {
		o.MaxBodies = DefaultMaxBodies
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
}

// Aggregate is what the records said.
type Aggregate struct {
	Source  string    `json:"source"`
	Records int       `json:"records"` // records aggregated
	Skipped int       `json:"skipped"` // records of no API; and outside the filters, when Add is called directly (Load reads only those the filters select)
	Limited bool      `json:"limited"` // reading stopped at Options.Limit
	First   time.Time `json:"first"`   // earliest StartedAt aggregated
	Last    time.Time `json:"last"`    // latest StartedAt aggregated
	Window  Duration  `json:"window"`  // the window of API.Peak

	APIs        map[string]*API        `json:"apis"`        // by code:version
	Credentials map[string]*Credential `json:"credentials"` // by appId ("" when security is off)
	// DroppedAPIs and DroppedCredentials count the requests of APIs and
	// credentials beyond Options.MaxKeys.
	DroppedAPIs        int `json:"droppedApis,omitempty"`
	DroppedCredentials int `json:"droppedCredentials,omitempty"`

	opts Options
}

// Duration marshals as a Go duration string.
type Duration time.Duration

// MarshalText writes "1m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// API is the traffic of one code:version. Requests that passed the
// gateway's security chain (Passed) are "accepted": they count in
// Accepted, Callers, Methods, Peak and the body sample; every record
// counts in Total and Statuses.
type API struct {
	Code     string         `json:"code"`
	Version  string         `json:"version"`
	Total    int            `json:"total"`
	Accepted int            `json:"accepted"`
	LastCall time.Time      `json:"lastCall"`
	Statuses map[int]int    `json:"statuses"` // HTTP status -> records
	Methods  map[string]int `json:"methods"`  // accepted requests by method
	Callers  *Table         `json:"callers"`  // accepted requests by appId
	Peak     int            `json:"peak"`     // most accepted requests in one window of Aggregate.Window
	// Bodies is the sample of accepted request bodies: distinct texts with
	// their counts, the first Options.MaxBodies seen.
	Bodies []Body `json:"-"`
	// Unsampled counts accepted requests whose body is not in Bodies (the
	// sample was full, or the body was longer than MaxBodyBytes);
	// Truncated those whose recorded body was cut (storage.accessLog.
	// maxBodyChars) and so cannot be judged.
	Unsampled int `json:"unsampled"`
	Truncated int `json:"truncated"`

	bodyIndex map[string]int
	peak      *windows
}

// ID is code:version.
func (a *API) ID() string { return a.Code + ":" + a.Version }

// Body is one distinct request body of the sample.
type Body struct {
	Text  string
	Count int
}

// Credential is the traffic of one appId (accepted requests only: others
// may carry any appId a client made up).
type Credential struct {
	AppID     string    `json:"appId"`
	Requests  int       `json:"requests"`
	LastCall  time.Time `json:"lastCall"`
	APIs      *Table    `json:"apis"`      // requests by code:version
	ClientIPs *Table    `json:"clientIps"` // requests by client address
	Tenants   *Table    `json:"tenants"`   // requests by tenant id ("" none)
}

// Passed reports whether a record's request passed the security chain and
// reached the flow: the gateway accepted it, whatever the flow answered.
func Passed(r *store.Record) bool { return r.ErrorCode == "" || r.ErrorCode == call.ErrorFlow }

// truncatedSuffix ends a body store.Truncate cut.
const truncatedMark = "…(truncated, "

// Truncated reports whether a recorded body was cut by store.Truncate.
func Truncated(body string) bool {
	i := strings.LastIndex(body, truncatedMark)
	if i < 0 || !strings.HasSuffix(body, " chars in all)") {
		return false
	}
	n := strings.TrimSuffix(body[i+len(truncatedMark):], " chars in all)")
	_, err := strconv.Atoi(n)
	return err == nil
}

// New starts an empty aggregate.
func New(source string, o Options) *Aggregate {
	o.defaults()
	return &Aggregate{Source: source, Window: Duration(o.Window), APIs: map[string]*API{}, Credentials: map[string]*Credential{}, opts: o}
}

// Full reports whether Options.Limit records were aggregated.
func (g *Aggregate) Full() bool { return g.Records >= g.opts.Limit }

// Wants reports whether a record passes the filters (time, API).
func (g *Aggregate) Wants(r *store.Record) bool {
	if g.opts.API != "" && r.APICode != g.opts.API {
		return false
	}
	if g.opts.Since > 0 && r.StartedAt.Before(g.opts.Now.Add(-g.opts.Since)) {
		return false
	}
	return true
}

// Add aggregates one record; false when it was skipped (filters, a record
// of no API) or the limit is reached.
func (g *Aggregate) Add(r *store.Record) bool {
	if g.Full() {
		g.Limited = true
		return false
	}
	if !g.Wants(r) || r.APICode == "" {
		g.Skipped++
		return false
	}
	g.Records++
	if g.First.IsZero() || r.StartedAt.Before(g.First) {
		g.First = r.StartedAt
	}
	if r.StartedAt.After(g.Last) {
		g.Last = r.StartedAt
	}
	id := r.APICode + ":" + r.Version
	a := g.APIs[id]
	if a == nil {
		if len(g.APIs) >= g.opts.MaxKeys {
			g.DroppedAPIs++
			return true
		}
		a = &API{Code: r.APICode, Version: r.Version, Statuses: map[int]int{}, Methods: map[string]int{},
			Callers: newTable(g.opts.MaxKeys), bodyIndex: map[string]int{}, peak: newWindows(g.opts.Window)}
		g.APIs[id] = a
	}
	a.Total++
	a.Statuses[r.HTTPStatus]++
	if r.StartedAt.After(a.LastCall) {
		a.LastCall = r.StartedAt
	}
	for _, m := range g.opts.Meters {
		m.add(r, g.opts.MaxKeys)
	}
	if !Passed(r) {
		return true
	}
	a.Accepted++
	a.Methods[r.Method]++
	a.Callers.add(r.AppID, r.StartedAt)
	a.peak.add("", r.StartedAt, 1)
	a.sample(r.RequestBody, g.opts)

	c := g.Credentials[r.AppID]
	if c == nil {
		if len(g.Credentials) >= g.opts.MaxKeys {
			g.DroppedCredentials++
			return true
		}
		c = &Credential{AppID: r.AppID, APIs: newTable(g.opts.MaxKeys), ClientIPs: newTable(g.opts.MaxKeys), Tenants: newTable(g.opts.MaxKeys)}
		g.Credentials[r.AppID] = c
	}
	c.Requests++
	if r.StartedAt.After(c.LastCall) {
		c.LastCall = r.StartedAt
	}
	c.APIs.add(id, r.StartedAt)
	c.ClientIPs.add(r.ClientIP, r.StartedAt)
	c.Tenants.add(r.TenantID, r.StartedAt)
	return true
}

func (a *API) sample(body string, o Options) {
	switch {
	case Truncated(body):
		a.Truncated++
	case len(body) > o.MaxBodyBytes:
		a.Unsampled++
	default:
		if i, ok := a.bodyIndex[body]; ok {
			a.Bodies[i].Count++
			return
		}
		if len(a.Bodies) >= o.MaxBodies {
			a.Unsampled++
			return
		}
		a.bodyIndex[body] = len(a.Bodies)
		a.Bodies = append(a.Bodies, Body{Text: body, Count: 1})
	}
}

// Finish computes the peaks. Call it once, after the last Add.
func (g *Aggregate) Finish() {
	for _, a := range g.APIs {
		a.Peak, _ = a.peak.max()
		a.bodyIndex = nil
	}
}

// API returns the traffic of code:version, or nil.
func (g *Aggregate) API(id string) *API { return g.APIs[id] }

// Table counts requests by a string key, with the last time seen; at most
// max keys are kept, the requests of others count in Dropped.
type Table struct {
	Entries map[string]*Entry `json:"entries"`
	Dropped int               `json:"dropped,omitempty"`
	max     int
}

func newTable(max int) *Table { return &Table{Entries: map[string]*Entry{}, max: max} }

func (t *Table) add(key string, at time.Time) {
	e := t.Entries[key]
	if e == nil {
		if len(t.Entries) >= t.max {
			t.Dropped++
			return
		}
		e = &Entry{Key: key}
		t.Entries[key] = e
	}
	e.Requests++
	if at.After(e.LastCall) {
		e.LastCall = at
	}
}

// Entry is one key of a Table.
type Entry struct {
	Key      string    `json:"key"`
	Requests int       `json:"requests"`
	LastCall time.Time `json:"lastCall"`
}

// Sorted lists the entries, most requests first (then by key).
func (t *Table) Sorted() []Entry {
	if t == nil {
		return nil
	}
	out := make([]Entry, 0, len(t.Entries))
	for _, e := range t.Entries {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Count returns the requests of key.
func (t *Table) Count(key string) int {
	if t == nil || t.Entries[key] == nil {
		return 0
	}
	return t.Entries[key].Requests
}

// Meter counts accepted requests per key in fixed windows aligned on the
// epoch (as the fixed-window limiter counts), keeping each key's peak. A
// rate-limit policy is metered by its key template (KeyFunc). Records may
// come oldest first (an export file) or newest first (the admin API), and
// slightly out of order: a few windows per key stay open.
type Meter struct {
	Name    string
	Window  time.Duration
	Applies func(apiID string) bool    // nil: every API
	Key     func(*store.Record) string // nil: one key
	win     *windows
	dropped int
}

// NewMeter returns a meter over windows of length window.
func NewMeter(name string, window time.Duration, applies func(string) bool, key func(*store.Record) string) *Meter {
	return &Meter{Name: name, Window: window, Applies: applies, Key: key, win: newWindows(window)}
}

func (m *Meter) add(r *store.Record, maxKeys int) {
	if !Passed(r) || (m.Applies != nil && !m.Applies(r.APICode+":"+r.Version)) {
		return
	}
	k := ""
	if m.Key != nil {
		k = m.Key(r)
	}
	if _, ok := m.win.keys[k]; !ok && len(m.win.keys) >= maxKeys {
		m.dropped++
		return
	}
	m.win.add(k, r.StartedAt, 1)
}

// Peak returns the most requests one key made in one window, and that key.
func (m *Meter) Peak() (int, string) { return m.win.max() }

// Dropped counts requests of keys beyond Options.MaxKeys (not metered).
func (m *Meter) Dropped() int { return m.dropped }

// Header builds the http.Header of a record's (flattened) request headers,
// for key templates that name a header.
func Header(r *store.Record) http.Header {
	h := make(http.Header, len(r.RequestHeaders))
	for k, v := range r.RequestHeaders {
		h.Set(k, v)
	}
	return h
}

// openWindows is how many windows of one key stay open at a time.
const openWindows = 4

// windows keeps, per key, the counts of its few latest windows and the
// peak of those closed.
type windows struct {
	length time.Duration
	keys   map[string]*keyWindows
}

type keyWindows struct {
	open map[int64]int
	peak int
}

func newWindows(length time.Duration) *windows {
	if length <= 0 {
		length = DefaultWindow
	}
	return &windows{length: length, keys: map[string]*keyWindows{}}
}

func (w *windows) add(key string, at time.Time, n int) {
	kw := w.keys[key]
	if kw == nil {
		kw = &keyWindows{open: map[int64]int{}}
		w.keys[key] = kw
	}
	idx := at.UnixNano() / int64(w.length)
	kw.open[idx] += n
	if len(kw.open) > openWindows {
		// Close the window farthest from this one.
		far, dist := idx, int64(-1)
		for i := range kw.open {
			d := i - idx
			if d < 0 {
				d = -d
			}
			if d > dist {
				far, dist = i, d
			}
		}
		kw.peak = max(kw.peak, kw.open[far])
		delete(kw.open, far)
	}
}

func (w *windows) max() (int, string) {
	best, bestKey := 0, ""
	keys := make([]string, 0, len(w.keys))
	for k := range w.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kw := w.keys[k]
		p := kw.peak
		for _, n := range kw.open {
			p = max(p, n)
		}
		if p > best {
			best, bestKey = p, k
		}
	}
	return best, bestKey
}
