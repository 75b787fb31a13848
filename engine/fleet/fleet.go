// Package fleet is what each replica of a gateway tells the others through
// Redis, and how one replica judges what it reads back: which revision each
// replica serves, whether they drift apart or fall behind the branch head,
// and which went quiet.
//
// Every Interval a replica publishes its Heartbeat (Store.Publish, a value
// that expires after ForgetAfterIntervals intervals) and reads the others'
// (Store.List); Judge turns that read into the View the admin listener,
// the overview page and the metrics show. The package holds no client:
// engine/redisstore implements Store, engine/gateway runs the loop.
package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/revision"
)

// The fleet's bounds.
const (
	// DefaultInterval is how often a replica publishes its heartbeat and
	// reads the others'.
	DefaultInterval = 5 * time.Second
	// StaleAfterIntervals: a replica whose last heartbeat is older than
	// this many of its intervals is stale: still listed, flagged, and
	// left out of the drift judgement (it may be gone).
	StaleAfterIntervals = 3
	// ForgetAfterIntervals is how many intervals a heartbeat lives in
	// Redis (its key's expiry): a replica that stopped without leaving
	// (killed, partitioned) is listed as stale until then, then dropped.
	// A replica that shuts down gracefully removes its own at once.
	ForgetAfterIntervals = 12
	// MaxReplicas is how many heartbeats one read returns at most, the
	// most recent first; the view says how many more are not shown.
	MaxReplicas = 256
	// MaxHeartbeatBytes bounds one encoded heartbeat. Encode shortens
	// what it must to stay within; a longer value found in Redis is not
	// decoded (the replica is listed as unreadable).
	MaxHeartbeatBytes = 4 << 10
	// FullReadReplicas: a fleet of up to this many replicas is read every
	// interval; a larger one every ceil(listed/FullReadReplicas)
	// intervals (ReadEvery), so that reading the fleet costs Redis about
	// 2×listed×FullReadReplicas commands per interval across all replicas
	// rather than 2×listed². Heartbeats are published every interval
	// whatever the size.
	FullReadReplicas = 32
	// MaxErrors is how many of a refused reload's errors a heartbeat
	// carries (with their count); MaxText bounds each free-text field.
	MaxErrors = 3
	MaxText   = 300
	// MaxIDBytes bounds a replica's id; an id is made of ASCII letters,
	// digits, '-', '.' and '_' (ValidID), as the gateway names itself.
	// Ids read from the store that are not valid are skipped.
	MaxIDBytes = 128
	// MinInterval and MaxInterval bound a heartbeat's interval (Interval):
	// a value outside, as only a hostile or broken entry holds, is
	// clamped, so that its age, staleness and expiry stay in range.
	MinInterval = 10 * time.Millisecond
	MaxInterval = time.Hour
	// ClockSkew is how far the replicas' clocks may disagree: a git sync
	// dated later than now plus ClockSkew does not name the branch head
	// (engine/redisstore trims the index with the same allowance).
	ClockSkew = time.Minute
)

// ValidID reports whether id can name a replica: 1 to MaxIDBytes ASCII
// letters, digits, '-', '.' or '_'.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return false
		}
	}
	return true
}

// Store is where heartbeats meet: engine/redisstore.Fleet.
type Store interface {
	// Publish stores id's heartbeat value for ttl and lists id.
	Publish(ctx context.Context, id string, value []byte, ttl time.Duration) error
	// Remove deletes id's heartbeat (a replica that stops).
	Remove(ctx context.Context, id string) error
	// List returns at most max heartbeats, the most recently published
	// first, and how many ids are listed in all.
	List(ctx context.Context, max int) (entries []Entry, listed int, err error)
}

// Entry is one heartbeat as the store holds it.
type Entry struct {
	ID    string
	Value []byte // at most MaxHeartbeatBytes+1 bytes: longer values are cut when read
	// Remaining is what is left of the value's expiry, by the store's
	// clock: with the heartbeat's own interval it says how long ago it
	// was published, whatever the replicas' clocks say.
	Remaining time.Duration
}

// Revision is what a replica serves.
type Revision struct {
	// Label names it as the logs and databus_config_info do: the short
	// commit, "-dirty" with uncommitted config changes, content:<hash>
	// outside git.
	Label   string `json:"label"`
	Content string `json:"content"`          // the content hash of the configuration files
	Commit  string `json:"commit,omitempty"` // the git commit; "" outside git
	Branch  string `json:"branch,omitempty"`
	Dirty   bool   `json:"dirty,omitempty"` // config files differ from Commit
}

