// Package inventory is the example's upstream: the gRPC service
// inventory.v1.Inventory, written with dynamic messages over the committed
// descriptor set (so no generated code and no protoc), and a product
// catalog over plain HTTP, both with fixed demo data.
package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/databus-gateway/databus/examples/grpc/protos"
)

// UpdatedAt is the updatedAt of every stock answer.
var UpdatedAt = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

// stock is the demo data: SKU → warehouse → units.
var stock = map[string]map[string]int32{
	"A-100": {"north": 12, "south": 3},
	"B-200": {"north": 0},
}

// Product is a catalog entry.
type Product struct {
	SKU   string  `json:"sku"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

var catalog = map[string]Product{
	"A-100": {"A-100", "Espresso cup", 9.5},
	"B-200": {"B-200", "Milk jug", 14},
	"C-300": {"C-300", "Tamper", 24}, // in the catalog, never stocked
}

// Service serves inventory.v1.Inventory.
type Service struct {
	files *protoregistry.Files
	req   protoreflect.MessageDescriptor
	resp  protoreflect.MessageDescriptor
	wh    protoreflect.MessageDescriptor
}

// New reads the committed descriptor set.
func New() (*Service, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(protos.DescriptorSet, &set); err != nil {
		return nil, err
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, err
	}
	s := &Service{files: files}
	for name, d := range map[string]*protoreflect.MessageDescriptor{"GetStockRequest": &s.req, "Stock": &s.resp, "WarehouseStock": &s.wh} {
		found, err := files.FindDescriptorByName(protoreflect.FullName("inventory.v1." + name))
		if err != nil {
			return nil, err
		}
		*d = found.(protoreflect.MessageDescriptor)
	}
	return s, nil
}

// Register adds the service to g, and with reflection the reflection
// service (grpc.reflection.v1 and v1alpha) describing it.
func (s *Service) Register(g *grpc.Server, withReflection bool) {
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: "inventory.v1.Inventory",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "GetStock", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			req := dynamicpb.NewMessage(s.req)
			if err := dec(req); err != nil {
				return nil, err
			}
			return s.getStock(ctx, req)
		}}},
		Streams: []grpc.StreamDesc{{StreamName: "WatchStock", ServerStreams: true, Handler: func(_ any, st grpc.ServerStream) error {
			req := dynamicpb.NewMessage(s.req)
			if err := st.RecvMsg(req); err != nil {
				return err
			}
			reply, err := s.getStock(st.Context(), req)
			if err != nil {
				return err
			}
			return st.SendMsg(reply)
		}}},
		Metadata: protos.File,
	}, s)
	if withReflection {
		opts := reflection.ServerOptions{Services: g, DescriptorResolver: s.files}
		reflectv1.RegisterServerReflectionServer(g, reflection.NewServerV1(opts))
		reflectv1alpha.RegisterServerReflectionServer(g, reflection.NewServer(opts))
	}
}

func (s *Service) getStock(ctx context.Context, req *dynamicpb.Message) (*dynamicpb.Message, error) {
	sku := req.Get(s.req.Fields().ByName("sku")).String()
	only := req.Get(s.req.Fields().ByName("warehouse")).String()
	if sku == "" {
		return nil, status.Error(codes.InvalidArgument, "sku is required")
	}
	houses, ok := stock[sku]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no stock record for sku %q", sku)
	}
	if only != "" {
		if _, ok := houses[only]; !ok {
			return nil, status.Errorf(codes.NotFound, "sku %q is not kept in warehouse %q", sku, only)
		}
	}
	reply := dynamicpb.NewMessage(s.resp)
	f := s.resp.Fields()
	reply.Set(f.ByName("sku"), protoreflect.ValueOfString(sku))
	list := reply.Mutable(f.ByName("warehouses")).List()
	var total int32
	for _, name := range []string{"north", "south"} { // a fixed order
		n, ok := houses[name]
		if !ok || (only != "" && name != only) {
			continue
		}
		total += n
		w := dynamicpb.NewMessage(s.wh)
		w.Set(s.wh.Fields().ByName("warehouse"), protoreflect.ValueOfString(name))
		w.Set(s.wh.Fields().ByName("available"), protoreflect.ValueOfInt32(n))
		list.Append(protoreflect.ValueOfMessage(w))
	}
	reply.Set(f.ByName("available"), protoreflect.ValueOfInt32(total))
	ts := dynamicpb.NewMessage(f.ByName("updated_at").Message())
	ts.Set(ts.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(UpdatedAt.Unix()))
	reply.Set(f.ByName("updated_at"), protoreflect.ValueOfMessage(ts))
	// Response metadata: the gateway shows it to the step's transforms as
	// .headers["x-inventory-source"].
	grpc.SetHeader(ctx, metadata.Pairs("x-inventory-source", "demo"))
	return reply, nil
}

// Catalog answers GET /products/{sku} with a Product, or 404.
func Catalog() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sku, ok := strings.CutPrefix(r.URL.Path, "/products/")
		p, found := catalog[sku]
		w.Header().Set("Content-Type", "application/json")
		if !ok || !found || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"message": %q}`, "no product "+sku)
			return
		}
		json.NewEncoder(w).Encode(p)
	})
}
