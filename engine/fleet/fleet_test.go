package fleet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/revision"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	commitA = "aaaaaaa1111111111111111111111111111111aa"
	commitB = "bbbbbbb2222222222222222222222222222222bb"
)

func gitRev(commit string, dirty bool) fleet.Revision {
	return fleet.RevisionOf(&revision.Revision{Hash: commit, Short: commit[:7], Branch: "main", Dirty: dirty}, "c0ffee"+commit[:6]+"0000")
}

func hb(id string, rev fleet.Revision) fleet.Heartbeat {
	return fleet.Heartbeat{ID: id, Host: id + ".local", Version: "v1", StartedAt: now.Add(-time.Hour), SentAt: now,
		IntervalMS: 5000, Revision: rev}
}

// entry is h as the store would hold it, published age ago.
func entry(t *testing.T, h fleet.Heartbeat, age time.Duration) fleet.Entry {
	t.Helper()
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return fleet.Entry{ID: h.ID, Value: b, Remaining: h.TTL() - age}
}

func TestJudge(t *testing.T) {
	self := hb("self", gitRev(commitA, false))
	withSync := func(h fleet.Heartbeat, head string, at time.Time, errMsg string) fleet.Heartbeat {
		h.GitSync = &fleet.GitSync{At: at, Remote: "origin", Branch: "main", RemoteHead: head, OK: errMsg == "" && head == h.Revision.Commit, Error: errMsg}
		return h
	}
	cases := []struct {
		name      string
		self      fleet.Heartbeat
		entries   func(t *testing.T) []fleet.Entry
		drift     bool
		revisions int
		stale     int
		reasons   []string // substrings, one per reason
		check     func(t *testing.T, v fleet.View)
	}{
		{name: "in step", self: self, revisions: 1,
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, hb("b", gitRev(commitA, false)), time.Second), entry(t, hb("c", gitRev(commitA, false)), 2*time.Second)}
			},
			check: func(t *testing.T, v fleet.View) {
				if len(v.Replicas) != 3 || v.Revisions[0].Replicas != 3 || v.Revisions[0].Revision != "aaaaaaa" {
					t.Errorf("%+v", v.Revisions)
				}
				if v.Replicas[1].AgeMS != 1000 || v.Replicas[2].AgeMS != 2000 {
					t.Errorf("ages %d %d, want 1000 2000", v.Replicas[1].AgeMS, v.Replicas[2].AgeMS)
				}
			}},
		{name: "two commits", self: self, drift: true, revisions: 2, reasons: []string{"2 revisions served: aaaaaaa (2), bbbbbbb (1)"},
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, hb("b", gitRev(commitB, false)), 0), entry(t, hb("c", gitRev(commitA, false)), 0)}
			}},
		{name: "same commit, one dirty", self: self, drift: true, revisions: 2, reasons: []string{"aaaaaaa-dirty@c0ffeeaa"},
			entries: func(t *testing.T) []fleet.Entry { return []fleet.Entry{entry(t, hb("b", gitRev(commitA, true)), 0)} }},
		{name: "no git: content hashes", self: hb("self", fleet.RevisionOf(nil, "1111aaaa2222bbbb")), drift: true, revisions: 2,
			reasons: []string{"2 revisions served: content:1111aaaa2222 (1), content:3333cccc4444 (1)"},
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, hb("b", fleet.RevisionOf(nil, "3333cccc4444dddd")), 0)}
			}},
		{name: "stale replica on another commit", self: self, revisions: 1, stale: 1,
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, hb("b", gitRev(commitB, false)), 16*time.Second)}
			},
			check: func(t *testing.T, v fleet.View) {
				if !v.Replicas[1].Stale || v.Replicas[1].AgeMS != 16000 {
					t.Errorf("%+v", v.Replicas[1])
				}
			}},
		{name: "behind the newest head fetched", drift: true, revisions: 1,
			self:    withSync(self, commitA, now.Add(-time.Minute), ""),
			reasons: []string{"b serves aaaaaaa, behind origin/main at bbbbbbb: revision bbbbbbb is invalid", "self serves aaaaaaa, behind origin/main at bbbbbbb"},
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, withSync(hb("b", gitRev(commitA, false)), commitB, now, "revision bbbbbbb is invalid (1 errors; first: apis/a.yaml:3:1: ...)"), 0)}
			},
			check: func(t *testing.T, v fleet.View) {
				if v.Replicas[0].Behind != commitB || v.Replicas[1].Behind != commitB {
					t.Errorf("behind: %q %q", v.Replicas[0].Behind, v.Replicas[1].Behind)
				}
			}},
		{name: "on the head", revisions: 1,
			self: withSync(self, commitA, now, ""),
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, withSync(hb("b", gitRev(commitA, false)), commitA, now.Add(-time.Second), ""), 0)}
			}},
		{name: "unreadable values", self: self, revisions: 1,
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{
					{ID: "garbage", Value: []byte("{not json"), Remaining: time.Minute},
					{ID: "huge", Value: make([]byte, fleet.MaxHeartbeatBytes+1), Remaining: time.Minute},
				}
			},
			check: func(t *testing.T, v fleet.View) {
				if len(v.Replicas) != 3 || !strings.Contains(v.Replicas[1].Unreadable, "not JSON") || !strings.Contains(v.Replicas[2].Unreadable, "4096-byte bound") {
					t.Errorf("%+v", v.Replicas)
				}
			}},
		{name: "its own stale copy is replaced by itself", self: self, revisions: 1,
			entries: func(t *testing.T) []fleet.Entry {
				return []fleet.Entry{entry(t, hb("self", gitRev(commitB, false)), time.Minute)}
			},
			check: func(t *testing.T, v fleet.View) {
				if len(v.Replicas) != 1 || v.Replicas[0].Revision.Commit != commitA || v.Replicas[0].Stale {
					t.Errorf("%+v", v.Replicas)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entries := c.entries(t)
			v := fleet.Judge(c.self, true, fleet.Read{At: now, Entries: entries, Listed: len(entries) + 1}, now)
			if v.Drift != c.drift || len(v.Revisions) != c.revisions || v.Stale != c.stale || !v.Reachable || v.Reason != "" {
				b, _ := json.MarshalIndent(v, "", " ")
				t.Fatalf("drift %v revisions %d stale %d; want %v %d %d\n%s", v.Drift, len(v.Revisions), v.Stale, c.drift, c.revisions, c.stale, b)
			}
			if len(v.DriftReasons) != len(c.reasons) {
				t.Fatalf("reasons %q, want %d", v.DriftReasons, len(c.reasons))
			}
			all := strings.Join(v.DriftReasons, "\n")
			for _, r := range c.reasons {
				if !strings.Contains(all, r) {
					t.Errorf("no reason says %q: %q", r, v.DriftReasons)
				}
			}
			if !v.Replicas[0].Self || v.Replicas[0].ID != c.self.ID {
				t.Errorf("this replica is not listed first: %+v", v.Replicas[0])
			}
			if c.check != nil {
				c.check(t, v)
			}
		})
	}
}

