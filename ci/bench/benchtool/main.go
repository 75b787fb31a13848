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
//
// and the parts of the scale bench (ci/bench/scale.sh):
//
//	benchtool genrepo -n N -out DIR -upstream 127.0.0.1:PORT
//	benchtool measure -out FILE -- COMMAND [ARG...]
//	benchtool ready -since UNIXNANOS -out FILE URL
//	benchtool reload -admin URL -mode edit|same|refresh [-file F] [-count N | -for D [-every D]] -out FILE
//	benchtool scalereport DIR
//
// and of the overload bench (ci/bench/overload.sh):
//
//	benchtool histq -metric NAME -q 0.99 BEFORE AFTER   (two /metrics scrapes)
package main

import (
	"context"
	"flag"
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
		log.Fatal("usage: benchtool upstream|proxy|freeport|wait|fetch|report|genrepo|measure|ready|reload|scalereport ...")
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
	case "genrepo":
		fs := flag.NewFlagSet("genrepo", flag.ExitOnError)
		n := fs.Int("n", 100, "number of APIs (and rate policies)")
		out := fs.String("out", "", "the folder to write (empty or absent)")
		up := fs.String("upstream", "", "host:port the http steps call")
		fs.Parse(args)
		if *out == "" {
			log.Fatal("genrepo: -out is required")
		}
		if err := genRepo(*out, *n, *up); err != nil {
			log.Fatal(err)
		}
	case "measure":
		fs := flag.NewFlagSet("measure", flag.ExitOnError)
		out := fs.String("out", "-", "where the JSON goes")
		fs.Parse(args)
		code, err := measure(*out, fs.Args())
		if err != nil {
			log.Fatal(err)
		}
		os.Exit(code)
	case "ready":
		fs := flag.NewFlagSet("ready", flag.ExitOnError)
		since := fs.Int64("since", 0, "Unix nanoseconds the server was started at")
		out := fs.String("out", "-", "where the JSON goes")
		limit := fs.Duration("timeout", 10*time.Minute, "how long to wait")
		fs.Parse(args)
		if fs.NArg() != 1 || *since == 0 {
			log.Fatal("usage: benchtool ready -since UNIXNANOS [-out FILE] URL")
		}
		if err := readyAt(fs.Arg(0), *since, *limit, *out); err != nil {
			log.Fatal(err)
		}
	case "reload":
		fs := flag.NewFlagSet("reload", flag.ExitOnError)
		admin := fs.String("admin", "", "the gateway's admin URL (http://127.0.0.1:PORT)")
		mode := fs.String("mode", "edit", "edit, same or refresh")
		file := fs.String("file", "", "the file edit and same rewrite")
		count := fs.Int("count", 3, "reloads to take")
		window := fs.Duration("for", 0, "instead of -count: reload back to back for this long")
		every := fs.Duration("every", 0, "with -for: start a reload at most this often (0: back to back)")
		limit := fs.Duration("timeout", 5*time.Minute, "how long one reload may take to be served")
		out := fs.String("out", "-", "where the JSON goes")
		fs.Parse(args)
		if *admin == "" || (*mode != "refresh" && *file == "") {
			log.Fatal("usage: benchtool reload -admin URL -mode edit|same|refresh [-file F] [-count N | -for D [-every D]] [-out FILE]")
		}
		run, err := reloads(*admin, *mode, *file, *count, *window, *every, *limit)
		if err != nil {
			log.Fatal(err)
		}
		if err := writeJSONFile(*out, run); err != nil {
			log.Fatal(err)
		}
	case "scalereport":
		if len(args) != 1 {
			log.Fatal("usage: benchtool scalereport DIR")
		}
		if err := scaleReportDir(args[0], os.Stdout); err != nil {
			log.Fatal(err)
		}
	case "histq":
		fs := flag.NewFlagSet("histq", flag.ExitOnError)
		name := fs.String("metric", "", "the histogram's name")
		q := fs.Float64("q", 0.99, "the quantile")
		fs.Parse(args)
		if *name == "" || fs.NArg() != 2 {
			log.Fatal("usage: benchtool histq -metric NAME [-q 0.99] BEFORE AFTER")
		}
		if err := histQ(*name, *q, fs.Arg(0), fs.Arg(1)); err != nil {
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
