package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/databus-gateway/databus/engine/gateway"
	"github.com/databus-gateway/databus/engine/portal"
	"github.com/databus-gateway/databus/engine/tracing"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[--dir DIR] [--listen :8080] [--admin-listen 127.0.0.1:8081] [--health-listen ADDR]",
		"serve the repository's online APIs and reload on change", stderr)
	dir := fs.String("dir", ".", "config repository")
	listen := fs.String("listen", ":8080", "portal address (third parties)")
	adminListen := fs.String("admin-listen", "127.0.0.1:8081", "admin address (health, metrics, admin API); loopback only without admin.tokens")
	healthListen := fs.String("health-listen", "", "health address: /healthz, /readyz and /metrics only, no token, any address (e.g. :8082 for kubelet probes and Prometheus); empty: none")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	drain := fs.Duration("drain-timeout", 15*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may take to finish")
	noWatch := fs.Bool("no-watch", false, "do not watch the files; reload with SIGHUP only")
	debounce := fs.Duration("watch-debounce", 200*time.Millisecond, "how long the file watcher waits for a burst of changes to end before it reloads (a burst is never held longer than ten times this)")
	gitSync := fs.Bool("git-sync", false, "follow the remote branch: fetch, validate and fast-forward the checkout (gitSync in databus.yaml)")
	gitSyncInterval := fs.Duration("git-sync-interval", 0, "override gitSync.interval")
	storagePath := fs.String("storage", "", "override storage.path (the bbolt file)")
	readHeaderTimeout := fs.Duration("read-header-timeout", 10*time.Second, "how long a client may take to send a request's headers")
	readTimeout := fs.Duration("read-timeout", 60*time.Second, "how long a client may take to send a whole request, body included")
	maxConns := fs.Int("max-connections", portal.DefaultMaxConnections, "most open portal connections; one more is answered 503 and closed (-1: no cap)")
	pprofOn := fs.Bool("pprof", false, "serve Go's CPU, heap and goroutine profiles at /debug/pprof/ on the admin listener (role operator)")
	pos, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "databus serve: unexpected argument %q (use --dir)\n", pos[0])
		return exitUsage
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "databus serve: %v\n", err)
		return exitUsage
	}
	// Failed span exports go to the gateway's log (setupProcess rate-limits them).
	otel.SetErrorHandler(tracing.NewErrorHandler(func() *slog.Logger { return log }, tracing.ErrorLogInterval))
	srv, err := gateway.New(gateway.Options{Dir: *dir, Listen: *listen, AdminListen: *adminListen, HealthListen: *healthListen, Logger: log, DrainTimeout: *drain,
		NoWatch: *noWatch, Debounce: *debounce, GitSync: *gitSync, GitSyncInterval: *gitSyncInterval, StoragePath: *storagePath, Pprof: *pprofOn,
		ReadHeaderTimeout: *readHeaderTimeout, ReadTimeout: *readTimeout, MaxConnections: *maxConns, Version: thisBuild().fleetVersion()})
	if err != nil {
		fmt.Fprintf(stderr, "databus serve: %v\n", err)
		return exitInvalid
	}
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				srv.Refresh(ctx, "SIGHUP")
			}
		}
	}()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "databus serve: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("unknown log level %q: expected debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q: expected text or json", format)
}
