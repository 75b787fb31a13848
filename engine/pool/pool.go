// Package pool holds the resources that outlive a Snapshot — Redis clients
// with their nonce and rate stores, upstream HTTP transports, the gRPC
// connection pool — counted by reference, as Caddy's UsagePool does.
//
// The gate acquires what a new Snapshot needs into a Lease. A build that
// fails releases its Lease, and what it created alone is destroyed at once,
// so the running world is exactly as it was. A Snapshot that is swapped out
// releases its Lease when its last in-flight request finishes; a resource
// is destroyed when no Lease holds it any more. No timer guesses lifetimes.
package pool

import (
	"fmt"
	"sort"
	"sync"
)

// Pool is a set of named resources, each counted by the Leases that hold it.
// The zero value is not usable; call New.
type Pool struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	refs    int
	value   any
	destroy func()
}

// New returns an empty pool.
func New() *Pool { return &Pool{m: map[string]*entry{}} }

// Constructor builds a resource; destroy (may be nil) frees it once nothing
// holds it any more.
type Constructor func() (value any, destroy func(), err error)

// Lease is the set of references one Snapshot (or one build) holds. It is
// not safe for concurrent use while it is being filled; Release may be
// called from any goroutine, once (later calls do nothing).
type Lease struct {
	p    *Pool
	keys []string
	once sync.Once
}

// NewLease returns an empty lease on p.
func (p *Pool) NewLease() *Lease { return &Lease{p: p} }

// Acquire returns the resource named key, building it with build when the
// pool does not hold it, and counts one more reference to it in l. A build
// that fails leaves the pool unchanged.
func (l *Lease) Acquire(key string, build Constructor) (any, error) {
	p := l.p
	p.mu.Lock()
	if e, ok := p.m[key]; ok {
		e.refs++
		p.mu.Unlock()
		l.keys = append(l.keys, key)
		return e.value, nil
	}
	p.mu.Unlock()
	// Build outside the lock: constructors may take time (a Redis ping).
	// Two leases building the same key at once keep the first and destroy
	// the other's copy.
	v, destroy, err := build()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	p.mu.Lock()
	if e, ok := p.m[key]; ok {
		e.refs++
		p.mu.Unlock()
		if destroy != nil {
			destroy()
		}
		l.keys = append(l.keys, key)
		return e.value, nil
	}
	p.m[key] = &entry{refs: 1, value: v, destroy: destroy}
	p.mu.Unlock()
	l.keys = append(l.keys, key)
	return v, nil
}

// Clone returns a new lease holding one more reference to everything l
// holds (a Snapshot that shares another's resources).
func (l *Lease) Clone() *Lease {
	c := &Lease{p: l.p, keys: append([]string(nil), l.keys...)}
	l.p.mu.Lock()
	for _, k := range c.keys {
		l.p.m[k].refs++
	}
	l.p.mu.Unlock()
	return c
}

// Keys lists the resources the lease holds, sorted.
func (l *Lease) Keys() []string {
	out := append([]string(nil), l.keys...)
	sort.Strings(out)
	return out
}

// Release drops the lease's references; each resource that no lease holds
// any more is destroyed, outside the pool's lock.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		var dead []func()
		l.p.mu.Lock()
		for _, k := range l.keys {
			e := l.p.m[k]
			e.refs--
			if e.refs == 0 {
				delete(l.p.m, k)
				if e.destroy != nil {
					dead = append(dead, e.destroy)
				}
			}
		}
		l.p.mu.Unlock()
		for _, d := range dead {
			d()
		}
	})
}

// Refs returns how many references the pool counts for key (0: not held).
func (p *Pool) Refs(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[key]; ok {
		return e.refs
	}
	return 0
}

// Keys lists the resources the pool holds, sorted: after a server closed,
// none.
func (p *Pool) Keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.m))
	for k := range p.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
