package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	reflectv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/databus-gateway/databus/engine/rpc/protoset"
)

// ErrNoReflection: the target serves neither grpc.reflection.v1 nor
// v1alpha, so its message types must come from a descriptor set.
var ErrNoReflection = errors.New("no server reflection")

// maxReflectedFiles bounds the files fetched for one service.
const maxReflectedFiles = 1000

// reflEntry is what one target's reflection service told: the linked
// files of each service asked for so far.
type reflEntry struct {
	mu       sync.Mutex
	services map[protoreflect.FullName]*protoset.Set
	inflight map[protoreflect.FullName]*fetch
}

// fetch is one reflection request in progress; callers asking for the same
// service meanwhile wait for it instead of asking again.
type fetch struct {
	done chan struct{}
	set  *protoset.Set
	err  error
}

func (p *Pool) entry(k connKey) *reflEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.refl[k]
	if e == nil {
		e = &reflEntry{services: map[protoreflect.FullName]*protoset.Set{}, inflight: map[protoreflect.FullName]*fetch{}}
		p.refl[k] = e
	}
	return e
}

// Method finds the unary method full (package.Service/Method) through the
// target's reflection service. What the service sends is cached until
// Refresh; a failed attempt is not cached. Errors: a gRPC status error
// when the reflection call fails, ErrNoReflection, or the protoset errors
// (ErrNoService, ErrNoMethod, ErrStreaming).
func (p *Pool) Method(ctx context.Context, target string, useTLS bool, full string) (*protoset.Method, error) {
	svc, _, err := protoset.SplitMethod(full)
	if err != nil {
		return nil, err
	}
	k := connKey{target, useTLS}
	e := p.entry(k)
	e.mu.Lock()
	if set := e.services[svc]; set != nil {
		e.mu.Unlock()
		return set.Method(full)
	}
	f := e.inflight[svc]
	leader := f == nil
	if leader {
		f = &fetch{done: make(chan struct{})}
		e.inflight[svc] = f
	}
	e.mu.Unlock()
	if leader {
		f.set, f.err = p.reflect(ctx, k, svc)
		e.mu.Lock()
		delete(e.inflight, svc)
		if f.err == nil {
			e.services[svc] = f.set
		}
		e.mu.Unlock()
		close(f.done)
	} else {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	return f.set.Method(full)
}

// reflect asks the target for the file that defines svc and every file it
// imports, over grpc.reflection.v1, or v1alpha when v1 is not served.
func (p *Pool) reflect(ctx context.Context, k connKey, svc protoreflect.FullName) (*protoset.Set, error) {
	conn, err := p.conn(k.target, k.tls)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	files, err := fetchFiles(ctx, v1Stream(conn), svc)
	if status.Code(err) == codes.Unimplemented {
		files, err = fetchFiles(ctx, v1alphaStream(conn), svc)
	}
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil, &kindError{ErrNoReflection, fmt.Sprintf("%s serves no reflection service (neither grpc.reflection.v1 nor v1alpha)", k.target)}
	case status.Code(err) == codes.NotFound:
		return nil, &kindError{protoset.ErrNoService, fmt.Sprintf("the reflection service of %s does not know service %s", k.target, svc)}
	case err != nil:
		return nil, err
	}
	set, err := protoset.FromProtos(files)
	if err != nil {
		return nil, fmt.Errorf("the descriptors sent by the reflection service of %s: %w", k.target, err)
	}
	return set, nil
}

// kindError reads on its own and matches its sentinel with errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// reflectionStream is one reflection stream, of either version: ask is a
// file request (by symbol or by file name), answered with serialized
// FileDescriptorProtos or an error status.
type reflectionStream func(ctx context.Context) (ask func(symbol, file string) ([][]byte, error), err error)

