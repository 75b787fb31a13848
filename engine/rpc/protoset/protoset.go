// Package protoset reads protobuf descriptor sets and finds the unary
// methods rpc steps call in them. It needs protobuf only, not gRPC, so
// `databus validate` checks a step's method against the repository's
// descriptor set with it; the gateway uses the same lookups on the
// descriptors a server's reflection service sends.
package protoset

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/internal/safefile"
)

// Errors of Parse and Set.Method, wrapped with the details.
var (
	// ErrInvalid: the bytes are not a complete FileDescriptorSet.
	ErrInvalid = errors.New("not a valid descriptor set")
	// ErrBadName: the method is not written package.Service/Method.
	ErrBadName = errors.New("bad method name")
	// ErrNoService: the set has no such service.
	ErrNoService = errors.New("service not found")
	// ErrNoMethod: the service has no such method.
	ErrNoMethod = errors.New("method not found")
	// ErrStreaming: the method streams; rpc steps call unary methods only.
	ErrStreaming = errors.New("not a unary method")
)

// lookupError is a finding of Method: its message reads on its own, and it
// matches its sentinel with errors.Is.
type lookupError struct {
	kind error
	msg  string
}

func (e *lookupError) Error() string        { return e.msg }
func (e *lookupError) Is(target error) bool { return target == e.kind }

func lookupErr(kind error, format string, args ...any) error {
	return &lookupError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Set is a linked set of proto files.
type Set struct {
	Files *protoregistry.Files
	types *dynamicpb.Types
}

// MaxBytes bounds a descriptor set file (the repository's own bound,
// config.MaxFileBytes).
const MaxBytes = 16 << 20

// Load reads a FileDescriptorSet file (protoc --descriptor_set_out
// --include_imports, or buf build -o).
func Load(path string) (*Set, error) {
	data, err := safefile.Read(path, MaxBytes)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse links the files of a serialized FileDescriptorSet.
func Parse(data []byte) (*Set, error) {
	const expected = "expected the output of protoc --descriptor_set_out --include_imports, or of buf build -o"
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(data, &fds); err != nil {
		return nil, lookupErr(ErrInvalid, "not a FileDescriptorSet (%s): %s", cleanErr(err), expected)
	}
	if len(fds.File) == 0 {
		return nil, lookupErr(ErrInvalid, "not a FileDescriptorSet (it holds no files): %s", expected)
	}
	return FromProtos(fds.File)
}

// FromProtos links file descriptor protos; every import must be among them.
func FromProtos(files []*descriptorpb.FileDescriptorProto) (*Set, error) {
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		msg := "its files do not link: " + cleanErr(err)
		if strings.Contains(msg, "could not resolve import") {
			msg += ": include the imported files (protoc --include_imports, or buf build)"
		}
		return nil, lookupErr(ErrInvalid, "%s", msg)
	}
	return &Set{Files: reg, types: dynamicpb.NewTypes(reg)}, nil
}

// Types resolves the messages, enums and extensions of the set, e.g. the
// type URLs of google.protobuf.Any values.
func (s *Set) Types() *dynamicpb.Types { return s.types }

// Method is a unary method and the types its messages may refer to.
type Method struct {
	Desc  protoreflect.MethodDescriptor
	Types *dynamicpb.Types
}

// FullName is the method as gRPC addresses it: /package.Service/Method.
func (m *Method) FullName() string {
	return "/" + string(m.Desc.Parent().FullName()) + "/" + string(m.Desc.Name())
}

// SplitMethod splits package.Service/Method.
func SplitMethod(full string) (service protoreflect.FullName, method protoreflect.Name, err error) {
	svc, m, ok := strings.Cut(strings.TrimPrefix(full, "/"), "/")
	service, method = protoreflect.FullName(svc), protoreflect.Name(m)
	if !ok || !service.IsValid() || !strings.Contains(svc, ".") || !method.IsValid() {
		return "", "", lookupErr(ErrBadName, "bad method name %q: expected package.Service/Method", full)
	}
	return service, method, nil
}

// Method finds the unary method full (package.Service/Method).
func (s *Set) Method(full string) (*Method, error) {
	svcName, name, err := SplitMethod(full)
	if err != nil {
		return nil, err
	}
	d, err := s.Files.FindDescriptorByName(svcName)
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return nil, lookupErr(ErrNoService, "no service %s%s", svcName, s.listServices())
	}
	md := sd.Methods().ByName(name)
	if md == nil {
		return nil, lookupErr(ErrNoMethod, "service %s has no method %s%s", svcName, name, listMethods(sd))
	}
	if kind := streaming(md); kind != "" {
		return nil, lookupErr(ErrStreaming, "%s/%s is a %s method: rpc steps call unary methods only", svcName, name, kind)
	}
	return &Method{Desc: md, Types: s.types}, nil
}

func streaming(md protoreflect.MethodDescriptor) string {
	switch {
	case md.IsStreamingClient() && md.IsStreamingServer():
		return "bidirectional-streaming"
	case md.IsStreamingClient():
		return "client-streaming"
	case md.IsStreamingServer():
		return "server-streaming"
	}
	return ""
}

// listServices names the services of the set, as a hint.
func (s *Set) listServices() string {
	var names []string
	s.Files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			names = append(names, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	if len(names) == 0 {
		return " (the set defines no services)"
	}
	sort.Strings(names)
	return " (it has " + hint(names) + ")"
}

func listMethods(sd protoreflect.ServiceDescriptor) string {
	var names []string
	for i := 0; i < sd.Methods().Len(); i++ {
		names = append(names, string(sd.Methods().Get(i).Name()))
	}
	if len(names) == 0 {
		return " (it has no methods)"
	}
	sort.Strings(names)
	return " (it has " + hint(names) + ")"
}

func hint(names []string) string {
	const show = 8
	if len(names) > show {
		return strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
	}
	return strings.Join(names, ", ")
}

// cleanErr drops the "proto: " prefix protobuf puts on its errors (spelled
// with a varying space, so it is cut by position).
func cleanErr(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "proto:") {
		msg = strings.TrimLeft(strings.TrimPrefix(msg, "proto:"), " \u00a0")
	}
	return msg
}
