package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/fleet"
)

// The fleet's keys: one value per replica, which expires by itself, and an
// index of the replicas (a sorted set) scored by when their heartbeat
// expires, so that a read never SCANs the keyspace and the newest
// heartbeats come first.
const (
	FleetIndexKey   = "databus:fleet:replicas"
	FleetReplicaKey = "databus:fleet:replica:" // + the replica's id
	// FleetClockSkew is how far the replicas' clocks may disagree: an id
	// is trimmed from the index by another replica's publish only this
	// long after its heartbeat expired by the publisher's clock (reads
	// drop ids whose heartbeat is gone whatever the clocks), and the
	// index itself expires this long after the last heartbeat.
	FleetClockSkew = fleet.ClockSkew
)

// Fleet is the fleet's heartbeats in Redis (fleet.Store). Every call is
// bounded by the timeout; a publish is one round trip, a read two (three
// when it drops ids whose heartbeat expired).
type Fleet struct {
	c       redis.UniversalClient
	timeout time.Duration
}

var _ fleet.Store = (*Fleet)(nil)

// NewFleet returns the heartbeats on c; timeout bounds each call (0: 1s).
func NewFleet(c redis.UniversalClient, timeout time.Duration) *Fleet {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Fleet{c: c, timeout: timeout}
}

// Publish implements fleet.Store, in one round trip: SET the value with
// its expiry, ZADD the id scored by that expiry, trim the ids whose
// heartbeat expired more than FleetClockSkew ago (a replica trimmed by a
// skewed clock adds itself back at its next heartbeat), and keep the index
// alive while someone publishes.
func (f *Fleet) Publish(ctx context.Context, id string, value []byte, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	now := time.Now()
	p := f.c.Pipeline()
	p.Set(ctx, FleetReplicaKey+id, value, ttl)
	p.ZAdd(ctx, FleetIndexKey, redis.Z{Score: float64(now.Add(ttl).UnixMilli()), Member: id})
	p.ZRemRangeByScore(ctx, FleetIndexKey, "-inf", "("+strconv.FormatInt(now.Add(-FleetClockSkew).UnixMilli(), 10))
	p.PExpire(ctx, FleetIndexKey, ttl+FleetClockSkew)
	_, err := p.Exec(ctx)
	return err
}

// Remove implements fleet.Store.
func (f *Fleet) Remove(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	p := f.c.Pipeline()
	p.Del(ctx, FleetReplicaKey+id)
	p.ZRem(ctx, FleetIndexKey, id)
	_, err := p.Exec(ctx)
	return err
}

// List implements fleet.Store: the limit ids of the index whose heartbeats
// expire last (the newest, for replicas of one interval), then each
// one's value (at most fleet.MaxHeartbeatBytes+1 bytes of it: GETRANGE)
// and remaining expiry. Ids whose value expired are dropped from the index;
// ids no replica would have (fleet.ValidID) are skipped, their values not
// read.
func (f *Fleet) List(ctx context.Context, limit int) ([]fleet.Entry, int, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	p := f.c.Pipeline()
	card := p.ZCard(ctx, FleetIndexKey)
	ids := p.ZRevRange(ctx, FleetIndexKey, 0, int64(limit)-1)
	if _, err := p.Exec(ctx); err != nil {
		return nil, 0, err
	}
	if len(ids.Val()) == 0 {
		return nil, int(card.Val()), nil
	}
	type pair struct {
		val *redis.StringCmd
		ttl *redis.DurationCmd
	}
	valid := make([]string, 0, len(ids.Val()))
	for _, id := range ids.Val() {
		if fleet.ValidID(id) {
			valid = append(valid, id)
		}
	}
	listed := int(card.Val())
	if len(valid) == 0 {
		return nil, listed, nil
	}
	cmds := make([]pair, len(valid))
	p = f.c.Pipeline()
	for i, id := range valid {
		cmds[i] = pair{p.GetRange(ctx, FleetReplicaKey+id, 0, fleet.MaxHeartbeatBytes), p.PTTL(ctx, FleetReplicaKey+id)}
	}
	if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, err
	}
	entries := make([]fleet.Entry, 0, len(cmds))
	var gone []any
	for i, c := range cmds {
		// PTTL answers -2 for a key that does not exist (expired), -1 for
		// one without expiry (not ours: left alone, shown as read).
		if c.ttl.Val() == -2 {
			gone = append(gone, valid[i])
			continue
		}
		entries = append(entries, fleet.Entry{ID: valid[i], Value: []byte(c.val.Val()), Remaining: max0(c.ttl.Val())})
	}
	if len(gone) > 0 {
		if err := f.c.ZRem(ctx, FleetIndexKey, gone...).Err(); err == nil {
			listed -= len(gone)
		}
	}
	return entries, listed, nil
}

func max0(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d
}
