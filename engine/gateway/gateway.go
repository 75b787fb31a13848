// Package gateway wires Databus together: it owns the long-lived resources
// (upstream HTTP transport, listeners), loads the repository into a
// Snapshot, swaps in a new one on every valid change (file watcher, SIGHUP,
// Reload), and serves the portal and the admin listener.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/egress"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/pool"
	"github.com/databus-gateway/databus/engine/portal"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/revision"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

// Options are the boot-time settings: they never reload.
type Options struct {
	Dir         string // the config repository
	Listen      string // portal address, e.g. ":8080"
	AdminListen string // admin address, e.g. "127.0.0.1:8081"
	// HealthListen is the health listener's address (/healthz, /readyz,
	// /metrics only, no token, any address); "": none.
	HealthListen string
	Logger       *slog.Logger  // nil: discard
	Debounce     time.Duration // quiet time before a burst of file changes reloads (default 200ms)
	DrainTimeout time.Duration // graceful shutdown bound (default 15s)
	NoWatch      bool          // do not watch files (reload by SIGHUP or Reload only)
	// StoragePath overrides storage.path (the bbolt file), e.g. for several
	// gateways on one checkout. Relative paths are relative to the process.
	StoragePath string
	// GitSync follows the remote branch (databus serve --git-sync);
	// GitSyncInterval overrides gitSync.interval when set.
	GitSync         bool
	GitSyncInterval time.Duration
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout
	// the whole request with its body (slow clients holding connections
	// open); defaults 10s and 60s. Answers have no write timeout, so that
	// streamed bodies of any length go through; each step's timeout bounds
	// the flow instead.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// MaxConnections caps the portal's open connections (databus serve
	// --max-connections); one over it is answered 503 with the envelope
	// and closed. 0: portal.DefaultMaxConnections; negative: no cap.
	MaxConnections int
	// Pprof serves Go's profiles at /debug/pprof/ on the admin listener
	// (role operator; databus serve --pprof).
	Pprof bool
	// Services is the service registry the hooks (and service steps)
	// resolve through; nil: enabled hooks fail closed with "the service
	// registry is not available".
	Services registry.Resolver
	// Version names this binary in the fleet view (cmd/databus sets it
	// from the build); "": "dev".
	Version string
	// FleetInterval is how often the replica publishes its heartbeat to
	// Redis and reads the others' (default fleet.DefaultInterval); tests
	// shorten it.
	FleetInterval time.Duration
}

// ReloadResult is the outcome of one reload attempt, kept for the admin view.
type ReloadResult struct {
	At       time.Time           `json:"at"`
	Reason   string              `json:"reason"`
	OK       bool                `json:"ok"`
	Changed  bool                `json:"changed"`
	Revision string              `json:"revision"`
	Errors   []config.Diagnostic `json:"errors,omitempty"`
	Error    string              `json:"error,omitempty"`
	Duration time.Duration       `json:"durationNs"`
	Git      *revision.Revision  `json:"git,omitempty"` // the git revision served after the attempt
	// Files says what the attempt cost: config files listed, read (the
	// others' metadata was unchanged) and parsed (the others' bytes
	// were); Compiled counts the flows compiled (the others were reused).
	Files    *config.LoadStats `json:"files,omitempty"`
	Compiled int               `json:"compiled"`
}

// Server is one running gateway.
type Server struct {
	opts Options
	log  *slog.Logger
	// healthLn is the health listener's (Options.HealthListen,
	// ServeHealth); nil: none.
	healthLn net.Listener

	// snap is the Snapshot serving; requests acquire it, so that the
	// resources of a replaced one are released when its last request ends.
	snap  snapshot.Holder
	pool  *pool.Pool // resources that outlive Snapshots (engine/gate)
	last  atomic.Pointer[ReloadResult]
	ready atomic.Bool
	// running holds the boot settings read at start; nil until New has
	// built the first Snapshot.
	running *gate.Running

	reloadMu sync.Mutex // one reload at a time
	// cache carries what each load of the repository learnt into the
	// next: a reload reads and parses only the files that changed.
	cache config.Cache
	// reg is the service registry over the bbolt file (and Redis when
	// configured); set once the storage is open.
	reg atomic.Pointer[registry.Registry]

	// syncLogged is the remote revision and reason of the git-sync refusal
	// last logged ("" after a success); guarded by syncMu.
	syncLogged string
	// storagePath is the bbolt file this gateway opened (said at startup
	// and in /readyz).
	storagePath string
	// storePing caches /readyz's check of the shared stores.
	storePing storePing

	portal       *portal.Handler
	metrics      *metrics.Metrics
	prevRevision string // guarded by reloadMu

	git      *gitops.Repo // nil: the repository is not a git checkout
	syncMu   sync.Mutex
	lastSync atomic.Pointer[SyncResult]

	// watchObserver, when set before Serve (tests), is told how the file
	// watcher classified each event.
	watchObserver func(path string, relevant bool)

	// egress keeps http steps off the admin listener: New guards the
	// configured address, Serve the listener's actual one.
	egress *egress.Guard

	// fleet is this replica's heartbeat and its last read of the others'.
	fleet *fleetState

	closeOnce  sync.Once
	db         *store.DB
	acc        *store.AccessLog
	exportFile *os.File
}

