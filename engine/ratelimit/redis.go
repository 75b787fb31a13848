package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/config"
)

// Redis keeps the counters in Redis, shared by every replica. Each
// algorithm is one Lua script: atomic, one round trip.
type Redis struct {
	c       redis.UniversalClient
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on c; every call is bounded by timeout.
func NewRedis(c redis.UniversalClient, timeout time.Duration) *Redis {
	return &Redis{c: c, timeout: timeout}
}

// fixedScript: the counter's expiry is set when it is first created
// (DESIGN.md 1.3); a counter left without one is given one.
var fixedScript = redis.NewScript(`
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}
`)

// slidingScript keeps {win, cur, prev} in a hash; ARGV: now ms, window ms,
// limit. A clock behind the stored window counts in the stored window.
var slidingScript = redis.NewScript(`
local now, w, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'win', 'cur', 'prev')
local win, cur, prev = tonumber(st[1]), tonumber(st[2]) or 0, tonumber(st[3]) or 0
local idx = math.floor(now / w)
if win == nil or (cur == 0 and prev == 0) then
  win = idx
elseif idx < win then
  idx = win
elseif idx == win + 1 then
  prev, cur, win = cur, 0, idx
elseif idx ~= win then
  prev, cur, win = 0, 0, idx
end
local elapsed = math.max(0, now - idx * w)
local allowed = 0
if prev * (w - elapsed) / w + cur + 1 <= limit then
  allowed = 1
  cur = cur + 1
end
redis.call('HSET', KEYS[1], 'win', win, 'cur', cur, 'prev', prev)
redis.call('PEXPIRE', KEYS[1], math.max(1, (idx + 2) * w + 1 - now))
return {allowed, prev, cur, elapsed}
`)

// bucketScript keeps {tokens, ts} in a hash; ARGV: now ms, window ms,
// limit. Tokens travel as strings to keep their fraction.
var bucketScript = redis.NewScript(`
local now, w, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(st[1]), tonumber(st[2])
if tokens == nil or ts == nil then
  tokens, ts = limit, now
end
local rate = limit / w
if now > ts then
  tokens = math.min(limit, tokens + (now - ts) * rate)
  ts = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
local t = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 'tokens', t, 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil((limit - tokens) / rate) + 1)
return {allowed, t}
`)

// Take implements Store.
func (r *Redis) Take(ctx context.Context, key string, p *Policy, at time.Time) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	w := p.Window.Milliseconds()
	now := at.UnixMilli()
	switch p.Algorithm {
	case config.AlgoSlidingWindow:
		v, err := slidingScript.Run(ctx, r.c, []string{key}, now, w, p.Limit).Int64Slice()
		if err != nil {
			return Decision{}, fmt.Errorf("redis rate limit: %w", err)
		}
		if len(v) != 4 {
			return Decision{}, fmt.Errorf("redis rate limit: unexpected reply %v", v)
		}
		return slidingDecision(p, v[0] == 1, v[1], v[2], v[3]), nil
	case config.AlgoTokenBucket:
		v, err := bucketScript.Run(ctx, r.c, []string{key}, now, w, p.Limit).Slice()
		if err != nil {
			return Decision{}, fmt.Errorf("redis rate limit: %w", err)
		}
		if len(v) != 2 {
			return Decision{}, fmt.Errorf("redis rate limit: unexpected reply %v", v)
		}
		allowed, _ := v[0].(int64)
		ts, _ := v[1].(string)
		tokens, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			return Decision{}, fmt.Errorf("redis rate limit: bad tokens %q", ts)
		}
		return bucketDecision(p, allowed == 1, tokens), nil
	default:
		v, err := fixedScript.Run(ctx, r.c, []string{key}, w).Int64Slice()
		if err != nil {
			return Decision{}, fmt.Errorf("redis rate limit: %w", err)
		}
		if len(v) != 2 {
			return Decision{}, fmt.Errorf("redis rate limit: unexpected reply %v", v)
		}
		return fixedDecision(p, v[0], v[1]), nil
	}
}
