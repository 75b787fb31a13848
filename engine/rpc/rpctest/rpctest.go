// Package rpctest runs a real gRPC server on loopback for tests of rpc
// steps: a small stock service with dynamic messages (no generated code),
// with or without a reflection service, whose schema a test can change
// while it runs.
package rpctest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/engine/rpc/protoset"
)

// Service is the full name of the test service.
const Service = "test.v1.Stock"

// SchemaV1 is the test service's proto file. Get answers {sku, available:
// 7 × qty, checkedAt}, with header x-source: rpctest and trailer
// x-served-by: stock; Fail answers the gRPC status named by code (e.g.
// "NotFound") with message; Slow answers only when the call's deadline
// passes; Watch streams; Echo answers its request.
const SchemaV1 = `syntax = "proto3";
package test.v1;
import "google/protobuf/any.proto";
import "google/protobuf/timestamp.proto";

service Stock {
  rpc Get(GetRequest) returns (GetReply);
  rpc Fail(FailRequest) returns (GetReply);
  rpc Slow(GetRequest) returns (GetReply);
  rpc Watch(GetRequest) returns (stream GetReply);
  rpc Echo(Envelope) returns (Envelope);
}

message Envelope {
  google.protobuf.Any payload = 1;
}

message GetRequest {
  string sku = 1;
  int32 qty = 2;
  repeated Line lines = 3;
}
message Line {
  string sku = 1;
  int32 qty = 2;
}
message GetReply {
  string sku = 1;
  int32 available = 2;
  google.protobuf.Timestamp checked_at = 3;
}
message FailRequest {
  string code = 1;
  string message = 2;
}
`

// SchemaV2 adds GetReply.warehouse, which Get then fills with "north".
const SchemaV2 = `syntax = "proto3";
package test.v1;
import "google/protobuf/any.proto";
import "google/protobuf/timestamp.proto";

service Stock {
  rpc Get(GetRequest) returns (GetReply);
  rpc Fail(FailRequest) returns (GetReply);
  rpc Slow(GetRequest) returns (GetReply);
  rpc Watch(GetRequest) returns (stream GetReply);
  rpc Echo(Envelope) returns (Envelope);
}

message Envelope {
  google.protobuf.Any payload = 1;
}

message GetRequest {
  string sku = 1;
  int32 qty = 2;
  repeated Line lines = 3;
}
message Line {
  string sku = 1;
  int32 qty = 2;
}
message GetReply {
  string sku = 1;
  int32 available = 2;
  google.protobuf.Timestamp checked_at = 3;
  string warehouse = 4;
}
message FailRequest {
  string code = 1;
  string message = 2;
}
`

// CheckedAt is the checkedAt of every Get reply.
var CheckedAt = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// Reflection says which reflection services the server offers.
type Reflection int

// Reflection modes.
const (
	NoReflection          Reflection = iota
	ReflectionV1                     // grpc.reflection.v1 and v1alpha, as reflection.Register does
	ReflectionV1AlphaOnly            // only the older v1alpha
)

// Options configure Start.
type Options struct {
	Reflection Reflection
	Schema     string // SchemaV1 when empty
}

// Call is one call the server received.
type Call struct {
	Method   string
	Metadata metadata.MD
	Request  string // protojson
}

// Server is a running test server.
type Server struct {
	Addr string

	grpc   *grpc.Server
	schema atomic.Pointer[protoset.Set]
	mu     sync.Mutex
	calls  []Call
}

// Start serves the stock service on a loopback port until the test ends.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	if opts.Schema == "" {
		opts.Schema = SchemaV1
	}
	s := &Server{}
	if err := s.SetSchema(opts.Schema); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	s.grpc = grpc.NewServer()
	s.grpc.RegisterService(s.serviceDesc(), s)
	ropts := reflection.ServerOptions{Services: s.grpc, DescriptorResolver: resolver{s}}
	switch opts.Reflection {
	case ReflectionV1:
		reflectv1.RegisterServerReflectionServer(s.grpc, reflection.NewServerV1(ropts))
		reflectv1alpha.RegisterServerReflectionServer(s.grpc, reflection.NewServer(ropts))
	case ReflectionV1AlphaOnly:
		reflectv1alpha.RegisterServerReflectionServer(s.grpc, reflection.NewServer(ropts))
	}
	go s.grpc.Serve(ln)
	tb.Cleanup(s.grpc.Stop)
	return s
}

// SetSchema compiles src (a proto file of package test.v1) and serves it
// from now on, to calls and to reflection.
func (s *Server) SetSchema(src string) error {
	set, _, err := compile(src)
	if err != nil {
		return err
	}
	s.schema.Store(set)
	return nil
}

