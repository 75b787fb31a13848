package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/bench"
	"github.com/databus-gateway/databus/engine/client"
)

const benchUsage = "API [--url URL] (--rate N | --max) [--concurrency C] [--duration D] [--app ID --key ...] [--body JSON] [--format text|json]"

func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", benchUsage, "signed-request load generator: every request is signed (and encrypted) with a fresh nonce; reports requests/s, latency percentiles and errors by status", stderr)
	var f callFlags
	f.register(fs)
	rate := fs.Float64("rate", 0, "requests per second (open loop: latency counts from each request's due time)")
	max := fs.Bool("max", false, "send as fast as the workers go (closed loop)")
	conc := fs.Int("concurrency", 16, "workers, each with its own connection")
	dur := fs.Duration("duration", 10*time.Second, "how long to send")
	format := fs.String("format", "text", "text or json")
	verify := fs.Bool("verify", false, "decrypt every answer and count an envelope code other than 200 as an error (costs client CPU)")
	unsigned := fs.Bool("unsigned", false, "send the body as it is, without signing (for APIs with security off, or a plain proxy)")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "databus bench: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case len(pos) != 1:
		return fail("name one API (code or code:version)")
	case *max == (*rate > 0):
		return fail("give either --rate N (N > 0) or --max")
	case *conc <= 0:
		return fail("--concurrency must be at least 1")
	case *dur <= 0:
		return fail("--duration must be positive")
	case *format != "text" && *format != "json":
		return fail("--format %q: expected text or json", *format)
	case *unsigned && *verify:
		return fail("--verify decrypts answers with a credential; it does not go with --unsigned")
	}
	body, err := f.bodyBytes(os.Stdin)
	if err != nil {
		return fail("%v", err)
	}
	q, err := f.values()
	if err != nil {
		return fail("%v", err)
	}
	method := strings.ToUpper(f.method)
	var c *client.Client
	if *unsigned {
		if f.app != "" {
			return fail("--unsigned sends no credential; drop --app")
		}
		c = &client.Client{BaseURL: f.baseURL(f.repo())}
	} else if c, err = f.client(); err != nil {
		return fail("%v (or --unsigned for an API with security off)", err)
	}
	hc := bench.NewClient(*conc, f.timeout)
	opts := bench.Options{Concurrency: *conc, Duration: *dur, Timeout: f.timeout, Client: hc}
	if *rate > 0 {
		opts.Rate = *rate
	}
	api := pos[0]
	var target string
	if *unsigned {
		code, version := client.ParseAPI(api)
		target = strings.TrimSuffix(c.BaseURL, "/") + "/" + code + "/" + version
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		ctype := "application/json"
		opts.Build = func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
			if err == nil && len(body) > 0 {
				req.Header.Set("Content-Type", ctype)
			}
			return req, err
		}
	} else {
		first, err := c.Prepare(method, api, q, body)
		if err != nil {
			return fail("%v", err)
		}
		target = first.URL
		opts.Build = func(ctx context.Context) (*http.Request, error) {
			p, err := c.Prepare(method, api, q, body)
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, p.Method, p.URL, bytes.NewReader(p.Body))
			if err != nil {
				return nil, err
			}
			req.Header = p.Header
			return req, nil
		}
		if *verify {
			opts.Check = func(status int, h http.Header, b []byte) error {
				resp, err := c.Decode(status, h, b)
				if err != nil {
					return err
				}
				if resp.Envelope.Code != http.StatusOK {
					return fmt.Errorf("envelope %d: %s", resp.Envelope.Code, resp.Envelope.Message)
				}
				return nil
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "databus bench: %v\n", err)
		return exitInvalid
	}
	res.Target = target
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "databus bench: warning: %s\n", w)
		}
	} else {
		bench.WriteText(stdout, res)
	}
	if res.Requests == 0 || res.Errors == res.Requests {
		return exitInvalid
	}
	return exitOK
}
