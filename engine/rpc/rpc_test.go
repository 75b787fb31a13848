package rpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/rpc/protoset"
	"github.com/databus-gateway/databus/engine/rpc/rpctest"
)

func newPool(t *testing.T) *rpc.Pool {
	p := rpc.NewPool()
	t.Cleanup(p.Close)
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func getRequest(t *testing.T, m *protoset.Method, js string) *dynamicpb.Message {
	t.Helper()
	msg := dynamicpb.NewMessage(m.Desc.Input())
	if err := (protojson.UnmarshalOptions{Resolver: m.Types}).Unmarshal([]byte(js), msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// Both reflection versions give the method and its imports; a call with
// it carries metadata both ways.
func TestReflectionAndCall(t *testing.T) {
	for name, mode := range map[string]rpctest.Reflection{"v1": rpctest.ReflectionV1, "v1alpha only": rpctest.ReflectionV1AlphaOnly} {
		t.Run(name, func(t *testing.T) {
			srv := rpctest.Start(t, rpctest.Options{Reflection: mode})
			p := newPool(t)
			m, err := p.Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get")
			if err != nil {
				t.Fatalf("Method: %v", err)
			}
			if got := m.FullName(); got != "/test.v1.Stock/Get" {
				t.Errorf("FullName = %q", got)
			}
			reply, err := p.Invoke(ctx(t), rpc.Call{
				Target: srv.Addr, Method: m,
				Request:  getRequest(t, m, `{"sku":"A1","qty":2}`),
				Metadata: metadata.Pairs("x-tenant", "t-1"),
			})
			if err != nil {
				t.Fatalf("Invoke: %v", err)
			}
			out, _ := protojson.Marshal(reply.Message)
			if !strings.Contains(string(out), `"available":14`) && !strings.Contains(string(out), `"available": 14`) {
				t.Errorf("reply = %s", out)
			}
			if got := reply.Header.Get("x-source"); len(got) != 1 || got[0] != "rpctest" {
				t.Errorf("header x-source = %q", got)
			}
			if got := reply.Trailer.Get("x-served-by"); len(got) != 1 || got[0] != "stock" {
				t.Errorf("trailer x-served-by = %q", got)
			}
			calls := srv.Calls()
			if len(calls) != 1 || calls[0].Metadata.Get("x-tenant")[0] != "t-1" {
				t.Errorf("server saw %+v", calls)
			}
		})
	}
}

func TestReflectionErrors(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		srv := rpctest.Start(t, rpctest.Options{})
		_, err := newPool(t).Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get")
		if !errors.Is(err, rpc.ErrNoReflection) {
			t.Fatalf("err = %v, want ErrNoReflection", err)
		}
	})
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	p := newPool(t)
	cases := []struct {
		method string
		want   error
		text   string
	}{
		{"test.v1.Nope/Get", protoset.ErrNoService, "does not know service test.v1.Nope"},
		{"test.v1.Stock/Nope", protoset.ErrNoMethod, "has no method Nope (it has Echo, Fail, Get, Slow, Watch)"},
		{"test.v1.Stock/Watch", protoset.ErrStreaming, "server-streaming"},
	}
	for _, c := range cases {
		_, err := p.Method(ctx(t), srv.Addr, false, c.method)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: err = %v, want %v containing %q", c.method, err, c.want, c.text)
		}
	}
	t.Run("target down", func(t *testing.T) {
		down := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
		addr := down.Addr
		down.Stop()
		_, err := newPool(t).Method(ctx(t), addr, false, "test.v1.Stock/Get")
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("err = %v, want Unavailable", err)
		}
	})
}

// What reflection told is kept until Refresh, even when the server's
// schema changed meanwhile.
func TestReflectionCache(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	p := newPool(t)
	hasWarehouse := func() bool {
		m, err := p.Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get")
		if err != nil {
			t.Fatal(err)
		}
		return m.Desc.Output().Fields().ByName("warehouse") != nil
	}
	if hasWarehouse() {
		t.Fatal("schema v1 has a warehouse")
	}
	if err := srv.SetSchema(rpctest.SchemaV2); err != nil {
		t.Fatal(err)
	}
	if hasWarehouse() {
		t.Error("the cached schema changed before Refresh")
	}
	p.Refresh()
	if !hasWarehouse() {
		t.Error("Refresh did not ask the server again")
	}
}

// Many first callers at once share one reflection request.
func TestReflectionConcurrent(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	p := newPool(t)
	errs := make(chan error, 16)
	for i := 0; i < cap(errs); i++ {
		go func() {
			_, err := p.Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get")
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestPoolClosed(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	p := rpc.NewPool()
	m, err := p.Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get")
	if err != nil {
		t.Fatal(err)
	}
	p.CloseConns() // a later call dials again
	if _, err := p.Invoke(ctx(t), rpc.Call{Target: srv.Addr, Method: m, Request: getRequest(t, m, `{}`)}); err != nil {
		t.Fatalf("after CloseConns: %v", err)
	}
	p.Close()
	if _, err := p.Invoke(ctx(t), rpc.Call{Target: srv.Addr, Method: m, Request: getRequest(t, m, `{}`)}); !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
}

// tls: true speaks TLS: a plaintext server does not answer it, and the
// plaintext connection to the same target is a different one.
func TestTLSIsItsOwnConnection(t *testing.T) {
	srv := rpctest.Start(t, rpctest.Options{Reflection: rpctest.ReflectionV1})
	p := newPool(t)
	if _, err := p.Method(ctx(t), srv.Addr, true, "test.v1.Stock/Get"); status.Code(err) != codes.Unavailable {
		t.Fatalf("TLS to a plaintext server: %v, want Unavailable", err)
	}
	if _, err := p.Method(ctx(t), srv.Addr, false, "test.v1.Stock/Get"); err != nil {
		t.Fatalf("plaintext: %v", err)
	}
}
