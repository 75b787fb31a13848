// Command benchtool holds the parts of the bench script (ci/bench/run.sh)
// that are not Databus itself: the upstream every target calls, the plain
// reverse proxy that is the baseline, and the report that puts the rounds
// side by side.
//
//	benchtool upstream -addr 127.0.0.1:PORT
//	benchtool proxy -addr 127.0.0.1:PORT -to http://127.0.0.1:UPSTREAM
//	benchtool freeport
//	benchtool wait URL [URL...]
//	benchtool fetch URL FILE
//	benchtool report DIR
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("benchtool: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: benchtool upstream|proxy|freeport|wait|report ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "upstream":
		serve(flagAddr(args), upstream())
	case "proxy":
		addr, to := flagAddr(args), flagValue(args, "-to")
		u, err := url.Parse(to)
		if err != nil || u.Host == "" {
			log.Fatalf("proxy: -to %q is not a URL", to)
		}
		serve(addr, proxy(u))
	case "freeport":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
	case "wait":
		for _, u := range args {
			if err := wait(u, 30*time.Second); err != nil {
				log.Fatal(err)
			}
		}
	case "fetch":
		if len(args) != 2 {
			log.Fatal("usage: benchtool fetch URL FILE")
		}
		if err := fetch(args[0], args[1]); err != nil {
			log.Fatal(err)
		}
	case "report":
		if len(args) != 1 {
			log.Fatal("usage: benchtool report DIR")
		}
		if err := report(args[0], os.Stdout); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func flagValue(args []string, name string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			return args[i+1]
		}
	}
	log.Fatalf("%s is required", name)
	return ""
}

func flagAddr(args []string) string { return flagValue(args, "-addr") }

// answer is what the upstream returns: a small order, as a real backend
// would answer a create call.
var answer = []byte(`{"orderNo":"A-1001","status":"accepted","createdAt":"2026-01-02T03:04:05Z",` +
	`"items":[{"sku":"SKU-1","qty":2,"price":12.5},{"sku":"SKU-2","qty":1,"price":99.9}],"total":124.9}`)

func upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
}

// proxy is the baseline: the standard library's reverse proxy with a pool
// sized like Databus's (maxIdleConnsPerHost 256).
func proxy(to *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(to)
	p.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p
}

func serve(addr string, h http.Handler) {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// wait polls u until it answers anything below 500.
func wait(u string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up within %v (last: %v)", u, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetch saves the body of GET u in file (a profile from /debug/pprof).
func fetch(u, file string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
