package pool

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type res struct{ closed atomic.Bool }

func builder(built *atomic.Int32) (Constructor, *[]*res) {
	var mu sync.Mutex
	var all []*res
	return func() (any, func(), error) {
		built.Add(1)
		r := &res{}
		mu.Lock()
		all = append(all, r)
		mu.Unlock()
		return r, func() { r.closed.Store(true) }, nil
	}, &all
}

func TestLeaseSharesAndDestroysAtLastRelease(t *testing.T) {
	p := New()
	var built atomic.Int32
	b, _ := builder(&built)
	a := p.NewLease()
	v1, err := a.Acquire("redis:x", b)
	if err != nil {
		t.Fatal(err)
	}
	next := p.NewLease()
	v2, _ := next.Acquire("redis:x", b)
	if v1 != v2 || built.Load() != 1 {
		t.Fatalf("a second lease must share the resource: built %d", built.Load())
	}
	if p.Refs("redis:x") != 2 {
		t.Fatalf("refs = %d, want 2", p.Refs("redis:x"))
	}
	a.Release()
	a.Release() // twice is once
	if v1.(*res).closed.Load() || p.Refs("redis:x") != 1 {
		t.Fatalf("released while still held: refs %d", p.Refs("redis:x"))
	}
	next.Release()
	if !v1.(*res).closed.Load() || len(p.Keys()) != 0 {
		t.Fatalf("not destroyed at the last release: keys %v", p.Keys())
	}
}

func TestFailedBuildLeavesPoolUnchanged(t *testing.T) {
	p := New()
	var built atomic.Int32
	b, _ := builder(&built)
	serving := p.NewLease()
	v, _ := serving.Acquire("http:a", b)
	// A reload that needs http:a and a resource that fails to build.
	l := p.NewLease()
	if _, err := l.Acquire("http:a", b); err != nil {
		t.Fatal(err)
	}
	_, err := l.Acquire("redis:bad", func() (any, func(), error) { return nil, nil, errors.New("no password") })
	if err == nil {
		t.Fatal("want the constructor's error")
	}
	l.Release()
	if v.(*res).closed.Load() || p.Refs("http:a") != 1 || p.Refs("redis:bad") != 0 {
		t.Fatalf("a failed build changed the pool: %v", p.Keys())
	}
}

func TestCloneHoldsItsOwnReferences(t *testing.T) {
	p := New()
	var built atomic.Int32
	b, _ := builder(&built)
	l := p.NewLease()
	v, _ := l.Acquire("rpc", b)
	c := l.Clone()
	l.Release()
	if v.(*res).closed.Load() {
		t.Fatal("the clone's reference did not keep the resource")
	}
	if got := c.Keys(); len(got) != 1 || got[0] != "rpc" {
		t.Fatalf("clone keys %v", got)
	}
	c.Release()
	if !v.(*res).closed.Load() {
		t.Fatal("not destroyed after the clone's release")
	}
}

func TestConcurrentBuildKeepsOne(t *testing.T) {
	p := New()
	var built atomic.Int32
	b, all := builder(&built)
	var wg sync.WaitGroup
	leases := make([]*Lease, 16)
	vals := make([]any, 16)
	for i := range leases {
		leases[i] = p.NewLease()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			vals[i], _ = leases[i].Acquire("k", b)
		}(i)
	}
	wg.Wait()
	for _, v := range vals {
		if v != vals[0] {
			t.Fatal("two values handed out for one key")
		}
	}
	for _, r := range *all {
		if r != vals[0] && !r.closed.Load() {
			t.Fatal("a losing copy was not destroyed")
		}
	}
	if p.Refs("k") != 16 {
		t.Fatalf("refs = %d, want 16", p.Refs("k"))
	}
	for _, l := range leases {
		l.Release()
	}
	if !vals[0].(*res).closed.Load() {
		t.Fatal("not destroyed")
	}
}
