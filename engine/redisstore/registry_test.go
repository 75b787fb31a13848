package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/databus-gateway/databus/engine/redisstore"
	"github.com/databus-gateway/databus/internal/testredis"
)

// TestRegistryEndedContext: with the caller's context already ended, every
// call returns its error and nothing reaches Redis — not even a write.
func TestRegistryEndedContext(t *testing.T) {
	rs := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	reg := redisstore.NewRegistry(c, time.Second)
	if err := reg.Put(t.Context(), "servers", "A", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := reg.Put(ctx, "servers", "B", []byte(`{"n":2}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: %v", err)
	}
	if v, ok, err := reg.Get(ctx, "servers", "A"); !errors.Is(err, context.Canceled) || ok || v != nil {
		t.Errorf("Get: %q %v %v", v, ok, err)
	}
	if m, err := reg.All(ctx, "servers"); !errors.Is(err, context.Canceled) || m != nil {
		t.Errorf("All: %v %v", m, err)
	}
	if ok, err := reg.Delete(ctx, "servers", "A"); !errors.Is(err, context.Canceled) || ok {
		t.Errorf("Delete: %v %v", ok, err)
	}

	all, err := reg.All(t.Context(), "servers")
	if err != nil || len(all) != 1 || string(all["A"]) != `{"n":1}` {
		t.Fatalf("redis after the cancelled calls: %q %v", all, err)
	}
}