// RevisionOf is the revision of a Snapshot: its git revision (nil outside
// git) and content hash.
func RevisionOf(git *revision.Revision, content string) Revision {
	r := Revision{Label: revision.Label(git, content), Content: content}
	if git != nil && git.Hash != "" {
		r.Commit, r.Branch, r.Dirty = git.Hash, git.Branch, git.Dirty
	}
	return r
}

// Key identifies what is served: the commit, with the content hash when
// the tree is dirty (two dirty trees on one commit may differ); the
// content hash outside git.
func (r Revision) Key() string {
	switch {
	case r.Commit != "" && r.Dirty:
		return r.Commit + "+" + r.Content
	case r.Commit != "":
		return r.Commit
	}
	return "content:" + r.Content
}

// Name is Key for people and metric labels: the label, and the first 8
// digits of the content hash when dirty.
func (r Revision) Name() string {
	if r.Commit != "" && r.Dirty {
		return r.Label + "@" + short(r.Content, 8)
	}
	return r.Label
}

// Reload is a replica's last reload attempt.
type Reload struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
	OK     bool      `json:"ok"`
	// Error: the repository could not be read at all.
	Error string `json:"error,omitempty"`
	// Errors are the first MaxErrors findings that refused it, each at
	// file:line:column; ErrorCount is how many there were.
	Errors     []config.Diagnostic `json:"errors,omitempty"`
	ErrorCount int                 `json:"errorCount,omitempty"`
}

// GitSync is a replica's last git-sync attempt (databus serve --git-sync).
type GitSync struct {
	At         time.Time `json:"at"` // zero: none yet
	Remote     string    `json:"remote"`
	Branch     string    `json:"branch,omitempty"`
	RemoteHead string    `json:"remoteHead,omitempty"` // the branch head fetched
	OK         bool      `json:"ok"`                   // the checkout is on the remote head
	Error      string    `json:"error,omitempty"`      // why it stays where it is
}

