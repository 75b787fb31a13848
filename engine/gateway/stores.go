package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/ratelimit"
	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/security"
)

// stores are the nonce and rate-limit stores of one redis configuration:
// the embedded ones without Redis, the shared ones with it. They outlive
// reloads; a change of the redis settings builds new ones.
type stores struct {
	nonces  security.NonceStore
	limits  ratelimit.Store
	backend string
	client  redis.UniversalClient // nil for the embedded stores
	// registry is the shared copy of the service registry; nil without
	// Redis (the registry then lives in the bbolt file alone).
	registry *redisstore.Registry
}

// registryTables is st's shared registry copy as the registry takes it
// (a nil interface without Redis).
func (st *stores) registryTables() registry.Tables {
	if st == nil || st.registry == nil {
		return nil
	}
	return st.registry
}

type storeSet struct {
	mu     sync.Mutex
	memory *stores
	cur    *stores
	curKey string
}

// storesFor returns the stores for the settings, building a Redis client
// when the redis settings changed.
func (s *Server) storesFor(st *config.Settings, dir string) (*stores, error) {
	s.stores.mu.Lock()
	defer s.stores.mu.Unlock()
	r := st.Redis
	if !r.Enabled() {
		if s.stores.memory == nil {
			s.stores.memory = &stores{nonces: security.NewMemoryNonces(0), limits: ratelimit.NewMemory(0), backend: "memory"}
		}
		s.swapStores(s.stores.memory, "")
		return s.stores.memory, nil
	}
	key := redisKey(r)
	if s.stores.cur != nil && s.stores.curKey == key {
		return s.stores.cur, nil
	}
	c, err := redisstore.NewClient(r, dir)
	if err != nil {
		return nil, err
	}
	timeout := r.Timeout.D()
	next := &stores{nonces: redisstore.NewNonces(c, timeout), limits: ratelimit.NewRedis(c, timeout), backend: "redis", client: c,
		registry: redisstore.NewRegistry(c, timeout)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	if err := c.Ping(ctx).Err(); err != nil {
		s.log.Warn("redis does not answer yet: nonces are refused (503) and rate limits fail "+failMode(*r.FailOpen)+" until it does", "error", err)
	} else {
		s.log.Info("shared stores on redis", "addrs", strings.Join(append([]string{r.Addr}, r.Addrs...), " "))
	}
	cancel()
	s.swapStores(next, key)
	return next, nil
}

func failMode(open bool) string {
	if open {
		return "open"
	}
	return "closed"
}

// swapStores makes next current; an old Redis client is closed once the
// requests of the Snapshots that used it had time to finish.
func (s *Server) swapStores(next *stores, key string) {
	old := s.stores.cur
	s.stores.cur, s.stores.curKey = next, key
	if reg := s.reg.Load(); reg != nil && old != next {
		reg.SetShared(next.registryTables())
	}
	if old != nil && old != next && old.client != nil {
		c := old.client
		time.AfterFunc(time.Minute, func() { c.Close() })
	}
}

// closeStores closes the Redis client at shutdown.
func (s *Server) closeStores() {
	s.stores.mu.Lock()
	defer s.stores.mu.Unlock()
	if s.stores.cur != nil && s.stores.cur.client != nil {
		s.stores.cur.client.Close()
	}
}

// redisKey identifies a redis configuration (the password by reference).
func redisKey(r config.RedisSettings) string {
	pw := ""
	if r.Password != nil {
		pw = r.Password.Ref
	}
	return fmt.Sprintf("%s|%v|%s|%s|%s|%d|%v|%s", r.Addr, r.Addrs, r.MasterName, r.Username, pw, r.DB, r.TLS, r.Timeout.D())
}
