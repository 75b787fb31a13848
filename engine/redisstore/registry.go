package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RegistryKeyPrefix is put in front of the registry's hashes: one hash per
// table (servers, services), a field per entry.
const RegistryKeyPrefix = "databus:registry:"

// Registry is the registry's shared copy in Redis, which every replica
// reads and writes.
type Registry struct {
	c       redis.UniversalClient
	timeout time.Duration
}

// NewRegistry returns the registry tables on c; timeout bounds each call
// (0: 1s).
func NewRegistry(c redis.UniversalClient, timeout time.Duration) *Registry {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Registry{c: c, timeout: timeout}
}

func (r *Registry) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// Put stores value under key.
func (r *Registry) Put(table, key string, value []byte) error {
	ctx, cancel := r.ctx()
	defer cancel()
	return r.c.HSet(ctx, RegistryKeyPrefix+table, key, value).Err()
}

// Get returns the value of key and whether it exists.
func (r *Registry) Get(table, key string) ([]byte, bool, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	v, err := r.c.HGet(ctx, RegistryKeyPrefix+table, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// All returns every entry of table.
func (r *Registry) All(table string) (map[string][]byte, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	m, err := r.c.HGetAll(ctx, RegistryKeyPrefix+table).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out, nil
}

// Delete removes key and reports whether it existed.
func (r *Registry) Delete(table, key string) (bool, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	n, err := r.c.HDel(ctx, RegistryKeyPrefix+table, key).Result()
	return n > 0, err
}