// Heartbeat is what a replica publishes about itself.
type Heartbeat struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"startedAt"`
	SentAt     time.Time `json:"sentAt"` // by the replica's clock; staleness is judged by the store's
	IntervalMS int64     `json:"intervalMs"`
	Revision   Revision  `json:"revision"`
	LastReload *Reload   `json:"lastReload,omitempty"`
	// GitSync is the last git-sync attempt; nil when git sync is off.
	GitSync *GitSync `json:"gitSync,omitempty"`
}

// ReadEvery is how often a replica reads a fleet of listed replicas,
// heartbeats every interval.
func ReadEvery(listed int, interval time.Duration) time.Duration {
	k := (listed + FullReadReplicas - 1) / FullReadReplicas
	return time.Duration(max(k, 1)) * interval
}

// Interval is the heartbeat's interval (DefaultInterval when unset),
// clamped to [MinInterval, MaxInterval].
func (h Heartbeat) Interval() time.Duration {
	switch {
	case h.IntervalMS <= 0:
		return DefaultInterval
	case h.IntervalMS < MinInterval.Milliseconds():
		return MinInterval
	case h.IntervalMS > MaxInterval.Milliseconds():
		return MaxInterval
	}
	return time.Duration(h.IntervalMS) * time.Millisecond
}

// TTL is how long the heartbeat lives in the store.
func (h Heartbeat) TTL() time.Duration { return ForgetAfterIntervals * h.Interval() }

// Encode is the heartbeat's value, at most MaxHeartbeatBytes: free text is
// cut to MaxText, errors to MaxErrors, and when that is not enough the
// errors are dropped (their count stays).
func (h Heartbeat) Encode() ([]byte, error) {
	h.Host, h.Version = clip(h.Host), clip(h.Version)
	if r := h.LastReload; r != nil {
		c := *r
		c.Reason, c.Error = clip(c.Reason), clip(c.Error)
		if c.ErrorCount < len(c.Errors) {
			c.ErrorCount = len(c.Errors)
		}
		errs := make([]config.Diagnostic, 0, min(len(c.Errors), MaxErrors))
		for _, d := range c.Errors[:min(len(c.Errors), MaxErrors)] {
			d.File, d.Path, d.Message = clip(d.File), clip(d.Path), clip(d.Message)
			errs = append(errs, d)
		}
		c.Errors = errs
		h.LastReload = &c
	}
	if g := h.GitSync; g != nil {
		c := *g
		c.Remote, c.Branch, c.Error = clip(c.Remote), clip(c.Branch), clip(c.Error)
		h.GitSync = &c
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxHeartbeatBytes && h.LastReload != nil {
		c := *h.LastReload
		c.Errors = nil
		h.LastReload = &c
		b, err = json.Marshal(h)
	}
	if err == nil && len(b) > MaxHeartbeatBytes {
		err = fmt.Errorf("heartbeat of %d bytes is over the %d-byte bound", len(b), MaxHeartbeatBytes)
	}
	return b, err
}

// clip cuts s to MaxText bytes at a rune boundary.
func clip(s string) string {
	if len(s) <= MaxText {
		return s
	}
	s = s[:MaxText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Read is the outcome of one read of the store.
type Read struct {
	At      time.Time // when it ended; zero: no read yet
	Entries []Entry
	Listed  int   // ids the store lists in all
	Err     error // the publish or the read failed: Redis is unreachable
}

// Replica is one replica as the view shows it.
type Replica struct {
	Heartbeat
	// AgeMS is how long ago its last heartbeat was published.
	AgeMS int64 `json:"ageMs"`
	Self  bool  `json:"self,omitempty"`
	// Stale: no heartbeat for StaleAfterIntervals of its intervals.
	Stale bool `json:"stale,omitempty"`
	// Behind is the branch head it does not serve (git sync on): the
	// newest head any live replica fetched of its branch.
	Behind string `json:"behind,omitempty"`
	// Unreadable says why its value could not be read.
	Unreadable string `json:"unreadable,omitempty"`
}

// RevisionCount is how many live replicas serve one revision.
type RevisionCount struct {
	Revision string `json:"revision"` // Revision.Name
	Key      string `json:"key"`      // Revision.Key
	Replicas int    `json:"replicas"`
}

// View is the fleet as one replica sees it.
type View struct {
	Self string `json:"self"` // this replica's id
	// Shared: Redis is configured, so replicas publish heartbeats.
	Shared bool `json:"shared"`
	// Reachable: the last heartbeat reached Redis and the others were
	// read (ReadAt).
	Reachable bool       `json:"reachable"`
	ReadAt    *time.Time `json:"readAt,omitempty"`
	// Reason says why the view shows this replica only: no Redis, Redis
	// unreachable, no read yet.
	Reason        string    `json:"reason,omitempty"`
	IntervalMS    int64     `json:"intervalMs"`
	StaleAfterMS  int64     `json:"staleAfterMs"`
	ForgetAfterMS int64     `json:"forgetAfterMs"`
	Replicas      []Replica `json:"replicas"` // this replica first, then by host and id
	// Listed is how many replicas Redis lists; NotShown how many of them
	// are beyond MaxReplicas.
	Listed   int `json:"listed"`
	NotShown int `json:"notShown"`
	// Revisions counts the live (not stale) replicas per revision, the
	// most served first.
	Revisions []RevisionCount `json:"revisions"`
	Stale     int             `json:"stale"`
	// Drift: live replicas serve different revisions, or one serves a
	// commit behind its branch head (git sync on). DriftReasons say which.
	Drift        bool     `json:"drift"`
	DriftReasons []string `json:"driftReasons,omitempty"`
}

// Judge builds the view: self is this replica now (it replaces what the
// read holds of it), shared says whether Redis is configured, read is the
// last read of the store (its entries are ignored when it failed).
func Judge(self Heartbeat, shared bool, read Read, now time.Time) View {
	iv := self.Interval()
	v := View{Self: self.ID, Shared: shared, IntervalMS: iv.Milliseconds(),
		StaleAfterMS: (StaleAfterIntervals * iv).Milliseconds(), ForgetAfterMS: self.TTL().Milliseconds()}
	v.Replicas = append(v.Replicas, Replica{Heartbeat: self, Self: true})
	switch {
	case !shared:
		v.Reason = "Redis is not configured (redis.addr in databus.yaml): replicas publish no heartbeat, so each one shows only itself"
	case read.At.IsZero():
		v.Reason = "no heartbeat has been exchanged through Redis yet"
	case read.Err != nil:
		v.Reason = "Redis is unreachable (" + read.Err.Error() + "): the other replicas cannot be seen; the heartbeat keeps trying every " + iv.String()
	default:
		v.Reachable = true
		at := read.At
		v.ReadAt = &at
		v.Listed = read.Listed
		since := max(now.Sub(read.At), 0)
		// This replica is listed (it published before the read) and
		// shown, whether or not the read reached it.
		shown := 1
		for _, e := range read.Entries {
			if e.ID == self.ID || !ValidID(e.ID) {
				continue // an id the gateway does not make is not a replica's
			}
			v.Replicas = append(v.Replicas, replicaOf(e, since))
			shown++
		}
		v.NotShown = max(read.Listed-shown, 0)
	}
	sort.SliceStable(v.Replicas[1:], func(i, j int) bool {
		a, b := v.Replicas[1+i], v.Replicas[1+j]
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		return a.ID < b.ID
	})
	v.judge(now)
	return v
}

// replicaOf decodes an entry read since ago. Staleness is judged on its
// age when it was read, by the store's clock: a large fleet is read only
// every few intervals (ReadEvery), and between reads the view shows the
// last one, so adding the time since would flag every replica of a fleet
// read less often than StaleAfterIntervals as stale before the next read.
// The age shown is the age now.
func replicaOf(e Entry, since time.Duration) Replica {
	r := Replica{Heartbeat: Heartbeat{ID: e.ID}}
	if len(e.Value) > MaxHeartbeatBytes {
		r.Unreadable = fmt.Sprintf("its heartbeat is over the %d-byte bound", MaxHeartbeatBytes)
		r.AgeMS = -1
		return r
	}
	var h Heartbeat
	if err := json.Unmarshal(e.Value, &h); err != nil {
		r.Unreadable = "its heartbeat is not JSON: " + clip(err.Error())
		r.AgeMS = -1
		return r
	}
	h.ID = e.ID // the key names it, whatever the value says
	r.Heartbeat = h
	age := max(h.TTL()-e.Remaining, 0) // when read
	r.Stale = age > StaleAfterIntervals*h.Interval()
	r.AgeMS = (age + since).Milliseconds()
	return r
}

// judge counts revisions and finds drift among the live replicas.
func (v *View) judge(now time.Time) {
	live := func(r Replica) bool { return !r.Stale && r.Unreadable == "" }
	// The branch heads: the newest fetch of each remote branch. A fetch
	// dated beyond now plus the clock skew allowed is not believed: it
	// would name the head until that date whatever the others fetch.
	latest := now.Add(ClockSkew)
	type head struct {
		hash string
		at   time.Time
	}
	heads := map[string]head{}
	branchOf := func(g *GitSync) string { return g.Remote + "/" + g.Branch }
	for _, r := range v.Replicas {
		if g := r.GitSync; live(r) && g != nil && g.RemoteHead != "" && !g.At.After(latest) {
			if h, ok := heads[branchOf(g)]; !ok || g.At.After(h.at) {
				heads[branchOf(g)] = head{g.RemoteHead, g.At}
			}
		}
	}
	counts := map[string]*RevisionCount{}
	for i := range v.Replicas {
		r := &v.Replicas[i]
		if r.Stale {
			v.Stale++
		}
		if !live(*r) {
			continue
		}
		k := r.Revision.Key()
		if c := counts[k]; c != nil {
			c.Replicas++
		} else {
			counts[k] = &RevisionCount{Revision: r.Revision.Name(), Key: k, Replicas: 1}
		}
		if g := r.GitSync; g != nil {
			if h, ok := heads[branchOf(g)]; ok && r.Revision.Commit != h.hash {
				r.Behind = h.hash
			}
		}
	}
	v.Revisions = make([]RevisionCount, 0, len(counts))
	for _, c := range counts {
		v.Revisions = append(v.Revisions, *c)
	}
	sort.Slice(v.Revisions, func(i, j int) bool {
		a, b := v.Revisions[i], v.Revisions[j]
		if a.Replicas != b.Replicas {
			return a.Replicas > b.Replicas
		}
		return a.Revision < b.Revision
	})
	if len(v.Revisions) > 1 {
		parts := make([]string, len(v.Revisions))
		for i, c := range v.Revisions {
			parts[i] = fmt.Sprintf("%s (%d)", c.Revision, c.Replicas)
		}
		v.Drift = true
		v.DriftReasons = append(v.DriftReasons, fmt.Sprintf("%d revisions served: %s", len(v.Revisions), strings.Join(parts, ", ")))
	}
	for _, r := range v.Replicas {
		if r.Behind == "" {
			continue
		}
		v.Drift = true
		why := ""
		if r.GitSync.Error != "" {
			why = ": " + r.GitSync.Error
		}
		v.DriftReasons = append(v.DriftReasons, fmt.Sprintf("%s serves %s, behind %s at %s%s",
			r.ID, r.Revision.Name(), branchOf(r.GitSync), short(r.Behind, 7), why))
	}
}
