package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

var updateProtos = flag.Bool("update-protos", false, "rewrite the descriptor sets of testdata/base/protos")

// fixtureProtos are the descriptor sets of testdata/base/protos that the
// rpc fixtures name, built here so that what they hold is readable (there
// is no protoc on the build machines): go test ./engine/config -run
// TestFixtureDescriptorSets -update-protos rewrites them.
func fixtureProtos() map[string]*descriptorpb.FileDescriptorSet {
	s := proto.String
	msg := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: s(name), Field: fields}
	}
	field := func(name string, n int32, t descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: s(name), JsonName: s(name), Number: proto.Int32(n), Type: t.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
		if typeName != "" {
			f.TypeName = s(typeName)
		}
		return f
	}
	method := func(name, in, out string, clientStream, serverStream bool) *descriptorpb.MethodDescriptorProto {
		m := &descriptorpb.MethodDescriptorProto{Name: s(name), InputType: s(in), OutputType: s(out)}
		if clientStream {
			m.ClientStreaming = proto.Bool(true)
		}
		if serverStream {
			m.ServerStreaming = proto.Bool(true)
		}
		return m
	}
	return map[string]*descriptorpb.FileDescriptorSet{
		// A unary method and one of each streaming kind.
		"ticker.binpb": {File: []*descriptorpb.FileDescriptorProto{{
			Name:    s("fixture/v1/ticker.proto"),
			Package: s("fixture.v1"),
			Syntax:  s("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{
				msg("TickRequest", field("symbol", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, "")),
				msg("Tick", field("symbol", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""), field("price", 2, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, "")),
			},
			Service: []*descriptorpb.ServiceDescriptorProto{{
				Name: s("Ticker"),
				Method: []*descriptorpb.MethodDescriptorProto{
					method("Last", ".fixture.v1.TickRequest", ".fixture.v1.Tick", false, false),
					method("Watch", ".fixture.v1.TickRequest", ".fixture.v1.Tick", false, true),
					method("Publish", ".fixture.v1.Tick", ".fixture.v1.TickRequest", true, false),
					method("Trade", ".fixture.v1.Tick", ".fixture.v1.Tick", true, true),
				},
			}},
		}}},
		// A file whose import was left out (protoc without --include_imports).
		"no-imports.binpb": {File: []*descriptorpb.FileDescriptorProto{{
			Name:       s("fixture/v1/clock.proto"),
			Package:    s("fixture.v1"),
			Syntax:     s("proto3"),
			Dependency: []string{"google/protobuf/timestamp.proto"},
			MessageType: []*descriptorpb.DescriptorProto{
				msg("Now", field("at", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".google.protobuf.Timestamp")),
			},
			Service: []*descriptorpb.ServiceDescriptorProto{{
				Name:   s("Clock"),
				Method: []*descriptorpb.MethodDescriptorProto{method("Get", ".fixture.v1.Now", ".fixture.v1.Now", false, false)},
			}},
		}}},
	}
}

func TestFixtureDescriptorSets(t *testing.T) {
	for name, set := range fixtureProtos() {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "base", "protos", name)
		if *updateProtos {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update-protos to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from fixtureProtos (run with -update-protos after a deliberate change)", path)
		}
	}
}

// The loader keeps the method it found on the step, and a descriptor set's
// bytes count in the repository's hash once an API names it.
func TestDescriptorSetLoaded(t *testing.T) {
	dir, _ := withFixture(t, "good", "api-rpc-descriptor-set.good.yaml")
	repo, diags := mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("load:\n%s", dump(diags))
	}
	steps := repo.API("good.rpc", "v1").Steps
	for _, i := range []int{1, 2} {
		d := steps[i].RPC.Descriptor
		if d == nil || d.FullName() != "/fixture.v1.Ticker/Last" || d.Desc.Input().FullName() != "fixture.v1.TickRequest" {
			t.Fatalf("steps[%d].rpc.Descriptor = %+v, want fixture.v1.Ticker/Last", i, d)
		}
	}
	if steps[3].RPC.Descriptor != nil {
		t.Errorf("a step without descriptorSet has a descriptor: %+v", steps[3].RPC.Descriptor)
	}

	before := repo.Hash
	unnamed := filepath.Join(dir, "protos", "inventory.binpb") // no API names it
	if err := os.WriteFile(unnamed, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if repo, _ := mustLoad(t, dir); repo.Hash != before {
		t.Errorf("a descriptor set no API names changed the hash")
	}
	set := fixtureProtos()["ticker.binpb"]
	set.File[0].MessageType = append(set.File[0].MessageType, &descriptorpb.DescriptorProto{Name: proto.String("Extra")})
	data, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "protos", "ticker.binpb"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	repo, diags = mustLoad(t, dir)
	if diags.HasErrors() {
		t.Fatalf("load:\n%s", dump(diags))
	}
	if repo.Hash == before {
		t.Errorf("the hash did not change with the descriptor set an API names")
	}
}
