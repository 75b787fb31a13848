// Package rpc is the gRPC client side of rpc steps: a pool of connections
// by target that outlives reloads (the gateway owns it, as it owns the
// upstream HTTP transport), the message types of a target learnt from its
// reflection service and cached until the next reload, and one unary call
// with dynamic messages.
package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/engine/rpc/protoset"
)

// ErrClosed is returned once the pool is closed.
var ErrClosed = errors.New("the gRPC client pool is closed")

// Pool holds one client connection per target and the descriptors learnt
// from the targets' reflection services. It is safe for concurrent use.
type Pool struct {
	mu     sync.Mutex
	conns  map[connKey]*grpc.ClientConn
	refl   map[connKey]*reflEntry // replaced as a whole by Refresh
	closed bool
	opts   []grpc.DialOption
}

type connKey struct {
	target string
	tls    bool
}

// NewPool returns an empty pool. opts are added to every connection's
// dial options (tests use them, e.g. for a private CA).
func NewPool(opts ...grpc.DialOption) *Pool {
	return &Pool{conns: map[connKey]*grpc.ClientConn{}, refl: map[connKey]*reflEntry{}, opts: opts}
}

// reconnect bounds how long a connection waits between attempts to reach a
// target that went away: gRPC's default grows to two minutes, far too long
// for a gateway whose upstream restarts.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// conn returns the shared connection to target, creating it on first use.
// gRPC connects lazily and reconnects by itself, so a target that is down
// now costs nothing until a call fails with Unavailable.
func (p *Pool) conn(target string, useTLS bool) (*grpc.ClientConn, error) {
	k := connKey{target, useTLS}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if c := p.conns[k]; c != nil {
		return c, nil
	}
	creds := insecure.NewCredentials()
	if useTLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("databus"),
		grpc.WithConnectParams(reconnect),
	}, p.opts...)
	c, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", target, err)
	}
	p.conns[k] = c
	return c, nil
}

// CloseConns closes every connection; later calls dial again. The gateway
// calls it when it stops serving.
func (p *Pool) CloseConns() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[connKey]*grpc.ClientConn{}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Close closes every connection; later calls fail with ErrClosed.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.CloseConns()
}

// Refresh forgets every descriptor learnt by reflection: the next call to
// each target asks its reflection service again. The gateway calls it on
// every reload.
func (p *Pool) Refresh() {
	p.mu.Lock()
	p.refl = map[connKey]*reflEntry{}
	p.mu.Unlock()
}

// Call is one unary call.
type Call struct {
	Target   string
	TLS      bool
	Method   *protoset.Method
	Request  proto.Message
	Metadata metadata.MD
	// MaxResponseBytes bounds the response message; 0: gRPC's default (4 MiB).
	MaxResponseBytes int
}

// Reply is what a call received. Header and Trailer are set whatever the
// outcome, so a failed call's metadata can still be read.
type Reply struct {
	Message *dynamicpb.Message
	Header  metadata.MD
	Trailer metadata.MD
}

// Invoke makes the call within ctx. A failure is a gRPC status error
// (status.Code and status.Convert read it), or ErrClosed.
func (p *Pool) Invoke(ctx context.Context, c Call) (*Reply, error) {
	r := &Reply{}
	conn, err := p.conn(c.Target, c.TLS)
	if err != nil {
		return r, err
	}
	if len(c.Metadata) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, c.Metadata)
	}
	opts := []grpc.CallOption{grpc.Header(&r.Header), grpc.Trailer(&r.Trailer)}
	if c.MaxResponseBytes > 0 {
		opts = append(opts, grpc.MaxCallRecvMsgSize(c.MaxResponseBytes))
	}
	out := dynamicpb.NewMessage(c.Method.Desc.Output())
	if err := conn.Invoke(ctx, c.Method.FullName(), c.Request, out, opts...); err != nil {
		return r, err
	}
	r.Message = out
	return r, nil
}