// ErrInvalidRepository is returned by New when the repository does not load.
var ErrInvalidRepository = errors.New("the config repository is invalid")

// New builds the first Snapshot through the gate and opens the storage; it
// fails when the repository is invalid, since there is nothing to serve yet.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce == 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 15 * time.Second
	}
	s := &Server{opts: opts, log: opts.Logger, pool: pool.New(), egress: &egress.Guard{}, fleet: newFleetState(opts)}
	s.egress.Set(opts.AdminListen)
	s.metrics = metrics.New()
	if g, err := gitops.Open(opts.Dir); err == nil {
		s.git = g
	} else if !errors.Is(err, gitops.ErrNotGit) {
		s.log.Warn("reading the git checkout failed; serving without revision information", "error", err)
	}
	if opts.GitSync && s.git == nil {
		return nil, fmt.Errorf("--git-sync: %s is not a git checkout", opts.Dir)
	}
	res := s.Reload(context.Background(), "start")
	if !res.OK {
		if res.Error != "" {
			return nil, fmt.Errorf("%w: %s", ErrInvalidRepository, res.Error)
		}
		return nil, fmt.Errorf("%w:\n%s", ErrInvalidRepository, config.Diagnostics(res.Errors).Error())
	}
	snap := s.Current()
	s.running = &gate.Running{Boot: snap.Settings.Boot(), StoragePathFixed: opts.StoragePath != ""}
	if err := s.openStorage(snap.Settings, snap.Repo.Dir); err != nil {
		s.snap.Close()
		return nil, err
	}
	s.openRegistry(snap)
	opts2 := portal.Options{Logger: s.log, Metrics: s.metrics}
	if s.acc != nil {
		opts2.AccessLog = s.acc
	}
	s.portal = portal.New(s.snap.Acquire, opts2)
	return s, nil
}

// Current returns the Snapshot being served (for reading; requests
// acquire it through the portal).
func (s *Server) Current() *snapshot.Snapshot { return s.snap.Load() }

// LastReload returns the outcome of the latest reload attempt.
func (s *Server) LastReload() *ReloadResult { return s.last.Load() }

// Portal returns the portal handler.
func (s *Server) Portal() http.Handler { return s.portal }

// Pool returns the resources the Snapshots hold (tests check that a
// refused reload left it as it was).
func (s *Server) Pool() *pool.Pool { return s.pool }

// Reload builds the repository through the gate and swaps the result in
// when it is valid and differs from the one serving. A refused reload
// changes nothing: the old Snapshot and its resources keep serving. The
// git revision is read on every attempt, so a commit of the content
// already served updates the revision without compiling anything.
func (s *Server) Reload(ctx context.Context, reason string) ReloadResult {
	return s.reload(ctx, reason, true, nil)
}

// Refresh is SIGHUP and the refresh endpoint: in git-sync mode it fetches
// (bounded by ctx) first, then reloads.
func (s *Server) Refresh(ctx context.Context, reason string) ReloadResult {
	if s.opts.GitSync {
		s.syncOnce(ctx)
	}
	return s.Reload(ctx, reason)
}

