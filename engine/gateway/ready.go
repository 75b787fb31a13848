package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/databus-gateway/databus/engine/snapshot"
)

// ReadyRedisEvery is how often /readyz asks Redis at most: probes in
// between (any number of them, on any listener) share the last answer, so
// that nobody can turn the unauthenticated health listener into a stream of
// Redis calls.
const ReadyRedisEvery = time.Second

// Check is one condition of readiness as /readyz shows it.
type Check struct {
	OK bool `json:"ok"`
	// Required: a failure makes the gateway unready. Redis is required
	// only with redis.failOpen: false; with the default (true) a Redis
	// outage shows here but the replica keeps serving (nonces answer 503,
	// rate limits let requests through).
	Required bool   `json:"required"`
	Error    string `json:"error,omitempty"`
}

// storePing runs a Snapshot's store check at most once per ReadyRedisEvery;
// concurrent probes wait for the one check in flight.
type storePing struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

func (p *storePing) check(ping func(context.Context) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < ReadyRedisEvery {
		return p.err
	}
	// Bounded by redis.timeout inside ping; not by the probe's request,
	// whose answer the next probes share.
	p.err = ping(context.Background())
	p.at = time.Now()
	return p.err
}

// readiness evaluates the checks of /readyz for snap (nil: none serving).
func (s *Server) readiness(snap *snapshot.Snapshot) (ready bool, checks map[string]Check) {
	checks = make(map[string]Check, 3)
	serving := Check{OK: snap != nil && s.ready.Load(), Required: true}
	if !serving.OK {
		serving.Error = "not serving: starting or shutting down"
	}
	checks["snapshot"] = serving
	st := Check{OK: true, Required: true}
	if s.db == nil {
		st = Check{Required: true, Error: "storage is not open"}
	} else if err := s.db.Check(); err != nil {
		st = Check{Required: true, Error: err.Error()}
	}
	checks["storage"] = st
	if snap != nil && snap.StorePing != nil {
		rc := Check{OK: true, Required: !snap.FailOpen}
		if err := s.storePing.check(snap.StorePing); err != nil {
			rc.OK, rc.Error = false, err.Error()
		}
		checks["redis"] = rc
	}
	ready = true
	for _, c := range checks {
		if c.Required && !c.OK {
			ready = false
		}
	}
	return ready, checks
}