func TestJudgeWithoutFleet(t *testing.T) {
	self := hb("self", gitRev(commitA, false))
	other := entry(t, hb("b", gitRev(commitB, false)), 0)
	for _, c := range []struct {
		name   string
		shared bool
		read   fleet.Read
		reason string
	}{
		{"no redis", false, fleet.Read{}, "redis.addr"},
		{"no read yet", true, fleet.Read{}, "no heartbeat has been exchanged"},
		{"unreachable", true, fleet.Read{At: now, Err: errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"), Entries: []fleet.Entry{other}}, "Redis is unreachable (dial tcp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := fleet.Judge(self, c.shared, c.read, now)
			if v.Reachable || v.Shared != c.shared || !strings.Contains(v.Reason, c.reason) || len(v.Replicas) != 1 || v.Drift || v.ReadAt != nil {
				t.Errorf("%+v", v)
			}
		})
	}
}

func TestNotShown(t *testing.T) {
	v := fleet.Judge(hb("self", gitRev(commitA, false)), true,
		fleet.Read{At: now, Entries: []fleet.Entry{entry(t, hb("b", gitRev(commitA, false)), 0)}, Listed: 300}, now)
	if v.Listed != 300 || v.NotShown != 298 || len(v.Replicas) != 2 {
		t.Errorf("listed %d, not shown %d, shown %d; want 300, 298, 2", v.Listed, v.NotShown, len(v.Replicas))
	}
	v = fleet.Judge(hb("self", gitRev(commitA, false)), true,
		fleet.Read{At: now, Entries: []fleet.Entry{entry(t, hb("self", gitRev(commitA, false)), 0), entry(t, hb("b", gitRev(commitA, false)), 0)}, Listed: 300}, now)
	if v.NotShown != 298 || len(v.Replicas) != 2 {
		t.Errorf("with itself read: not shown %d, shown %d; want 298, 2", v.NotShown, len(v.Replicas))
	}
}

// TestEncodeBound: a heartbeat stays within MaxHeartbeatBytes whatever the
// reload's errors hold, and keeps their count.
func TestEncodeBound(t *testing.T) {
	h := hb("self", gitRev(commitA, false))
	h.Version = strings.Repeat("v", 10_000)
	h.LastReload = &fleet.Reload{At: now, OK: false, Error: strings.Repeat("e", 10_000)}
	for i := 0; i < 500; i++ {
		h.LastReload.Errors = append(h.LastReload.Errors, config.Diagnostic{File: "apis/" + strings.Repeat("x", 1000) + ".yaml", Line: i + 1, Column: 1,
			Severity: config.SevError, Path: strings.Repeat("p", 1000), Message: strings.Repeat("紧", 1000)})
	}
	h.GitSync = &fleet.GitSync{Remote: strings.Repeat("r", 5000), Error: strings.Repeat("g", 5000)}
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > fleet.MaxHeartbeatBytes {
		t.Fatalf("%d bytes, over %d", len(b), fleet.MaxHeartbeatBytes)
	}
	var back fleet.Heartbeat
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.LastReload.ErrorCount != 500 || len(back.LastReload.Errors) > fleet.MaxErrors || back.Revision != h.Revision {
		t.Errorf("errors kept %d, count %d", len(back.LastReload.Errors), back.LastReload.ErrorCount)
	}
	// The original is left as it was.
	if len(h.LastReload.Errors) != 500 {
		t.Errorf("Encode changed its receiver's errors")
	}

	// A usual refused reload keeps its first errors at file:line.
	h = hb("self", gitRev(commitA, false))
	h.LastReload = &fleet.Reload{At: now, Errors: []config.Diagnostic{{File: "apis/a.yaml", Line: 7, Column: 3, Severity: config.SevError, Message: "bad"}}, ErrorCount: 1}
	b, _ = h.Encode()
	json.Unmarshal(b, &back)
	if got := back.LastReload.Errors; len(got) != 1 || got[0].String() != "apis/a.yaml:7:3: error: bad" {
		t.Errorf("errors: %+v", got)
	}
}

func TestReadEvery(t *testing.T) {
	for _, c := range []struct {
		listed int
		want   time.Duration
	}{{0, 5 * time.Second}, {1, 5 * time.Second}, {fleet.FullReadReplicas, 5 * time.Second},
		{fleet.FullReadReplicas + 1, 10 * time.Second}, {fleet.MaxReplicas, 40 * time.Second}, {1000, 160 * time.Second}} {
		if got := fleet.ReadEvery(c.listed, 5*time.Second); got != c.want {
			t.Errorf("ReadEvery(%d) = %v, want %v", c.listed, got, c.want)
		}
	}
}

// TestJudgeBetweenReads: a fleet of more than 3×FullReadReplicas is read
// every ReadEvery intervals, longer than the stale limit; between reads the
// view judges the last read again. A replica live when read stays live
// until the next read (its age shown grows), and one stale when read stays
// stale.
func TestJudgeBetweenReads(t *testing.T) {
	const others = 3*fleet.FullReadReplicas + 5 // 101: read every 4 intervals
	self := hb("self", gitRev(commitA, false))
	iv := self.Interval()
	every := fleet.ReadEvery(others+1, iv)
	if every <= fleet.StaleAfterIntervals*iv {
		t.Fatalf("ReadEvery(%d) = %v is within the stale limit: the fleet is too small for this test", others+1, every)
	}
	var entries []fleet.Entry
	for i := 0; i < others; i++ {
		// Published between 0 and one interval before the read, as a
		// fleet publishing every interval is.
		entries = append(entries, entry(t, hb(fmt.Sprintf("r-%03d", i), gitRev(commitA, false)), time.Duration(i)*iv/others))
	}
	quiet := hb("quiet", gitRev(commitB, false))
	entries = append(entries, entry(t, quiet, fleet.StaleAfterIntervals*iv+time.Second))
	read := fleet.Read{At: now, Entries: entries, Listed: others + 2}
	for _, since := range []time.Duration{0, iv, fleet.StaleAfterIntervals * iv, every - time.Millisecond} {
		v := fleet.Judge(self, true, read, now.Add(since))
		if v.Stale != 1 || v.Drift || len(v.Revisions) != 1 || v.Revisions[0].Replicas != others+1 {
			t.Errorf("%v after the read: stale %d, drift %v (%v), revisions %+v; want 1 stale, no drift, %d replicas on one revision",
				since, v.Stale, v.Drift, v.DriftReasons, v.Revisions, others+1)
		}
		for _, r := range v.Replicas {
			if r.ID == "r-000" && r.AgeMS != since.Milliseconds() {
				t.Errorf("%v after the read: r-000's age %dms, want %dms", since, r.AgeMS, since.Milliseconds())
			}
		}
	}
}

// TestHostileIDs: ids the gateway does not make (too long, or outside its
// character set) are not shown as replicas.
func TestHostileIDs(t *testing.T) {
	for _, c := range []struct {
		id   string
		want bool
	}{{"pod-7f9c-1-a1b2c3", true}, {"host.example_1", true}, {strings.Repeat("a", fleet.MaxIDBytes), true},
		{strings.Repeat("a", fleet.MaxIDBytes+1), false}, {"", false}, {"a b", false}, {"a\nb", false},
		{"<script>", false}, {"é", false}, {"a/b", false}} {
		if got := fleet.ValidID(c.id); got != c.want {
			t.Errorf("ValidID(%q) = %v, want %v", c.id, got, c.want)
		}
	}
	// The key names the replica, whatever its value says.
	long := entry(t, hb("x", gitRev(commitB, false)), 0)
	long.ID = strings.Repeat("x", 100_000)
	odd := entry(t, hb("evil", gitRev(commitB, false)), 0)
	odd.ID = "evil\x1b[31m"
	v := fleet.Judge(hb("self", gitRev(commitA, false)), true, fleet.Read{At: now,
		Entries: []fleet.Entry{long, odd, entry(t, hb("b", gitRev(commitA, false)), 0)}, Listed: 4}, now)
	if len(v.Replicas) != 2 || v.Replicas[1].ID != "b" || v.Drift || v.NotShown != 2 {
		var ids []string
		for _, r := range v.Replicas {
			ids = append(ids, r.ID[:min(len(r.ID), 20)])
		}
		t.Errorf("shown %q, drift %v, not shown %d; want self and b, no drift, 2 not shown", ids, v.Drift, v.NotShown)
	}
}

// TestHostileInterval: an interval out of range is clamped, so a replica
// claiming a huge one still goes stale and its age does not overflow.
func TestHostileInterval(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want time.Duration
	}{{0, fleet.DefaultInterval}, {-5, fleet.DefaultInterval}, {1, fleet.MinInterval}, {5000, 5 * time.Second},
		{fleet.MaxInterval.Milliseconds(), fleet.MaxInterval}, {fleet.MaxInterval.Milliseconds() + 1, fleet.MaxInterval},
		{1 << 62, fleet.MaxInterval}, {math.MaxInt64, fleet.MaxInterval}} {
		h := fleet.Heartbeat{IntervalMS: c.ms}
		if got := h.Interval(); got != c.want {
			t.Errorf("IntervalMS %d: Interval() = %v, want %v", c.ms, got, c.want)
		}
		if ttl := h.TTL(); ttl != fleet.ForgetAfterIntervals*c.want {
			t.Errorf("IntervalMS %d: TTL() = %v", c.ms, ttl)
		}
	}
	// Published with a huge interval, quiet for longer than the stale limit
	// of the largest interval allowed.
	h := hb("b", gitRev(commitB, false))
	h.IntervalMS = 1 << 62
	b, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	age := fleet.StaleAfterIntervals*fleet.MaxInterval + time.Minute
	e := fleet.Entry{ID: "b", Value: b, Remaining: fleet.ForgetAfterIntervals*fleet.MaxInterval - age}
	v := fleet.Judge(hb("self", gitRev(commitA, false)), true, fleet.Read{At: now, Entries: []fleet.Entry{e}, Listed: 2}, now)
	if v.Stale != 1 || v.Drift || !v.Replicas[1].Stale || v.Replicas[1].AgeMS != age.Milliseconds() {
		t.Errorf("stale %d, drift %v, replica %+v; want it stale at age %v", v.Stale, v.Drift, v.Replicas[1], age)
	}
}