// reload is Reload; with record false, an attempt that finds the content
// unchanged leaves LastReload as it was. changed lists the files a file
// watcher saw change (nil: unknown, every file is looked at).
func (s *Server) reload(ctx context.Context, reason string, record bool, changed []string) (res ReloadResult) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	allocated, _ := heapStats()
	res = ReloadResult{At: start, Reason: reason}
	defer func() {
		releaseAfterBuild(allocated)
		res.Duration = time.Since(start)
		label := s.prevRevision
		if cur := s.Current(); cur != nil {
			res.Git = cur.Git
			if res.OK {
				label = revision.Label(cur.Git, cur.Revision)
			}
		}
		if record || !res.OK || res.Changed {
			stored := res
			s.last.Store(&stored)
		}
		s.metrics.Reloaded(res.OK, res.Changed, label, s.prevRevision, start)
		s.metrics.ReloadDuration.WithLabelValues(metrics.ReloadResult(res.OK, res.Changed)).Observe(res.Duration.Seconds())
		if res.Changed || !res.OK {
			s.kickFleet()
		}
		if res.OK {
			s.prevRevision = label
			// Message types learnt by server reflection are asked for
			// again after every reload, changed or not: the refresh
			// endpoint and SIGHUP pick up a redeployed gRPC server.
			if cur := s.Current(); cur != nil && cur.Env != nil && cur.Env.RPC != nil {
				cur.Env.RPC.Refresh()
			}
		}
	}()
	prev := s.Current()
	gitRev := s.gitRevision()
	b := gate.Build(ctx, s.opts.Dir, gate.Options{Mode: gate.Live, Pool: s.pool, Running: s.running,
		AdminListen: s.opts.AdminListen, Prev: prev, Cache: &s.cache, Changed: changed, Git: gitRev, Services: s.services(), Metrics: s.metrics, Logger: s.log, Egress: s.egress, Version: s.opts.Version})
	if b.Repo != nil {
		files := b.Repo.Loaded
		res.Files = &files
	}
	if b.Err != nil {
		res.Error = b.Err.Error()
		s.log.Error("reload failed: repository unreadable; the previous configuration keeps serving", "reason", reason, "error", b.Err)
		return res
	}
	if b.Diagnostics.HasErrors() {
		res.Errors = b.Diagnostics.Errors()
		s.log.Error("reload refused: the repository is invalid; the previous configuration keeps serving",
			"reason", reason, "errors", len(res.Errors), "first", res.Errors[0].String())
		for _, d := range res.Errors {
			s.log.Warn("invalid config", "at", d.String())
		}
		return res
	}
	next := b.Snapshot
	if b.Unchanged {
		res.OK, res.Revision = true, prev.Revision
		if revision.Same(prev.Git, gitRev) {
			s.log.Debug("reload skipped: content unchanged", "reason", reason)
			return res
		}
		// Same content, another commit (or no longer dirty): a new label,
		// the compiled flows and resources shared.
		next = prev.WithRevision(gitRev)
	}
	if !b.Unchanged {
		res.Compiled = len(b.Repo.APIs) - next.Reused
	}
	s.commit(next)
	res.OK, res.Changed, res.Revision = true, true, next.Revision
	s.log.Info("configuration loaded", "reason", reason, "revision", revision.Label(next.Git, next.Revision),
		"apis", len(b.Repo.APIs), "credentials", len(b.Repo.Credentials), "policies", len(b.Repo.Policies),
		"warnings", len(b.Diagnostics), "read", b.Repo.Loaded.Read, "parsed", b.Repo.Loaded.Parsed, "compiled", res.Compiled,
		"took", time.Since(start).Round(time.Microsecond))
	return res
}

// releaseAfterBytes is how much a reload may allocate (and at least the
// live heap) before its garbage is handed back to the OS at once: a cold
// build of a large repository allocates many times what it keeps, and an
// idle gateway would hold that peak until collections that only requests
// trigger. A reload that read a few changed files allocates far less.
const releaseAfterBytes = 16 << 20

