// Command server runs the upstreams of the Databus gRPC example: the
// inventory.v1.Inventory gRPC service (with server reflection unless
// -reflection=false) and the product catalog over HTTP.
//
//	go run ./examples/grpc/server -addr 127.0.0.1:50051 -http 127.0.0.1:50052
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/databus-gateway/databus/examples/grpc/inventory"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC listen address (inventory.v1.Inventory)")
	httpAddr := flag.String("http", "127.0.0.1:50052", "HTTP listen address (the product catalog); empty: none")
	withReflection := flag.Bool("reflection", true, "serve grpc.reflection.v1 and v1alpha")
	flag.Parse()

	svc, err := inventory.New()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	svc.Register(g, *withReflection)
	go func() {
		if err := g.Serve(ln); err != nil {
			log.Fatal(err)
		}
	}()
	log.Printf("inventory.v1.Inventory on %s (reflection: %v)", ln.Addr(), *withReflection)

	var web *http.Server
	if *httpAddr != "" {
		web = &http.Server{Addr: *httpAddr, Handler: inventory.Catalog(), ReadHeaderTimeout: 5 * time.Second}
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			log.Fatal(err)
		}
		go web.Serve(hl)
		log.Printf("product catalog on http://%s/products/{sku}", hl.Addr())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Print("stopping")
	g.GracefulStop()
	if web != nil {
		web.Close()
	}
}
