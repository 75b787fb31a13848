package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/engine/fleet"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// fleetLogEvery is how often a failing heartbeat is logged at most: the
// first failure at once, then once a minute with the count of those not
// logged, and the recovery once. The state stays in the fleet view and the
// metrics.
const fleetLogEvery = time.Minute

// fleetState is this replica's part of the fleet: who it is, and the last
// exchange of heartbeats through Redis.
type fleetState struct {
	id, host, version string
	started           time.Time
	interval          time.Duration
	// kick asks the loop for a heartbeat now (after a reload or a git
	// sync), so the others see a new revision within a round trip;
	// kicks coalesce, and one heartbeat runs at a time.
	kick chan struct{}
	last atomic.Pointer[fleetRead]

	// The loop's own: heartbeats since the last read of the fleet, and
	// throttled logging of failures.
	unread   int
	failing  bool
	lastLog  time.Time
	unlogged int
}

// fleetRead is one exchange: shared says whether Redis was configured.
type fleetRead struct {
	fleet.Read
	shared bool
}

func newFleetState(opts Options) *fleetState {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	interval := opts.FleetInterval
	if interval <= 0 {
		interval = fleet.DefaultInterval
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	return &fleetState{id: instanceID(host), host: host, version: version, started: time.Now(),
		interval: interval, kick: make(chan struct{}, 1)}
}

// instanceID names this process for its life: the host name (a pod's
// name in Kubernetes), the process id, and a random suffix, so that a
// restarted container on the same host (pid 1 again) is another replica.
func instanceID(host string) string {
	var b strings.Builder
	for _, r := range host {
		if b.Len() >= 63 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	return fmt.Sprintf("%s-%d-%s", b.String(), os.Getpid(), hex.EncodeToString(suffix))
}

// kickFleet asks for a heartbeat now.
func (s *Server) kickFleet() {
	select {
	case s.fleet.kick <- struct{}{}:
	default:
	}
}

// Fleet is the fleet as this replica sees it: itself as it is now, and
// the others as the last heartbeat exchange read them (at most an interval
// ago). It makes no Redis call.
func (s *Server) Fleet() fleet.View {
	snap := s.Current()
	shared := snap != nil && snap.Fleet != nil
	var read fleet.Read
	if r := s.fleet.last.Load(); r != nil && r.shared == shared {
		read = r.Read
	}
	return fleet.Judge(s.selfHeartbeat(snap), shared, read, time.Now())
}

// selfHeartbeat is this replica's heartbeat while snap serves.
func (s *Server) selfHeartbeat(snap *snapshot.Snapshot) fleet.Heartbeat {
	f := s.fleet
	hb := fleet.Heartbeat{ID: f.id, Host: f.host, Version: f.version, StartedAt: f.started, SentAt: time.Now(),
		IntervalMS: f.interval.Milliseconds()}
	if snap != nil {
		hb.Revision = fleet.RevisionOf(snap.Git, snap.Revision)
	}
	if last := s.LastReload(); last != nil {
		hb.LastReload = &fleet.Reload{At: last.At, Reason: last.Reason, OK: last.OK, Error: last.Error,
			Errors: last.Errors[:min(len(last.Errors), fleet.MaxErrors)], ErrorCount: len(last.Errors)}
	}
	if s.opts.GitSync {
		g := &fleet.GitSync{}
		if snap != nil {
			g.Remote, g.Branch = snap.Settings.GitSync.Remote, snap.Settings.GitSync.Branch
		}
		if ls := s.LastSync(); ls != nil {
			g.At, g.Remote, g.Branch, g.RemoteHead, g.OK, g.Error = ls.At, ls.Remote, ls.Branch, ls.RemoteHead, ls.OK, ls.Error
		}
		hb.GitSync = g
	}
	return hb
}

// runFleet publishes this replica's heartbeat and reads the others' every
// interval (and after each reload or git sync) until ctx ends, then
// removes the heartbeat. Without Redis it only keeps the metrics of this
// replica current. It never touches a request: the admin view and the
// metrics read what it left.
func (s *Server) runFleet(ctx context.Context) {
	t := time.NewTicker(s.fleet.interval)
	defer t.Stop()
	if snap := s.Current(); snap != nil && snap.Fleet != nil {
		s.log.Info("fleet heartbeat on: publishing this replica's revision to redis and reading the others'",
			"id", s.fleet.id, "every", s.fleet.interval)
	}
	var used fleet.Store
	for {
		used = s.heartbeat(ctx, used)
		select {
		case <-ctx.Done():
			s.leaveFleet()
			return
		case <-t.C:
		case <-s.fleet.kick:
		}
	}
}

// heartbeat is one exchange; prev is the store of the one before, which
// this replica leaves when the Redis settings changed.
func (s *Server) heartbeat(ctx context.Context, prev fleet.Store) fleet.Store {
	snap := s.snap.Acquire() // holds the Redis client for the exchange
	if snap == nil {
		return prev
	}
	defer snap.Release()
	f := s.fleet
	self := s.selfHeartbeat(snap)
	st := snap.Fleet
	if prev != nil && prev != st {
		// The old client may be closed already: the heartbeat then
		// expires by itself.
		prev.Remove(ctx, f.id)
	}
	read := fleetRead{shared: st != nil}
	if st != nil {
		last := f.last.Load()
		// A large fleet is read less often than every heartbeat
		// (fleet.ReadEvery); a failure or new Redis settings read at once.
		f.unread++
		due := last == nil || !last.shared || last.Err != nil || st != prev ||
			time.Duration(f.unread)*f.interval >= fleet.ReadEvery(last.Listed, f.interval)
		read.Read = s.exchange(ctx, st, self, due)
		if due {
			f.unread = 0
		}
		if ctx.Err() != nil {
			return st // shutting down: not Redis's failure
		}
		s.logFleet(read.Err)
		if read.Err == nil && !due {
			// The heartbeat went out; the last read stands. fleet.Judge
			// judges staleness on the ages when it was read, so a fleet
			// read less often than the stale limit does not go stale
			// between reads.
			read.Read = last.Read
		}
	}
	if read.At.IsZero() {
		read.At = time.Now()
	}
	f.last.Store(&read)
	v := fleet.Judge(self, read.shared, read.Read, time.Now())
	revs := make([]metrics.FleetRevision, len(v.Revisions))
	for i, r := range v.Revisions {
		revs[i] = metrics.FleetRevision{Revision: r.Revision, Replicas: r.Replicas}
	}
	s.metrics.SetFleet(revs, v.Drift, v.Stale, read.shared && read.Err == nil)
	return st
}

// exchange publishes self and, with read, reads the fleet, each bounded by
// redis.timeout; a failure counts in databus_store_errors_total.
func (s *Server) exchange(ctx context.Context, st fleet.Store, self fleet.Heartbeat, read bool) (res fleet.Read) {
	defer func() {
		res.At = time.Now()
		if res.Err != nil && ctx.Err() == nil {
			s.metrics.StoreErrors.WithLabelValues("fleet", "redis").Inc()
		}
	}()
	value, err := self.Encode()
	if err != nil {
		return fleet.Read{Err: err}
	}
	if err := st.Publish(ctx, self.ID, value, self.TTL()); err != nil {
		return fleet.Read{Err: err}
	}
	if !read {
		return fleet.Read{}
	}
	entries, listed, err := st.List(ctx, fleet.MaxReplicas)
	return fleet.Read{Entries: entries, Listed: listed, Err: err}
}

// logFleet logs a failed exchange at most once per fleetLogEvery, and the
// first success after failures once.
func (s *Server) logFleet(err error) {
	f := s.fleet
	if err == nil {
		if f.failing {
			f.failing = false
			s.log.Info("fleet heartbeat: redis reachable again; publishing and reading the fleet", "notLogged", f.unlogged)
			f.unlogged = 0
		}
		return
	}
	if f.failing && time.Since(f.lastLog) < fleetLogEvery {
		f.unlogged++
		return
	}
	f.failing = true
	s.log.Warn("fleet heartbeat: redis unreachable; the fleet view shows this replica only, requests are not affected",
		"error", err, "notLogged", f.unlogged)
	f.lastLog, f.unlogged = time.Now(), 0
}

// leaveFleet removes this replica's heartbeat (graceful shutdown), bounded
// by redis.timeout, so the others stop listing it at their next read.
func (s *Server) leaveFleet() {
	snap := s.snap.Acquire()
	if snap == nil {
		return
	}
	defer snap.Release()
	if snap.Fleet == nil {
		return
	}
	if err := snap.Fleet.Remove(context.Background(), s.fleet.id); err != nil {
		s.log.Warn("fleet heartbeat: removing this replica's heartbeat failed; it expires by itself", "error", err,
			"after", fleet.ForgetAfterIntervals*s.fleet.interval)
	}
}
