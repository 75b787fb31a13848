package portal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/ratelimit"
)

// Messages of the rate-limit stage.
const (
	MsgRateLimitUnavailable = "限流校验暂不可用"
	ReasonRateLimit         = "rate_limit"
	ReasonStore             = "store_unavailable"
)

// storeTimeout bounds a store call even when the store has no timeout of
// its own.
const storeTimeout = time.Second

// rateLimit counts the request against the API's policy. A store that
// cannot answer lets the request through or refuses it (503), as
// redis.failOpen says.
func (h *Handler) rateLimit(c *Call) *fault {
	p := c.Route.Policy
	if p == nil || !*c.Snap.Settings.APIPortal.EnableRateLimit {
		return nil
	}
	store := c.Snap.Limits
	if store == nil {
		store = h.limits
	}
	appID := ""
	if c.Cred != nil {
		appID = c.Cred.AppID
	}
	key := p.Key(&ratelimit.Vars{APICode: c.Route.API.Code, Version: c.Route.API.Version, AppID: appID,
		TenantID: c.TenantID, ClientIP: c.ClientIP.String(), Header: c.R.Header})
	ctx, cancel := context.WithTimeout(c.R.Context(), storeTimeout)
	started := time.Now()
	d, err := store.Take(ctx, key, p, h.now())
	cancel()
	if err != nil {
		h.faults.report(h, "ratelimit", c.Snap.StoreBackend, err)
		if c.Snap.FailOpen {
			h.countRateLimit(p.Name, "fail_open")
			return nil
		}
		h.countRateLimit(p.Name, "fail_closed")
		c.chainResult("rateLimit", started, fmt.Sprintf("policy %s: store unavailable, refused (failOpen: false)", p.Name))
		return refuse(ReasonStore, http.StatusServiceUnavailable, MsgRateLimitUnavailable)
	}
	h.faults.ok(h, "ratelimit")
	if d.Evicted > 0 && h.metrics != nil {
		h.metrics.RateLimitEvictions.Add(float64(d.Evicted))
	}
	hd := c.W.Header()
	hd.Set("X-RateLimit-Limit", strconv.FormatInt(d.Limit, 10))
	hd.Set("X-RateLimit-Remaining", strconv.FormatInt(d.Remaining, 10))
	hd.Set("X-RateLimit-Reset", strconv.FormatInt(ceilSeconds(d.Reset), 10))
	if !d.Allowed {
		hd.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(d.RetryAfter)), 10))
		h.countRateLimit(p.Name, "rejected")
		c.chainResult("rateLimit", started, fmt.Sprintf("policy %s (%s, %d per %s): limit reached", p.Name, p.Algorithm, p.Limit, p.Window))
		return refuse(ReasonRateLimit, http.StatusTooManyRequests, MsgRateLimited)
	}
	h.countRateLimit(p.Name, "allowed")
	return nil
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func (h *Handler) countRateLimit(policy, outcome string) {
	if h.metrics != nil {
		h.metrics.RateLimit.WithLabelValues(policy, outcome).Inc()
	}
}

// chainResult records what a stage of the chain decided, beside the flow's
// step results, for the access log.
func (c *Call) chainResult(id string, started time.Time, errMsg string) {
	c.Chain = append(c.Chain, flow.StepResult{ID: id, Type: "policy", Elapsed: time.Since(started), Error: errMsg})
}

// storeFaults logs a failing store once per interval (with how many
// failures it kept quiet about), and once more when it recovers.
type storeFaults struct {
	mu       sync.Mutex
	byStore  map[string]*faultState
	interval time.Duration
}

type faultState struct {
	failing    atomic.Bool
	last       time.Time
	suppressed int
}

func (f *storeFaults) state(store string) *faultState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byStore == nil {
		f.byStore = map[string]*faultState{}
	}
	s := f.byStore[store]
	if s == nil {
		s = &faultState{}
		f.byStore[store] = s
	}
	return s
}

func (f *storeFaults) report(h *Handler, store, backend string, err error) {
	if h.metrics != nil {
		h.metrics.StoreErrors.WithLabelValues(store, backend).Inc()
	}
	if due, suppressed := f.due(store); due {
		h.log.Error("store unavailable", "store", store, "backend", backend, "error", err, "failuresNotLogged", suppressed)
	}
}

// due marks store failing and reports whether the failure is to be logged
// now, with how many were not logged since the last time.
func (f *storeFaults) due(store string) (bool, int) {
	s := f.state(store)
	s.failing.Store(true)
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(s.last) < f.interval {
		s.suppressed++
		return false, 0
	}
	suppressed := s.suppressed
	s.last, s.suppressed = now, 0
	return true, suppressed
}

func (f *storeFaults) ok(h *Handler, store string) {
	if f.recovered(store) {
		h.log.Info("store available again", "store", store)
	}
}

// recovered marks store working and reports whether it was failing.
func (f *storeFaults) recovered(store string) bool {
	f.mu.Lock()
	s := f.byStore[store]
	f.mu.Unlock()
	return s != nil && s.failing.Load() && s.failing.CompareAndSwap(true, false)
}
