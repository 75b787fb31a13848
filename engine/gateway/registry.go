package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/snapshot"
)

// openRegistry builds the service registry over the bbolt file, sharing it
// through Redis when the current settings configure Redis.
func (s *Server) openRegistry(snap *snapshot.Snapshot) {
	storeErrors := s.metrics.StoreErrors.WithLabelValues("registry", "redis")
	reg := registry.New(s.db.Registry(), registry.Options{Logger: s.log, StoreError: func(error) { storeErrors.Inc() }})
	reg.SetShared(snap.Shared)
	s.reg.Store(reg)
}

// Registry is the gateway's service registry (nil before New returns).
func (s *Server) Registry() *registry.Registry { return s.reg.Load() }

// services is the resolver of service steps and hooks: Options.Services
// when given, else the gateway's own registry.
func (s *Server) services() registry.Resolver {
	if s.opts.Services != nil {
		return s.opts.Services
	}
	return ownRegistry{s}
}

// ownRegistry resolves through the gateway's registry, which exists once
// the storage is open (after the first reload compiled the flows).
type ownRegistry struct{ s *Server }

func (o ownRegistry) Resolve(ctx context.Context, server, name string) (registry.Endpoint, error) {
	reg := o.s.reg.Load()
	if reg == nil {
		return registry.Endpoint{}, errors.New("the service registry is not open yet")
	}
	return reg.Resolve(ctx, server, name)
}

// registrySyncEvery is how often the local copy of a shared registry is
// brought in line with Redis (deletions made through other replicas).
const registrySyncEvery = 30 * time.Second

// syncRegistry syncs the registry with Redis every interval until ctx ends.
func (s *Server) syncRegistry(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if reg := s.reg.Load(); reg != nil {
				reg.Sync(ctx) // failures are counted and logged by the registry
			}
		}
	}
}