// heapStats returns the bytes allocated on the heap since start and the
// live heap after the last collection.
func heapStats() (allocated, live uint64) {
	s := []runtimemetrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	runtimemetrics.Read(s)
	if s[0].Value.Kind() == runtimemetrics.KindUint64 {
		allocated = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == runtimemetrics.KindUint64 {
		live = s[1].Value.Uint64()
	}
	return allocated, live
}

// releaseAfterBuild hands a large build's garbage back to the OS.
func releaseAfterBuild(allocatedBefore uint64) {
	allocated, live := heapStats()
	if d := allocated - allocatedBefore; d >= releaseAfterBytes && d >= live {
		go debug.FreeOSMemory()
	}
}

// commit serves next: the one point where a reload changes the running
// gateway. The replaced Snapshot's resources are released when its last
// in-flight request ends.
func (s *Server) commit(next *snapshot.Snapshot) {
	old := s.snap.Swap(next)
	if reg := s.reg.Load(); reg != nil && (old == nil || old.Shared != next.Shared) {
		reg.SetShared(next.Shared)
	}
	if s.acc != nil {
		al := next.Settings.Storage.AccessLog
		s.acc.SetRetention(al.RetentionDays, al.MaxRecords)
	}
}

// Run serves the portal and the admin listener until ctx ends, then shuts
// down gracefully: readiness turns false, in-flight requests finish within
// DrainTimeout.
func (s *Server) Run(ctx context.Context) error {
	portalLn, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("portal listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", s.opts.AdminListen)
	if err != nil {
		portalLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	if s.opts.HealthListen != "" {
		if s.healthLn, err = net.Listen("tcp", s.opts.HealthListen); err != nil {
			portalLn.Close()
			adminLn.Close()
			return fmt.Errorf("health listener: %w", err)
		}
	}
	return s.Serve(ctx, portalLn, adminLn)
}

// HealthMaxConnections bounds the connections the health listener holds
// open at once.
const HealthMaxConnections = 64

// ServeHealth has Serve also serve the health listener on ln (tests use
// port 0); call it before Serve.
func (s *Server) ServeHealth(ln net.Listener) { s.healthLn = ln }

// Serve is Run on listeners the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, portalLn, adminLn net.Listener) error {
	s.egress.Set(adminLn.Addr().String())
	readHeader, read := s.opts.ReadHeaderTimeout, s.opts.ReadTimeout
	if readHeader <= 0 {
		readHeader = 10 * time.Second
	}
	if read <= 0 {
		read = 60 * time.Second
	}
	portalSrv := &http.Server{
		Handler:           s.portal,
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       read,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20, // the portal answers 431 in the envelope above portal.MaxHeaderBytes
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	adminSrv := &http.Server{
		Handler:           s.Admin(),
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       read,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	switch maxConns := s.opts.MaxConnections; {
	case maxConns == 0:
		portalLn = portal.LimitListener(portalLn, portal.DefaultMaxConnections, s.metrics)
	case maxConns > 0:
		portalLn = portal.LimitListener(portalLn, maxConns, s.metrics)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var wg sync.WaitGroup
	if !s.opts.NoWatch {
		w, err := newWatcher(s.opts.Dir, s.gitDir(), s.opts.Debounce, s.log)
		if err != nil {
			s.log.Warn("file watching unavailable; reload with SIGHUP or the refresh endpoint", "error", err)
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.observe = s.watchObserver
				w.run(watchCtx, func(files bool, changed []string) {
					if files {
						s.reload(watchCtx, "file change", true, changed)
					} else {
						s.reload(watchCtx, "git change", false, changed)
					}
				})
			}()
			// A change made between New and now raised no event.
			s.reload(watchCtx, "watch start", false, nil)
		}
	}
	if s.opts.GitSync {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.runSync(watchCtx)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.syncRegistry(watchCtx, registrySyncEvery)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runFleet(watchCtx)
	}()
	errc := make(chan error, 3)
	go func() { errc <- serveErr(portalSrv.Serve(portalLn)) }()
	go func() { errc <- serveErr(adminSrv.Serve(adminLn)) }()
	var healthSrv *http.Server
	health := ""
	if s.healthLn != nil {
		healthSrv = &http.Server{
			Handler:           s.Health(),
			ReadHeaderTimeout: readHeader,
			ReadTimeout:       read,
			IdleTimeout:       120 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		health = s.healthLn.Addr().String()
		// Any address, no token: probes and scrapes need few connections,
		// and a caller who opens more gets 503 (portal.LimitListener).
		ln := portal.LimitListener(s.healthLn, HealthMaxConnections, nil)
		go func() { errc <- serveErr(healthSrv.Serve(ln)) }()
	}
	s.ready.Store(true)
	s.log.Info("databus serving", "portal", portalLn.Addr().String(), "admin", adminLn.Addr().String(), "health", health,
		"basePaths", s.Current().BasePaths, "storage", s.storagePath)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.ready.Store(false)
	s.log.Info("shutting down: draining in-flight requests", "timeout", s.opts.DrainTimeout)
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	if err := portalSrv.Shutdown(sctx); err != nil {
		s.log.Warn("portal did not drain in time", "error", err)
		portalSrv.Close()
	}
	if err := adminSrv.Shutdown(sctx); err != nil {
		adminSrv.Close()
	}
	if healthSrv != nil {
		if err := healthSrv.Shutdown(sctx); err != nil {
			healthSrv.Close()
		}
	}
	wg.Wait()
	// Nothing of the server outlives Serve: drop the upstream keep-alive
	// connections (a later Serve dials again).
	if cur := s.Current(); cur != nil && cur.Env != nil {
		if cur.Env.Client != nil {
			cur.Env.Client.CloseIdleConnections()
		}
		if cur.Env.RPC != nil {
			cur.Env.RPC.CloseConns()
		}
	}
	s.log.Info("stopped")
	return runErr
}

// Close releases what the server holds beyond Serve: it flushes the access
// log, closes the bbolt file, and retires the Snapshot, whose lease closes
// the Redis client, the upstream transport and the gRPC connections. Call
// it after Serve.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.closeStorage()
		s.snap.Close()
	})
}

// Metrics returns the gateway's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
