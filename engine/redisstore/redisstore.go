// Package redisstore connects the replicas of a gateway through Redis: it
// builds the client from databus.yaml's redis settings (one server, a
// Cluster or Sentinels, through go-redis's universal options) and holds the
// nonce store they share.
//
// The package changes no process-wide state: go-redis's logger is the
// process's to set (cmd/databus quiets it).
package redisstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/security"
)

// NewClient builds a client from the settings. Every call is bounded by the
// settings' timeout and never retried inside the client: a Redis outage
// must cost a request milliseconds, not seconds. It dials nothing yet.
func NewClient(s config.RedisSettings, repoDir string) (redis.UniversalClient, error) {
	o, err := ClientOptions(s, repoDir)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}

// ClientOptions resolves the settings (the password's secret reference
// included) into go-redis options, without building a client: a dry build
// checks with it what a serving one would refuse.
func ClientOptions(s config.RedisSettings, repoDir string) (*redis.UniversalOptions, error) {
	addrs := s.Addrs
	if s.Addr != "" {
		addrs = []string{s.Addr}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("redis: no address")
	}
	timeout := s.Timeout.D()
	if timeout <= 0 {
		timeout = 200 * time.Millisecond
	}
	o := &redis.UniversalOptions{
		Addrs:        addrs,
		MasterName:   s.MasterName,
		Username:     s.Username,
		DB:           s.DB,
		DialTimeout:  timeout,
		ReadTimeout:  timeout,
		WriteTimeout: timeout,
		PoolTimeout:  timeout,
		MaxRetries:   -1, // no retries: fail fast, the caller decides
		// A request's deadline or cancellation ends the wait for Redis
		// (go-redis ignores context deadlines without it).
		ContextTimeoutEnabled: true,
		ConnMaxIdleTime:       5 * time.Minute,
	}
	if s.Password != nil {
		pw, err := s.Password.Resolve(repoDir)
		if err != nil {
			return nil, fmt.Errorf("redis.password: %w", err)
		}
		o.Password = string(pw)
	}
	if s.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o, nil
}

// Pinger returns a check that c answers a PING within timeout (readiness).
func Pinger(c redis.UniversalClient, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	}
}

// Nonces is the NonceStore shared by every replica: SET key 1 NX PX ttl.
type Nonces struct {
	c       redis.UniversalClient
	timeout time.Duration
}

var _ security.NonceStore = (*Nonces)(nil)

// NonceKeyPrefix is put in front of every nonce key.
const NonceKeyPrefix = "databus:nonce:"

// NewNonces returns the Redis nonce store on c.
func NewNonces(c redis.UniversalClient, timeout time.Duration) *Nonces {
	return &Nonces{c: c, timeout: timeout}
}

// Use implements security.NonceStore.
func (n *Nonces) Use(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	ok, err := n.c.SetNX(ctx, NonceKeyPrefix+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis nonce store: %w", err)
	}
	return ok, nil
}
