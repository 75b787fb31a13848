package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/registry"
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
// (0: 1s). A call also ends with its context: a read returns the
// context's error as soon as the context ends, a write is not sent once it
// has.
func NewRegistry(c redis.UniversalClient, timeout time.Duration) *Registry {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &Registry{c: c, timeout: timeout}
}

var _ registry.Tables = (*Registry)(nil)

// bound is ctx cut at the call timeout.
func (r *Registry) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// read runs op under ctx cut at the call timeout and returns ctx's error
// as soon as ctx ends, even while op still waits for Redis: go-redis
// notices a context that ended before the command was sent, not one that
// ends while it reads the answer. op then runs out in the background,
// bounded by the client's read timeout.
func read[T any](r *Registry, ctx context.Context, op func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		bctx, cancel := r.bound(ctx)
		defer cancel()
		v, err := op(bctx)
		done <- result{v, err}
	}()
	select {
	case res := <-done:
		return res.v, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Put stores value under key.
func (r *Registry) Put(ctx context.Context, table, key string, value []byte) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	return r.c.HSet(ctx, RegistryKeyPrefix+table, key, value).Err()
}

// Get returns the value of key and whether it exists.
func (r *Registry) Get(ctx context.Context, table, key string) ([]byte, bool, error) {
	v, err := read(r, ctx, func(ctx context.Context) ([]byte, error) {
		return r.c.HGet(ctx, RegistryKeyPrefix+table, key).Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// All returns every entry of table.
func (r *Registry) All(ctx context.Context, table string) (map[string][]byte, error) {
	m, err := read(r, ctx, func(ctx context.Context) (map[string]string, error) {
		return r.c.HGetAll(ctx, RegistryKeyPrefix+table).Result()
	})
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
func (r *Registry) Delete(ctx context.Context, table, key string) (bool, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	n, err := r.c.HDel(ctx, RegistryKeyPrefix+table, key).Result()
	return n > 0, err
}
