package sandbox

import (
	"context"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/engine/flow"
)

// grpcStub is the gRPC stub server: it answers every method of every
// service, decoding and encoding messages with the descriptors of the rpc
// steps that name a descriptor set.
type grpcStub struct {
	s   *Sandbox
	srv *grpc.Server
	ln  net.Listener
}

// tokenMD carries a call's token in the gRPC metadata.
const tokenMD = "x-databus-sandbox-call"

func startGRPC(s *Sandbox) (*grpcStub, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sandbox: grpc stub server: %w", err)
	}
	g := &grpcStub{s: s, ln: ln}
	g.srv = grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(g.handle),
		grpc.MaxRecvMsgSize(MaxStubBody))
	go g.srv.Serve(ln)
	return g, nil
}

func (g *grpcStub) stop() { g.srv.Stop() }

// dialOptions send every target to the stub server, in plain text, with
// the token of the session's call.
func (g *grpcStub) dialOptions() []grpc.DialOption {
	addr := g.ln.Addr().String()
	var d net.Dialer
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// No name is looked up: every target is the stub server.
		grpc.WithResolvers(anyHost{}),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			ss := sessionOf(ctx)
			if ss == nil {
				return status.Error(codes.FailedPrecondition, ErrNoSession.Error())
			}
			c := &Call{Step: flow.StepOf(ctx), Kind: KindRPC, Method: method, URL: cc.Target()}
			if i, ok := serviceIndex(strings.Split(cc.Target(), ":")[0]); ok && i < len(ss.o.Services) {
				svc := ss.o.Services[i]
				c.Kind, c.Server, c.Service = KindService, strings.ToUpper(svc.ServerName), svc.ServiceName
			}
			tok := g.s.register(&pending{sess: ss, call: c})
			err := invoker(metadata.AppendToOutgoingContext(ctx, tokenMD, tok), method, req, reply, cc, opts...)
			g.s.forget(tok)
			return err
		}),
	}
}

func (g *grpcStub) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	var tok string
	if v := md.Get(tokenMD); len(v) > 0 {
		tok = v[0]
	}
	p := g.s.take(tok)
	if p == nil {
		return status.Errorf(codes.Unimplemented, "sandbox: %s is not a call of an rpc step (rpc steps in a sandbox need a descriptorSet: there is no server to ask by reflection)", method)
	}
	m := g.s.methods[method]
	if m == nil {
		p.sess.record(p.call)
		return status.Errorf(codes.Unimplemented, "sandbox: no descriptors for %s: give the rpc step a descriptorSet", method)
	}
	var raw []byte
	if err := stream.RecvMsg(&raw); err != nil {
		return err
	}
	in := dynamicpb.NewMessage(m.Desc.Input())
	if err := proto.Unmarshal(raw, in); err != nil {
		return status.Errorf(codes.InvalidArgument, "sandbox: request is not a %s: %v", m.Desc.Input().FullName(), err)
	}
	c := p.call
	md.Delete(tokenMD)
	c.Header = metadataHeader(md)
	c.Body, _ = protojson.MarshalOptions{Resolver: m.Types}.Marshal(in)
	a := p.sess.answer(stream.Context(), c)
	if !wait(stream.Context(), a) {
		return stream.Context().Err()
	}
	if a.Reset {
		return status.Error(codes.Unavailable, "sandbox: connection reset by the stub")
	}
	if len(a.Header) > 0 {
		out := metadata.MD{}
		for k, vs := range a.Header {
			out[strings.ToLower(k)] = vs
		}
		stream.SetHeader(out)
	}
	if a.Code != 0 {
		return status.Error(codes.Code(a.Code), string(a.Body))
	}
	reply := dynamicpb.NewMessage(m.Desc.Output())
	if len(a.Body) > 0 {
		if err := (protojson.UnmarshalOptions{Resolver: m.Types}).Unmarshal(a.Body, reply); err != nil {
			return status.Errorf(codes.Internal, "sandbox: the stub's answer is not a %s: %v", m.Desc.Output().FullName(), err)
		}
	}
	b, err := proto.Marshal(reply)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	return stream.SendMsg(b)
}

func metadataHeader(md metadata.MD) map[string][]string {
	h := make(map[string][]string, len(md))
	for k, v := range md {
		h[k] = v
	}
	return h
}

// anyHost resolves every dns target to itself, for the dialer to ignore.
type anyHost struct{}

func (anyHost) Scheme() string { return "dns" }

func (anyHost) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	err := cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: t.Endpoint()}}})
	return anyHost{}, err
}

func (anyHost) ResolveNow(resolver.ResolveNowOptions) {}
func (anyHost) Close()                                {}

// rawCodec hands message bytes through: the stub decodes them itself.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case []byte:
		return b, nil
	case *[]byte:
		return *b, nil
	}
	return nil, fmt.Errorf("sandbox: cannot encode %T", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("sandbox: cannot decode into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
