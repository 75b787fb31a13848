package example

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/examples/grpc/inventory"
	"github.com/databus-gateway/databus/examples/grpc/protos"
)

// The committed inventory.pb is what inventory.proto compiles to.
func TestDescriptorSetIsCurrent(t *testing.T) {
	data, err := protos.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, protos.DescriptorSet) {
		t.Fatal("protos/inventory.pb is not the descriptor set of protos/inventory.proto: run go generate ./examples/grpc/protos")
	}
}

// copyRepo copies the example repository into a temporary folder, with
// the upstream addresses of the YAML files replaced by replace's.
func copyRepo(t *testing.T, replace map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, pattern := range []string{"databus.yaml", "apis/*.yaml", "policies/*.yaml", "protos/*.pb"} {
		names, err := filepath.Glob(pattern)
		if err != nil || len(names) == 0 {
			t.Fatalf("%s: %v", pattern, err)
		}
		for _, name := range names {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(name, ".yaml") {
				for from, to := range replace {
					data = bytes.ReplaceAll(data, []byte(from), []byte(to))
				}
			}
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestRepositoryIsValid(t *testing.T) {
	_, diags, err := config.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 0 {
		t.Fatalf("the example repository has findings:\n%v", diags)
	}
}

// The README's streaming mistake, as validate reports it.
func TestValidateRefusesStreaming(t *testing.T) {
	dir := copyRepo(t, map[string]string{"inventory.v1.Inventory/GetStock\n      descriptorSet": "inventory.v1.Inventory/WatchStock\n      descriptorSet"})
	_, diags, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "apis/stock.pinned.yaml:19:15: error: steps[1].rpc.method: descriptor set protos/inventory.pb: inventory.v1.Inventory/WatchStock is a server-streaming method: rpc steps call unary methods only"
	if errs := diags.Errors(); len(errs) != 1 || errs[0].String() != want {
		t.Fatalf("validate:\n%v\nwant:\n%s", diags, want)
	}
}

// startUpstreams runs the inventory service (with or without reflection)
// and the catalog on loopback ports.
func startUpstreams(t *testing.T, withReflection bool) (grpcAddr, catalogAddr string) {
	t.Helper()
	svc, err := inventory.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	svc.Register(g, withReflection)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	cat := httptest.NewServer(inventory.Catalog())
	t.Cleanup(cat.Close)
	return ln.Addr().String(), strings.TrimPrefix(cat.URL, "http://")
}

// serve runs a gateway on dir and returns the portal's base URL.
func serve(t *testing.T, dir string) string {
	t.Helper()
	srv, err := gateway.New(gateway.Options{Dir: dir, NoWatch: true, StoragePath: filepath.Join(t.TempDir(), "databus.db")})
	if err != nil {
		t.Fatal(err)
	}
	portalLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, portalLn, adminLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the gateway did not stop")
		}
		srv.Close()
	})
	return "http://" + portalLn.Addr().String() + "/admin-api/databus/api/portal"
}

// call POSTs body to the API and returns the envelope's code, message and
// response (as compact JSON).
func call(t *testing.T, base, api, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(base+"/"+api+"/v1", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var env struct {
		Code     int             `json:"code"`
		Message  string          `json:"message"`
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: %q", api, data)
	}
	var buf bytes.Buffer
	json.Compact(&buf, env.Response)
	return env.Code, env.Message, buf.String()
}

// The README's calls and their answers.
func TestWalkthrough(t *testing.T) {
	grpcAddr, catalogAddr := startUpstreams(t, true)
	base := serve(t, copyRepo(t, map[string]string{"127.0.0.1:50051": grpcAddr, "127.0.0.1:50052": catalogAddr}))
	cases := []struct {
		api, body string
		code      int
		message   string // the envelope's message, or response when 200
	}{
		{"stock.check", `{"sku":"A-100"}`, 200, `{"available":15,"inStock":true,"name":"Espresso cup","price":9.5,"sku":"A-100","source":"demo","updatedAt":"2024-03-01T09:00:00Z","warehouses":[{"available":12,"warehouse":"north"},{"available":3,"warehouse":"south"}]}`},
		{"stock.check", `{"sku":"A-100","warehouse":"south"}`, 200, `{"available":3,"inStock":true,"name":"Espresso cup","price":9.5,"sku":"A-100","source":"demo","updatedAt":"2024-03-01T09:00:00Z","warehouses":[{"available":3,"warehouse":"south"}]}`},
		{"stock.check", `{"sku":"C-300"}`, 502, `step "stock" failed: gRPC NotFound: no stock record for sku "C-300"`},
		{"stock.pinned", `{"sku":"B-200"}`, 200, `{"available":0,"found":true,"sku":"B-200"}`},
		{"stock.pinned", `{"sku":"C-300"}`, 200, `{"code":"NotFound","found":false,"reason":"no stock record for sku \"C-300\""}`},
		{"stock.pinned", `{"sku":7}`, 400, `step "stock": invalid request message inventory.v1.GetStockRequest: field sku: expected string, got 7`},
	}
	for _, c := range cases {
		code, msg, resp := call(t, base, c.api, c.body)
		got := msg
		if code == 200 {
			got = resp
		}
		if code != c.code || got != c.message {
			t.Errorf("%s %s: %d %s %s\nwant %d %s", c.api, c.body, code, msg, resp, c.code, c.message)
		}
	}
}

// Against a server without reflection only the descriptor set works.
func TestWithoutReflection(t *testing.T) {
	grpcAddr, catalogAddr := startUpstreams(t, false)
	base := serve(t, copyRepo(t, map[string]string{"127.0.0.1:50051": grpcAddr, "127.0.0.1:50052": catalogAddr}))
	if code, msg, _ := call(t, base, "stock.check", `{"sku":"A-100"}`); code != 502 || !strings.Contains(msg, "serves no reflection service") {
		t.Errorf("stock.check: %d %s", code, msg)
	}
	if code, msg, resp := call(t, base, "stock.pinned", `{"sku":"A-100"}`); code != 200 || resp != `{"available":15,"found":true,"sku":"A-100"}` {
		t.Errorf("stock.pinned: %d %s %s", code, msg, resp)
	}
}