// TestFutureGitSync: a git sync dated in the future beyond the clock skew
// allowed does not name the branch head; one within it does.
func TestFutureGitSync(t *testing.T) {
	withSync := func(h fleet.Heartbeat, head string, at time.Time) fleet.Heartbeat {
		h.GitSync = &fleet.GitSync{At: at, Remote: "origin", Branch: "main", RemoteHead: head, OK: head == h.Revision.Commit}
		return h
	}
	self := withSync(hb("self", gitRev(commitA, false)), commitA, now.Add(-time.Second))
	// b serves A too but claims to have fetched B, dated far ahead.
	b := withSync(hb("b", gitRev(commitA, false)), commitB, now.Add(fleet.ClockSkew+time.Second))
	v := fleet.Judge(self, true, fleet.Read{At: now, Entries: []fleet.Entry{entry(t, b, 0)}, Listed: 2}, now)
	if v.Drift || v.Replicas[0].Behind != "" || v.Replicas[1].Behind != "" {
		t.Errorf("a fetch dated beyond the clock skew names the head: drift %v %v", v.Drift, v.DriftReasons)
	}
	// Within the skew it is believed: both replicas are behind B.
	b = withSync(hb("b", gitRev(commitA, false)), commitB, now.Add(fleet.ClockSkew-time.Second))
	v = fleet.Judge(self, true, fleet.Read{At: now, Entries: []fleet.Entry{entry(t, b, 0)}, Listed: 2}, now)
	if !v.Drift || v.Replicas[0].Behind != commitB || v.Replicas[1].Behind != commitB {
		t.Errorf("a fetch within the clock skew is ignored: drift %v %v", v.Drift, v.DriftReasons)
	}
}
