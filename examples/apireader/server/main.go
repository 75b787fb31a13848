// Command server runs the example feature service of the ApiReader pattern
// on loopback: go run ./examples/apireader/server -addr 127.0.0.1:9310
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/databus-gateway/databus/examples/apireader/featureservice"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9310", "listen address")
	jobTime := flag.Duration("job-time", 2*time.Second, "how long a job runs before its rows can be downloaded")
	flag.Parse()
	svc := featureservice.New(featureservice.Options{JobTime: *jobTime})
	log.Printf("feature service on http://%s (POST /v1/upload, /v1/query, /v1/download)", *addr)
	srv := &http.Server{Addr: *addr, Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
