// Package protos holds the example's proto file and its descriptor set,
// and compiles the one into the other in Go (bufbuild/protocompile), so
// that neither protoc nor buf is needed to rebuild it.
package protos

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

//go:generate go run ../gen

// File is the proto file's name inside the descriptor set.
const File = "inventory.proto"

// Source is inventory.proto.
//
//go:embed inventory.proto
var Source string

// DescriptorSet is inventory.pb: Source compiled with its imports.
//
//go:embed inventory.pb
var DescriptorSet []byte

// Compile compiles Source into a FileDescriptorSet holding the file and
// every file it imports, dependencies first, as protoc
// --descriptor_set_out --include_imports does (without source info).
func Compile() ([]byte, error) {
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{File: Source}),
	})}
	files, err := c.Compile(context.Background(), File)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", File, err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := 0; i < fd.Imports().Len(); i++ {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(files[0])
	return proto.MarshalOptions{Deterministic: true}.Marshal(set)
}
