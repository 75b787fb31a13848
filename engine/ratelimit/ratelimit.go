// Package ratelimit enforces the RateLimitPolicy of DESIGN.md section 1.3:
// fixed-window, sliding-window and token-bucket limits, counted per key in
// an embedded store (one node) or in Redis (shared by every replica). Each
// algorithm's decision is computed by the same Go functions for both
// stores; the Redis store only keeps the state atomically.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/config"
)

// KeyPrefix is put in front of every rendered key in the stores.
const KeyPrefix = "databus:api:rl:"

// Policy is a compiled RateLimitPolicy.
type Policy struct {
	Name      string
	Algorithm string
	Limit     int64
	Window    time.Duration
	key       []keyPart
}

type keyPart struct {
	lit     string
	varName string // "" for a literal part; "header.NAME" for a header
}

// Compile builds a policy from its definition (already validated).
func Compile(p *config.RateLimitPolicy) (*Policy, error) {
	if err := config.CheckKeyTemplate(p.KeyTemplate); err != nil {
		return nil, fmt.Errorf("policy %s: keyTemplate: %w", p.Name, err)
	}
	out := &Policy{Name: p.Name, Algorithm: p.Algorithm, Limit: int64(p.Limit), Window: time.Duration(p.WindowSeconds) * time.Second}
	t := p.KeyTemplate
	for t != "" {
		i := strings.Index(t, "${")
		if i < 0 {
			out.key = append(out.key, keyPart{lit: t})
			break
		}
		if i > 0 {
			out.key = append(out.key, keyPart{lit: t[:i]})
		}
		j := strings.IndexByte(t[i:], '}')
		out.key = append(out.key, keyPart{varName: t[i+2 : i+j]})
		t = t[i+j+1:]
	}
	return out, nil
}

// Vars are the values a key template can use.
type Vars struct {
	APICode, Version, AppID, TenantID, ClientIP string
	Header                                      http.Header
}

// Key renders the policy's key for one request, with the store prefix.
func (p *Policy) Key(v *Vars) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(KeyPrefix)
	for _, part := range p.key {
		switch part.varName {
		case "":
			b.WriteString(part.lit)
		case "apiCode":
			b.WriteString(v.APICode)
		case "version":
			b.WriteString(v.Version)
		case "appId":
			b.WriteString(v.AppID)
		case "tenantId":
			b.WriteString(v.TenantID)
		case "clientIp":
			b.WriteString(v.ClientIP)
		default:
			b.WriteString(v.Header.Get(strings.TrimPrefix(part.varName, "header.")))
		}
	}
	// The algorithms keep differently shaped state: keep them apart should
	// two policies render the same key. fixed-window keeps DESIGN.md's key.
	switch p.Algorithm {
	case config.AlgoSlidingWindow:
		b.WriteString(":sw")
	case config.AlgoTokenBucket:
		b.WriteString(":tb")
	}
	return b.String()
}

// Decision is the outcome of one Take.
type Decision struct {
	Allowed    bool
	Limit      int64
	Remaining  int64         // requests left now
	Reset      time.Duration // until the limit is fully available again
	RetryAfter time.Duration // when refused: until a request can pass
	// Evicted is how many live keys the store dropped to make room for
	// this one (the embedded store when full; Redis evicts on its own).
	Evicted int
}

// Store counts requests per key.
type Store interface {
	// Take counts one request for key under p at now.
	Take(ctx context.Context, key string, p *Policy, now time.Time) (Decision, error)
}

// fixedDecision: count is the counter after this request, resetMs the time
// left in the window.
func fixedDecision(p *Policy, count, resetMs int64) Decision {
	d := Decision{Allowed: count <= p.Limit, Limit: p.Limit, Remaining: max(0, p.Limit-count), Reset: ms(resetMs)}
	if !d.Allowed {
		d.RetryAfter = d.Reset
	}
	return d
}

// slidingEstimate is the sliding-window counter: the previous window's
// count weighted by how much of it still overlaps, plus the current count.
func slidingEstimate(prev, cur, elapsedMs, windowMs int64) float64 {
	return float64(prev)*float64(windowMs-elapsedMs)/float64(windowMs) + float64(cur)
}

// slidingDecision: prev and cur are the counts after this request (cur
// includes it when allowed), elapsedMs the time into the current window.
func slidingDecision(p *Policy, allowed bool, prev, cur, elapsedMs int64) Decision {
	w := p.Window.Milliseconds()
	est := slidingEstimate(prev, cur, elapsedMs, w)
	d := Decision{Allowed: allowed, Limit: p.Limit, Remaining: max(0, int64(math.Floor(float64(p.Limit)-est)))}
	switch {
	case cur > 0: // this window's requests count until the end of the next
		d.Reset = ms(2*w - elapsedMs)
	case prev > 0: // the previous window stops counting when this one ends
		d.Reset = ms(w - elapsedMs)
	}
	if !allowed {
		d.RetryAfter = slidingRetry(p.Limit, prev, cur, elapsedMs, w)
	}
	return d
}

// slidingRetry is how long until the estimate leaves room for one request.
func slidingRetry(limit, prev, cur, e, w int64) time.Duration {
	need := float64(limit - 1) // the estimate must drop to at most limit-1
	if float64(cur) <= need {
		if prev == 0 {
			return 0
		}
		// prev*(w-e')/w + cur <= need  =>  e' >= w*(1-(need-cur)/prev)
		at := float64(w) * (1 - (need-float64(cur))/float64(prev))
		return ms(int64(math.Ceil(at)) - e)
	}
	// Wait for the next window, where cur becomes the previous count.
	if cur == 0 {
		return ms(w - e)
	}
	at := float64(w) * (1 - need/float64(cur))
	return ms(w - e + int64(math.Ceil(at)))
}

// bucketDecision: tokens left after this request.
func bucketDecision(p *Policy, allowed bool, tokens float64) Decision {
	rate := float64(p.Limit) / float64(p.Window.Milliseconds()) // tokens per ms
	d := Decision{Allowed: allowed, Limit: p.Limit, Remaining: int64(math.Floor(tokens)), Reset: ms(int64(math.Ceil((float64(p.Limit) - tokens) / rate)))}
	if !allowed {
		d.RetryAfter = ms(int64(math.Ceil((1 - tokens) / rate)))
	}
	return d
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