func fetchFiles(ctx context.Context, open reflectionStream, svc protoreflect.FullName) ([]*descriptorpb.FileDescriptorProto, error) {
	ask, err := open(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]*descriptorpb.FileDescriptorProto{}
	var order []string
	add := func(raw [][]byte) error {
		for _, b := range raw {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return status.Errorf(codes.Internal, "reflection sent a file descriptor that does not parse: %v", err)
			}
			if _, dup := have[fd.GetName()]; !dup {
				have[fd.GetName()] = fd
				order = append(order, fd.GetName())
			}
		}
		return nil
	}
	raw, err := ask(string(svc), "")
	if err != nil {
		return nil, err
	}
	if err := add(raw); err != nil {
		return nil, err
	}
	// The server sends the file and, usually, its imports; ask for any
	// import still missing.
	for i := 0; i < len(order); i++ {
		for _, dep := range have[order[i]].GetDependency() {
			if _, ok := have[dep]; ok {
				continue
			}
			if len(order) >= maxReflectedFiles {
				return nil, status.Errorf(codes.ResourceExhausted, "service %s imports more than %d files", svc, maxReflectedFiles)
			}
			raw, err := ask("", dep)
			if err != nil {
				return nil, err
			}
			if err := add(raw); err != nil {
				return nil, err
			}
			if _, ok := have[dep]; !ok {
				return nil, status.Errorf(codes.Internal, "reflection did not send %s, imported by %s", dep, order[i])
			}
		}
	}
	out := make([]*descriptorpb.FileDescriptorProto, 0, len(order))
	for _, name := range order {
		out = append(out, have[name])
	}
	return out, nil
}

func v1Stream(conn *grpc.ClientConn) reflectionStream {
	return func(ctx context.Context) (func(string, string) ([][]byte, error), error) {
		st, err := reflectv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		return func(symbol, file string) ([][]byte, error) {
			req := &reflectv1.ServerReflectionRequest{}
			if symbol != "" {
				req.MessageRequest = &reflectv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}
			} else {
				req.MessageRequest = &reflectv1.ServerReflectionRequest_FileByFilename{FileByFilename: file}
			}
			if err := st.Send(req); err != nil {
				_, err = st.Recv() // the stream's status says why
				return nil, err
			}
			resp, err := st.Recv()
			if err != nil {
				return nil, err
			}
			switch r := resp.MessageResponse.(type) {
			case *reflectv1.ServerReflectionResponse_FileDescriptorResponse:
				return r.FileDescriptorResponse.GetFileDescriptorProto(), nil
			case *reflectv1.ServerReflectionResponse_ErrorResponse:
				return nil, status.Error(codes.Code(r.ErrorResponse.GetErrorCode()), r.ErrorResponse.GetErrorMessage())
			}
			return nil, status.Errorf(codes.Internal, "unexpected reflection answer %T", resp.MessageResponse)
		}, nil
	}
}

func v1alphaStream(conn *grpc.ClientConn) reflectionStream {
	return func(ctx context.Context) (func(string, string) ([][]byte, error), error) {
		st, err := reflectv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, err
		}
		return func(symbol, file string) ([][]byte, error) {
			req := &reflectv1alpha.ServerReflectionRequest{}
			if symbol != "" {
				req.MessageRequest = &reflectv1alpha.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}
			} else {
				req.MessageRequest = &reflectv1alpha.ServerReflectionRequest_FileByFilename{FileByFilename: file}
			}
			if err := st.Send(req); err != nil {
				_, err = st.Recv()
				return nil, err
			}
			resp, err := st.Recv()
			if err != nil {
				return nil, err
			}
			switch r := resp.MessageResponse.(type) {
			case *reflectv1alpha.ServerReflectionResponse_FileDescriptorResponse:
				return r.FileDescriptorResponse.GetFileDescriptorProto(), nil
			case *reflectv1alpha.ServerReflectionResponse_ErrorResponse:
				return nil, status.Error(codes.Code(r.ErrorResponse.GetErrorCode()), r.ErrorResponse.GetErrorMessage())
			}
			return nil, status.Errorf(codes.Internal, "unexpected reflection answer %T", resp.MessageResponse)
		}, nil
	}
}