// DescriptorSet returns a FileDescriptorSet of src with its imports, as
// protoc --descriptor_set_out --include_imports writes it.
func DescriptorSet(tb testing.TB, src string) []byte {
	tb.Helper()
	_, fds, err := compile(src)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fds)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Stop stops the server: its port refuses connections from now on.
func (s *Server) Stop() { s.grpc.Stop() }

// Calls returns the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func compile(src string) (*protoset.Set, *descriptorpb.FileDescriptorSet, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"test/v1/stock.proto": src}),
	})}
	files, err := c.Compile(context.Background(), "test/v1/stock.proto")
	if err != nil {
		return nil, nil, err
	}
	fds := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var visit func(fd protoreflect.FileDescriptor)
	visit = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := 0; i < fd.Imports().Len(); i++ {
			visit(fd.Imports().Get(i).FileDescriptor)
		}
		fds.File = append(fds.File, protodesc.ToFileDescriptorProto(fd))
	}
	visit(files[0])
	set, err := protoset.FromProtos(fds.File)
	return set, fds, err
}

// resolver serves the current schema to the reflection service.
type resolver struct{ s *Server }

func (r resolver) FindFileByPath(p string) (protoreflect.FileDescriptor, error) {
	return r.s.schema.Load().Files.FindFileByPath(p)
}

func (r resolver) FindDescriptorByName(n protoreflect.FullName) (protoreflect.Descriptor, error) {
	return r.s.schema.Load().Files.FindDescriptorByName(n)
}

func (s *Server) message(name string) *dynamicpb.Message {
	d, err := s.schema.Load().Files.FindDescriptorByName(protoreflect.FullName("test.v1." + name))
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
}

func (s *Server) record(ctx context.Context, method string, req proto.Message) {
	md, _ := metadata.FromIncomingContext(ctx)
	text, _ := protojson.Marshal(req)
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: method, Metadata: md.Copy(), Request: string(text)})
	s.mu.Unlock()
}

func (s *Server) serviceDesc() *grpc.ServiceDesc {
	unary := func(name, in string, h func(ctx context.Context, req *dynamicpb.Message) (proto.Message, error)) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := s.message(in)
			if err := dec(req); err != nil {
				return nil, err
			}
			s.record(ctx, name, req)
			return h(ctx, req)
		}}
	}
	return &grpc.ServiceDesc{
		ServiceName: Service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			unary("Get", "GetRequest", s.get),
			unary("Fail", "FailRequest", s.fail),
			unary("Slow", "GetRequest", s.slow),
			unary("Echo", "Envelope", func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) { return req, nil }),
		},
		Streams: []grpc.StreamDesc{{StreamName: "Watch", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
			req := s.message("GetRequest")
			if err := st.RecvMsg(req); err != nil {
				return err
			}
			s.record(st.Context(), "Watch", req)
			reply, _ := s.get(st.Context(), req)
			return st.SendMsg(reply)
		}}},
		Metadata: "test/v1/stock.proto",
	}
}

func (s *Server) get(ctx context.Context, req *dynamicpb.Message) (proto.Message, error) {
	in := req.Descriptor().Fields()
	sku := req.Get(in.ByName("sku")).String()
	qty := req.Get(in.ByName("qty")).Int()
	reply := s.message("GetReply")
	f := reply.Descriptor().Fields()
	reply.Set(f.ByName("sku"), protoreflect.ValueOfString(sku))
	reply.Set(f.ByName("available"), protoreflect.ValueOfInt32(int32(7*qty)))
	ts := dynamicpb.NewMessage(f.ByName("checked_at").Message())
	tf := ts.Descriptor().Fields()
	ts.Set(tf.ByName("seconds"), protoreflect.ValueOfInt64(CheckedAt.Unix()))
	reply.Set(f.ByName("checked_at"), protoreflect.ValueOfMessage(ts))
	if w := f.ByName("warehouse"); w != nil {
		reply.Set(w, protoreflect.ValueOfString("north"))
	}
	grpc.SetHeader(ctx, metadata.Pairs("x-source", "rpctest"))
	grpc.SetTrailer(ctx, metadata.Pairs("x-served-by", "stock"))
	return reply, nil
}

func (s *Server) fail(ctx context.Context, req *dynamicpb.Message) (proto.Message, error) {
	in := req.Descriptor().Fields()
	name := req.Get(in.ByName("code")).String()
	code, ok := Code(name)
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "unknown code %q", name)
	}
	grpc.SetTrailer(ctx, metadata.Pairs("x-failed", name))
	return nil, status.Error(code, req.Get(in.ByName("message")).String())
}

// Code returns the gRPC code of a name as codes.Code.String spells it.
func Code(name string) (codes.Code, bool) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == name {
			return c, true
		}
	}
	return 0, false
}

func (s *Server) slow(ctx context.Context, _ *dynamicpb.Message) (proto.Message, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}
