package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/internal/testredis"
)

// TestFleetStore runs the heartbeats on a private redis-server (the fleet's
// keys are fixed, so no other test may share them).
func TestFleetStore(t *testing.T) {
	rs := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	ctx := context.Background()
	st := redisstore.NewFleet(c, 2*time.Second)
	ttl := time.Minute

	for i, id := range []string{"r1", "r2", "r3"} {
		if err := st.Publish(ctx, id, []byte(`{"id":"`+id+`"}`), ttl); err != nil {
			t.Fatal(err)
		}
		// Scores are milliseconds of expiry: the next publish expires later.
		waitUntil(t, "a new millisecond", func() bool { return i == 2 || time.Now().Add(ttl).UnixMilli() > mustScore(t, c, id) })
	}
	entries, listed, err := st.List(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if listed != 3 || len(entries) != 2 || entries[0].ID != "r3" || entries[1].ID != "r2" {
		t.Fatalf("List(2): %d listed, %+v; want r3, r2 of 3", listed, entries)
	}
	if e := entries[0]; string(e.Value) != `{"id":"r3"}` || e.Remaining <= 0 || e.Remaining > ttl {
		t.Errorf("entry %+v", e)
	}
	if d := c.PTTL(ctx, redisstore.FleetIndexKey).Val(); d <= ttl || d > ttl+redisstore.FleetClockSkew {
		t.Errorf("the index expires in %v, want within a TTL and the clock skew", d)
	}

	// A graceful stop removes the value and the index entry.
	if err := st.Remove(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, redisstore.FleetReplicaKey+"r2").Val() != 0 || c.ZScore(ctx, redisstore.FleetIndexKey, "r2").Err() != redis.Nil {
		t.Errorf("r2 is left after Remove")
	}

	// An expired heartbeat (a replica that stopped without leaving) is
	// not returned, and the read drops it from the index.
	if err := st.Publish(ctx, "short", []byte(`{}`), 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the short heartbeat to expire", func() bool { return c.Exists(ctx, redisstore.FleetReplicaKey+"short").Val() == 0 })
	entries, listed, err = st.List(ctx, fleet.MaxReplicas)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(entries); listed != 2 || !slices.Equal(got, []string{"r1", "r3"}) {
		t.Errorf("after expiry: %d listed, %v; want r1, r3", listed, got)
	}
	if c.ZScore(ctx, redisstore.FleetIndexKey, "short").Err() != redis.Nil {
		t.Errorf("the expired heartbeat is still in the index")
	}

	// A value over the bound is read only as far as the bound and one byte.
	c.Set(ctx, redisstore.FleetReplicaKey+"r1", strings.Repeat("x", 1<<20), ttl)
	entries, _, _ = st.List(ctx, fleet.MaxReplicas)
	for _, e := range entries {
		if e.ID == "r1" && len(e.Value) != fleet.MaxHeartbeatBytes+1 {
			t.Errorf("read %d bytes of a 1 MiB value, want %d", len(e.Value), fleet.MaxHeartbeatBytes+1)
		}
	}

	// An id whose heartbeat expired more than the clock skew ago is
	// trimmed by the next publish, however many ids a read passes over;
	// one that expired just now is left to the reads.
	c.ZAdd(ctx, redisstore.FleetIndexKey,
		redis.Z{Score: float64(time.Now().Add(-redisstore.FleetClockSkew - time.Second).UnixMilli()), Member: "ancient"},
		redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: "recent"})
	if err := st.Publish(ctx, "r3", []byte(`{}`), ttl); err != nil {
		t.Fatal(err)
	}
	if c.ZScore(ctx, redisstore.FleetIndexKey, "ancient").Err() != redis.Nil {
		t.Errorf("an id expired beyond the clock skew is still in the index")
	}
	if c.ZScore(ctx, redisstore.FleetIndexKey, "recent").Err() != nil {
		t.Errorf("an id expired within the clock skew was trimmed")
	}

	// A replica of a longer interval is not trimmed by one of a shorter.
	slowAt := time.Now()
	if err := st.Publish(ctx, "slow", []byte(`{}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "more than two of the short TTLs to pass", func() bool { return time.Since(slowAt) > 30*time.Millisecond })
	if err := st.Publish(ctx, "fast", []byte(`{}`), 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c.ZScore(ctx, redisstore.FleetIndexKey, "slow").Err() != nil {
		t.Errorf("a short heartbeat's publish trimmed a long one")
	}
}

// TestFleetStoreDown: every call fails within the timeout when Redis is
// gone.
func TestFleetStoreDown(t *testing.T) {
	rs := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	defer c.Close()
	st := redisstore.NewFleet(c, time.Second)
	rs.Kill()
	ctx := context.Background()
	if err := st.Publish(ctx, "r1", []byte(`{}`), time.Minute); err == nil {
		t.Error("Publish succeeded with Redis down")
	}
	if _, _, err := st.List(ctx, 10); err == nil {
		t.Error("List succeeded with Redis down")
	}
	if err := st.Remove(ctx, "r1"); err == nil {
		t.Error("Remove succeeded with Redis down")
	}
}

func idsOf(entries []fleet.Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

func mustScore(t *testing.T, c *redis.Client, id string) int64 {
	s, err := c.ZScore(context.Background(), redisstore.FleetIndexKey, id).Result()
	if err != nil {
		t.Fatal(err)
	}
	return int64(s)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// BenchmarkFleetHeartbeat is one replica's heartbeat in a fleet of n: a
// publish of a typical heartbeat and a read of the whole fleet, against a
// real redis-server on loopback.
func BenchmarkFleetHeartbeat(b *testing.B) {
	rs := testredis.Start(b)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	ctx := context.Background()
	st := redisstore.NewFleet(c, 2*time.Second)
	for _, n := range []int{3, 32, fleet.MaxReplicas} {
		c.FlushAll(ctx)
		h := fleet.Heartbeat{Host: "databus-7d9f8c6b5-x2x9z", Version: "v1.4.0 (3f2a9c1e8b7d)", StartedAt: time.Now(), SentAt: time.Now(),
			IntervalMS: 5000, Revision: fleet.Revision{Label: "3f2a9c1", Content: strings.Repeat("ab", 32), Commit: strings.Repeat("3f2a9c1e", 5), Branch: "main"},
			LastReload: &fleet.Reload{At: time.Now(), Reason: "git sync 3f2a9c1e8b7d", OK: true},
			GitSync:    &fleet.GitSync{At: time.Now(), Remote: "origin", Branch: "main", RemoteHead: strings.Repeat("3f2a9c1e", 5), OK: true}}
		for i := 0; i < n; i++ {
			h.ID = fmt.Sprintf("databus-7d9f8c6b5-x%03d-1-a1b2c3", i)
			v, _ := h.Encode()
			if err := st.Publish(ctx, h.ID, v, h.TTL()); err != nil {
				b.Fatal(err)
			}
		}
		value, _ := h.Encode()
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := st.Publish(ctx, h.ID, value, h.TTL()); err != nil {
					b.Fatal(err)
				}
				entries, _, err := st.List(ctx, fleet.MaxReplicas)
				if err != nil || len(entries) != n {
					b.Fatalf("%d entries, %v", len(entries), err)
				}
			}
			b.ReportMetric(float64(len(value)), "heartbeat-bytes")
		})
	}
}

// TestFleetStoreHostileIDs: ids in the index that no replica would have
// (over fleet.MaxIDBytes, or outside its character set), as someone with
// write access to Redis could add, are not read; they count as listed.
func TestFleetStoreHostileIDs(t *testing.T) {
	rs := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer c.Close()
	ctx := context.Background()
	st := redisstore.NewFleet(c, 5*time.Second)
	if err := st.Publish(ctx, "pod-1-a1b2c3", []byte(`{}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	long, odd := strings.Repeat("x", fleet.MaxIDBytes+1), "evil id\n"
	for _, id := range []string{long, odd} {
		c.Set(ctx, redisstore.FleetReplicaKey+id, `{}`, time.Minute)
		c.ZAdd(ctx, redisstore.FleetIndexKey, redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: id})
	}
	entries, listed, err := st.List(ctx, fleet.MaxReplicas)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(entries); listed != 3 || !slices.Equal(got, []string{"pod-1-a1b2c3"}) {
		t.Errorf("%d listed, read %q; want 3 listed, pod-1-a1b2c3 read", listed, got)
	}
}
