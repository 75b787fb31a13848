package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/internal/testredis"
)

// fleetInterval is the tests' heartbeat interval: short, so that what they
// wait for happens soon; nothing is judged by how soon.
const fleetInterval = 50 * time.Millisecond

// fleetRepo is a repository whose hello API answers value, sharing the
// Redis at addr ("": none).
func fleetRepo(t *testing.T, addr, value string) string {
	t.Helper()
	dir := t.TempDir()
	settings := testSettings
	if addr != "" {
		settings += "redis:\n  addr: " + addr + "\n  timeout: 2s\n"
	}
	writeRepo(t, dir, map[string]string{"databus.yaml": settings, "apis/hello.yaml": scriptAPI("hello", "online", value)})
	return dir
}

// startReplica serves dir as one replica of a fleet.
func startReplica(t *testing.T, dir, version string, more ...func(*Options)) *testServer {
	t.Helper()
	o := Options{Dir: dir, NoWatch: true, FleetInterval: fleetInterval, Version: version,
		StoragePath: filepath.Join(t.TempDir(), "databus.db")}
	for _, f := range more {
		f(&o)
	}
	return startServer(t, o)
}

// fleetView GETs /databus/gateway/fleet on the admin listener.
func (ts *testServer) fleetView(t *testing.T) fleet.View {
	t.Helper()
	resp, err := ts.client.Get(ts.adminURL + "/databus/gateway/fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Code int        `json:"code"`
		Data fleet.View `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &env) != nil || env.Code != 0 {
		t.Fatalf("GET /databus/gateway/fleet: %d %s", resp.StatusCode, raw)
	}
	return env.Data
}

// ids lists the replicas of v by id.
func ids(v fleet.View) []string {
	var out []string
	for _, r := range v.Replicas {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

func replicaOf(v fleet.View, id string) *fleet.Replica {
	for i := range v.Replicas {
		if v.Replicas[i].ID == id {
			return &v.Replicas[i]
		}
	}
	return nil
}

func viewJSON(v fleet.View) string {
	b, _ := json.MarshalIndent(v, "", " ")
	return string(b)
}

// fleetRevisions is databus_fleet_replicas by revision label.
func fleetRevisions(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	if f := ts.metricFamilies(t)["databus_fleet_replicas"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "revision" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

func revisionName(ts *testServer) string {
	snap := ts.Current()
	return fleet.RevisionOf(snap.Git, snap.Revision).Name()
}

// TestFleetDriftThenConvergence: two gateways on one Redis serve different
// revisions — each one's fleet view lists both and flags drift, and the
// metric counts two revisions; one reloads to the other's content — drift
// clears everywhere; one stops — it removes its heartbeat, and the other
// lists itself alone.
func TestFleetDriftThenConvergence(t *testing.T) {
	rs := testredis.Start(t)
	dirA, dirB := fleetRepo(t, rs.Addr, "one"), fleetRepo(t, rs.Addr, "two")
	a := startReplica(t, dirA, "test-a")
	b := startReplica(t, dirB, "test-b")
	revA, revB := revisionName(a), revisionName(b)
	if revA == revB {
		t.Fatalf("the two repositories serve the same revision %s", revA)
	}
	both := []string{a.fleet.id, b.fleet.id}
	slices.Sort(both)

	for _, ts := range []*testServer{a, b} {
		var v fleet.View
		waitFor(t, pollTimeout, "each replica's fleet view to list both, drifting", func() bool {
			v = ts.fleetView(t)
			return slices.Equal(ids(v), both) && v.Drift
		}, func() string { return viewJSON(v) })
		if !v.Shared || !v.Reachable || v.Reason != "" || v.Listed != 2 || v.NotShown != 0 || v.Stale != 0 {
			t.Errorf("fleet view of %s: %s", ts.fleet.id, viewJSON(v))
		}
		if len(v.Revisions) != 2 || v.Revisions[0].Replicas != 1 || v.Revisions[1].Replicas != 1 {
			t.Errorf("revisions: %+v, want %s and %s once each", v.Revisions, revA, revB)
		}
		if len(v.DriftReasons) != 1 || !strings.Contains(v.DriftReasons[0], "2 revisions served") ||
			!strings.Contains(v.DriftReasons[0], revA) || !strings.Contains(v.DriftReasons[0], revB) {
			t.Errorf("drift reasons: %q", v.DriftReasons)
		}
		if v.Replicas[0].ID != ts.fleet.id || !v.Replicas[0].Self {
			t.Errorf("the first replica listed is not this one: %s", viewJSON(v))
		}
	}
	// What one replica reads of the other is what the other published.
	v := a.fleetView(t)
	other := replicaOf(v, b.fleet.id)
	host, _ := os.Hostname()
	if other.Self || other.Stale || other.Host != host || other.Version != "test-b" || other.Revision.Name() != revB ||
		other.Revision.Content != b.Current().Revision || other.LastReload == nil || !other.LastReload.OK || other.StartedAt.IsZero() {
		t.Errorf("replica b as a reads it: %+v", other)
	}
	for _, ts := range []*testServer{a, b} {
		waitFor(t, pollTimeout, "the metrics to count two revisions", func() bool {
			revs := fleetRevisions(t, ts)
			return len(revs) == 2 && revs[revA] == 1 && revs[revB] == 1
		}, func() string { return fmt.Sprint(fleetRevisions(t, ts)) })
		mf := ts.metricFamilies(t)
		if d := metricValue(mf, "databus_fleet_drift", nil); d != 1 {
			t.Errorf("databus_fleet_drift = %v, want 1", d)
		}
		if h := metricValue(mf, "databus_fleet_heartbeat_last_success", nil); h != 1 {
			t.Errorf("databus_fleet_heartbeat_last_success = %v, want 1", h)
		}
	}

	// b deploys a's content: the fleet converges.
	writeRepo(t, dirB, map[string]string{"apis/hello.yaml": scriptAPI("hello", "online", "one")})
	if res := b.Reload(context.Background(), "test"); !res.OK || !res.Changed {
		t.Fatalf("reload of b: %+v", res)
	}
	if revisionName(b) != revA {
		t.Fatalf("b serves %s after the reload, want %s", revisionName(b), revA)
	}
	for _, ts := range []*testServer{a, b} {
		var v fleet.View
		waitFor(t, pollTimeout, "each replica's fleet view to show both in step", func() bool {
			v = ts.fleetView(t)
			return slices.Equal(ids(v), both) && !v.Drift
		}, func() string { return viewJSON(v) })
		if len(v.Revisions) != 1 || v.Revisions[0].Revision != revA || v.Revisions[0].Replicas != 2 || len(v.DriftReasons) != 0 {
			t.Errorf("in step: %s", viewJSON(v))
		}
		waitFor(t, pollTimeout, "the metrics to count one revision served twice", func() bool {
			revs := fleetRevisions(t, ts)
			return len(revs) == 1 && revs[revA] == 2
		}, func() string { return fmt.Sprint(fleetRevisions(t, ts)) })
		if d := metricValue(ts.metricFamilies(t), "databus_fleet_drift", nil); d != 0 {
			t.Errorf("databus_fleet_drift = %v after convergence, want 0", d)
		}
	}

	// b stops: its heartbeat is gone from Redis by the time Serve returns.
	if err := b.stop(); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	if n := rc.Exists(context.Background(), redisstore.FleetReplicaKey+b.fleet.id).Val(); n != 0 {
		t.Errorf("b's heartbeat is still in Redis after a graceful stop")
	}
	if err := rc.ZScore(context.Background(), redisstore.FleetIndexKey, b.fleet.id).Err(); err != redis.Nil {
		t.Errorf("b is still in the fleet index after a graceful stop: %v", err)
	}
	waitFor(t, pollTimeout, "a's view to list a alone", func() bool {
		v = a.fleetView(t)
		return slices.Equal(ids(v), []string{a.fleet.id}) && v.Stale == 0 && v.Reachable
	}, func() string { return viewJSON(v) })
}

// TestFleetStaleReplica: a replica that stopped publishing without leaving
// (its heartbeat written as a replica writes it, then never again) is
// listed as stale, is left out of the drift judgement and the revision
// count, and is dropped when its heartbeat expires.
func TestFleetStaleReplica(t *testing.T) {
	rs := testredis.Start(t)
	a := startReplica(t, fleetRepo(t, rs.Addr, "one"), "test-a")
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	gone := fleet.Heartbeat{ID: "crashed-replica", Host: "elsewhere", Version: "old", StartedAt: time.Now(), SentAt: time.Now(),
		IntervalMS: 300, Revision: fleet.Revision{Label: "content:0123456789ab", Content: "0123456789abcdef"}}
	value, err := gone.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := redisstore.NewFleet(rc, 2*time.Second).Publish(context.Background(), gone.ID, value, gone.TTL()); err != nil {
		t.Fatal(err)
	}
	var v fleet.View
	waitFor(t, pollTimeout, "the silent replica to be listed as stale", func() bool {
		v = a.fleetView(t)
		r := replicaOf(v, gone.ID)
		return r != nil && r.Stale
	}, func() string { return viewJSON(v) })
	if v.Drift || v.Stale != 1 || len(v.Revisions) != 1 || v.Revisions[0].Revision != revisionName(a) {
		t.Errorf("a stale replica counts in the drift judgement: %s", viewJSON(v))
	}
	waitFor(t, pollTimeout, "databus_fleet_stale_replicas 1", func() bool {
		return metricValue(a.metricFamilies(t), "databus_fleet_stale_replicas", nil) == 1
	})
	if d := metricValue(a.metricFamilies(t), "databus_fleet_drift", nil); d != 0 {
		t.Errorf("databus_fleet_drift = %v with a stale replica only, want 0", d)
	}
	waitFor(t, pollTimeout, "the silent replica to be dropped once its heartbeat expires", func() bool {
		v = a.fleetView(t)
		return replicaOf(v, gone.ID) == nil && v.Listed == 1
	}, func() string { return viewJSON(v) })
	if err := rc.ZScore(context.Background(), redisstore.FleetIndexKey, gone.ID).Err(); err != redis.Nil {
		t.Errorf("the expired replica is still in the index: %v", err)
	}
	waitFor(t, pollTimeout, "databus_fleet_stale_replicas 0", func() bool {
		return metricValue(a.metricFamilies(t), "databus_fleet_stale_replicas", nil) == 0
	})
}

// TestFleetLargeFleet: beyond fleet.MaxReplicas the view shows the most
// recent heartbeats and says how many are not shown; a fleet that large is
// read less often (fleet.ReadEvery), and still read: a newcomer on another
// revision shows up as drift.
func TestFleetLargeFleet(t *testing.T) {
	rs := testredis.Start(t)
	a := startReplica(t, fleetRepo(t, rs.Addr, "one"), "test-a")
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	st := redisstore.NewFleet(rc, 5*time.Second)
	snap := a.Current()
	publish := func(id string, rev fleet.Revision) {
		h := fleet.Heartbeat{ID: id, Host: "elsewhere", Version: "v", StartedAt: time.Now(), SentAt: time.Now(),
			IntervalMS: time.Hour.Milliseconds(), Revision: rev}
		value, err := h.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Publish(context.Background(), id, value, h.TTL()); err != nil {
			t.Fatal(err)
		}
	}
	const others = fleet.MaxReplicas + 44
	for i := 0; i < others; i++ {
		publish(fmt.Sprintf("other-%03d", i), fleet.RevisionOf(snap.Git, snap.Revision))
	}
	var v fleet.View
	waitFor(t, pollTimeout, "the view to list the fleet's newest heartbeats", func() bool {
		v = a.fleetView(t)
		return v.Listed == others+1
	}, func() string {
		return fmt.Sprintf("reachable %v (%s), listed %d, %d shown", v.Reachable, v.Reason, v.Listed, len(v.Replicas))
	})
	// The read returns fleet.MaxReplicas heartbeats; this replica is shown
	// whether or not it is among them.
	if n := len(v.Replicas); n < fleet.MaxReplicas || n > fleet.MaxReplicas+1 || n+v.NotShown != others+1 || v.Drift || v.Stale != 0 {
		t.Errorf("%d shown, %d not shown, drift %v, stale %d; want %d or %d shown of %d", n, v.NotShown, v.Drift, v.Stale,
			fleet.MaxReplicas, fleet.MaxReplicas+1, others+1)
	}
	publish("newcomer", fleet.Revision{Label: "content:0123456789ab", Content: "0123456789abcdef"})
	waitFor(t, pollTimeout, "the newcomer's revision to show as drift", func() bool {
		v = a.fleetView(t)
		return v.Drift && replicaOf(v, "newcomer") != nil
	}, func() string {
		return fmt.Sprintf("drift %v, reachable %v (%s), listed %d, %d shown, revisions %+v", v.Drift, v.Reachable, v.Reason, v.Listed, len(v.Replicas), v.Revisions)
	})
}

// TestFleetWithoutRedis: the view shows the one replica and says why there
// is no fleet; the metrics count it.
func TestFleetWithoutRedis(t *testing.T) {
	ts := startReplica(t, fleetRepo(t, "", "one"), "test-solo")
	v := ts.fleetView(t)
	if v.Shared || v.Reachable || !strings.Contains(v.Reason, "redis.addr") || len(v.Replicas) != 1 ||
		!v.Replicas[0].Self || v.Replicas[0].ID != ts.fleet.id || v.Replicas[0].Version != "test-solo" || v.Drift {
		t.Errorf("fleet view without Redis: %s", viewJSON(v))
	}
	rev := revisionName(ts)
	waitFor(t, pollTimeout, "databus_fleet_replicas to count this replica", func() bool {
		revs := fleetRevisions(t, ts)
		return len(revs) == 1 && revs[rev] == 1
	}, func() string { return fmt.Sprint(fleetRevisions(t, ts)) })
	mf := ts.metricFamilies(t)
	if h := metricValue(mf, "databus_fleet_heartbeat_last_success", nil); h != 0 {
		t.Errorf("databus_fleet_heartbeat_last_success = %v without Redis, want 0", h)
	}
	if e := metricValue(mf, "databus_store_errors_total", map[string]string{"store": "fleet", "backend": "redis"}); e > 0 {
		t.Errorf("fleet store errors without Redis: %v", e)
	}
}

// TestFleetRedisOutage: with Redis gone, requests are answered as before,
// the view says Redis is unreachable (logged once, counted every time), and
// the heartbeat resumes by itself when Redis is back (empty: no
// persistence).
func TestFleetRedisOutage(t *testing.T) {
	rs := testredis.Start(t)
	logs := &syncBuffer{}
	a := startReplica(t, fleetRepo(t, rs.Addr, "one"), "test-a", func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	b := startReplica(t, fleetRepo(t, rs.Addr, "one"), "test-b")
	both := []string{a.fleet.id, b.fleet.id}
	slices.Sort(both)
	var v fleet.View
	waitFor(t, pollTimeout, "a to see both replicas", func() bool {
		v = a.fleetView(t)
		return slices.Equal(ids(v), both)
	}, func() string { return viewJSON(v) })

	rs.Kill()
	waitFor(t, pollTimeout, "a's view to say Redis is unreachable", func() bool {
		v = a.fleetView(t)
		return !v.Reachable && strings.Contains(v.Reason, "Redis is unreachable")
	}, func() string { return viewJSON(v) })
	if !v.Shared || !slices.Equal(ids(v), []string{a.fleet.id}) || v.Drift {
		t.Errorf("fleet view during the outage: %s", viewJSON(v))
	}
	a.expectValue(t, "hello", "one") // requests do not wait for the heartbeat
	waitFor(t, pollTimeout, "three failed heartbeats counted", func() bool {
		return metricValue(a.metricFamilies(t), "databus_store_errors_total", map[string]string{"store": "fleet", "backend": "redis"}) >= 3
	})
	if h := metricValue(a.metricFamilies(t), "databus_fleet_heartbeat_last_success", nil); h != 0 {
		t.Errorf("databus_fleet_heartbeat_last_success = %v during the outage, want 0", h)
	}
	if n := logs.count("fleet heartbeat: redis unreachable"); n != 1 {
		t.Errorf("three failures within a minute logged %d times, want once", n)
	}

	rs.Restart()
	for _, ts := range []*testServer{a, b} {
		waitFor(t, pollTimeout, "the heartbeats to resume", func() bool {
			v = ts.fleetView(t)
			return v.Reachable && slices.Equal(ids(v), both) && !v.Drift
		}, func() string { return viewJSON(v) })
	}
	waitFor(t, pollTimeout, "the recovery to be logged", func() bool { return logs.count("fleet heartbeat: redis reachable again") == 1 })
	if h := metricValue(a.metricFamilies(t), "databus_fleet_heartbeat_last_success", nil); h != 1 {
		t.Errorf("databus_fleet_heartbeat_last_success = %v after recovery, want 1", h)
	}
}

// TestFleetBehindBranchHead: with git sync on, a replica that stays on an
// older commit because the branch head does not validate is flagged behind
// that head (drift), with the reason; when a valid head follows, it
// catches up and the drift clears.
func TestFleetBehindBranchHead(t *testing.T) {
	rs := testredis.Start(t)
	root, bare, seed := newRemote(t)
	seed.commit(map[string]string{
		"databus.yaml":    testSettings + "gitSync: {interval: 50ms}\nredis:\n  addr: " + rs.Addr + "\n  timeout: 2s\n",
		".gitignore":      "data/\n",
		"apis/hello.yaml": scriptAPI("hello", "online", "one"),
	}, "first")
	seed.push()
	checkout := filepath.Join(root, "checkout")
	if _, err := git.PlainClone(checkout, false, &git.CloneOptions{URL: bare}); err != nil {
		t.Fatal(err)
	}
	ts := startReplica(t, checkout, "test-git", func(o *Options) { o.GitSync = true })
	first := ts.Current().Git.Hash

	seed.commit(map[string]string{"apis/hello.yaml": strings.Replace(scriptAPI("hello", "online", "two"), "steps:", "stepz:", 1)}, "broken")
	seed.push()
	head, err := seed.r.Head()
	if err != nil {
		t.Fatal(err)
	}
	var v fleet.View
	waitFor(t, pollTimeout, "the replica to be flagged behind the refused head", func() bool {
		v = ts.fleetView(t)
		return v.Drift && v.Replicas[0].Behind == head.Hash().String()
	}, func() string { return viewJSON(v) })
	self := v.Replicas[0]
	if self.Revision.Commit != first || self.GitSync == nil || self.GitSync.OK || self.GitSync.RemoteHead != head.Hash().String() {
		t.Errorf("the replica behind: %+v", self)
	}
	if len(v.DriftReasons) != 1 || !strings.Contains(v.DriftReasons[0], "behind origin/master at "+head.Hash().String()[:7]) ||
		!strings.Contains(v.DriftReasons[0], "apis/hello.yaml") {
		t.Errorf("drift reasons: %q", v.DriftReasons)
	}
	waitFor(t, pollTimeout, "databus_fleet_drift 1", func() bool {
		return metricValue(ts.metricFamilies(t), "databus_fleet_drift", nil) == 1
	})

	seed.commit(map[string]string{"apis/hello.yaml": scriptAPI("hello", "online", "three")}, "fixed")
	seed.push()
	ts.expectValue(t, "hello", "three")
	waitFor(t, pollTimeout, "the drift to clear once the replica serves the head", func() bool {
		v = ts.fleetView(t)
		return !v.Drift && v.Replicas[0].Behind == "" && v.Replicas[0].GitSync.OK
	}, func() string { return viewJSON(v) })
	waitFor(t, pollTimeout, "databus_fleet_drift 0", func() bool {
		return metricValue(ts.metricFamilies(t), "databus_fleet_drift", nil) == 0
	})
}

// TestInstanceIDValid: the ids a replica gives itself are ones the others
// accept (fleet.ValidID), whatever its host name.
func TestInstanceIDValid(t *testing.T) {
	for _, host := range []string{"pod-7f9c", "host.example.com", strings.Repeat("h", 500), "naïve host/名前\n", ""} {
		if id := instanceID(host); !fleet.ValidID(id) {
			t.Errorf("instanceID(%q) = %q, which the fleet does not accept", host, id)
		}
	}
}
