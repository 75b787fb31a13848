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
	"sync"
	"sync/atomic"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/flow"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/hooks"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/portal"
	"github.com/databus-gateway/databus/engine/registry"
	"github.com/databus-gateway/databus/engine/rpc"
	"github.com/databus-gateway/databus/engine/snapshot"
	"github.com/databus-gateway/databus/engine/store"
)

// Options are the boot-time settings: they never reload.
type Options struct {
	Dir          string        // the config repository
	Listen       string        // portal address, e.g. ":8080"
	AdminListen  string        // admin address, e.g. "127.0.0.1:8081"
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
	// Pprof serves Go's profiles at /debug/pprof/ on the admin listener
	// (role operator; databus serve --pprof).
	Pprof bool
	// Services is the service registry the hooks (and service steps)
	// resolve through; nil: enabled hooks fail closed with "the service
	// registry is not available".
	Services registry.Resolver
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
	Git      *gitops.Revision    `json:"git,omitempty"` // the git revision served after the attempt
}

// Server is one running gateway.
type Server struct {
	opts Options
	log  *slog.Logger

	current atomic.Pointer[snapshot.Snapshot]
	last    atomic.Pointer[ReloadResult]
	ready   atomic.Bool

	reloadMu sync.Mutex // one reload at a time
	envMu    sync.Mutex
	env      *flow.Env
	envKey   envKey
	stores   storeSet
	rpc      *rpc.Pool // gRPC connections of rpc steps, shared by every Env
	// reg is the service registry over the bbolt file (and Redis when
	// configured); set once the storage is open.
	reg atomic.Pointer[registry.Registry]

	portal       *portal.Handler
	metrics      *metrics.Metrics
	prevRevision string // guarded by reloadMu

	git      *gitops.Repo // nil: the repository is not a git checkout
	syncMu   sync.Mutex
	lastSync atomic.Pointer[SyncResult]

	closeOnce  sync.Once
	db         *store.DB
	acc        *store.AccessLog
	exportFile *os.File
}

// ErrInvalidRepository is returned by New when the repository does not load.
var ErrInvalidRepository = errors.New("the config repository is invalid")

// New loads the repository; it fails when the repository is invalid, since
// there is nothing to serve yet.
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
	s := &Server{opts: opts, log: opts.Logger, rpc: rpc.NewPool()}
	s.metrics = metrics.New()
	if g, err := gitops.Open(opts.Dir); err == nil {
		s.git = g
	} else if !errors.Is(err, gitops.ErrNotGit) {
		s.log.Warn("reading the git checkout failed; serving without revision information", "error", err)
	}
	if opts.GitSync && s.git == nil {
		return nil, fmt.Errorf("--git-sync: %s is not a git checkout", opts.Dir)
	}
	res := s.Reload("start")
	if !res.OK {
		if res.Error != "" {
			return nil, fmt.Errorf("%w: %s", ErrInvalidRepository, res.Error)
		}
		return nil, fmt.Errorf("%w:\n%s", ErrInvalidRepository, config.Diagnostics(res.Errors).Error())
	}
	snap := s.Current()
	if err := s.openStorage(snap.Settings, snap.Repo.Dir); err != nil {
		s.closeStores()
		return nil, err
	}
	s.openRegistry()
	opts2 := portal.Options{Logger: s.log, Metrics: s.metrics}
	if s.acc != nil {
		opts2.AccessLog = s.acc
	}
	s.portal = portal.New(s.Current, opts2)
	return s, nil
}

// Current returns the Snapshot being served.
func (s *Server) Current() *snapshot.Snapshot { return s.current.Load() }

// LastReload returns the outcome of the latest reload attempt.
func (s *Server) LastReload() *ReloadResult { return s.last.Load() }

// Portal returns the portal handler.
func (s *Server) Portal() http.Handler { return s.portal }

// Reload loads the repository again and swaps it in when it is valid and
// differs from the one serving. A failed reload keeps the old Snapshot.
func (s *Server) Reload(reason string) ReloadResult { return s.reload(reason, true) }

// reload is Reload; with record false, an attempt that finds the content
// unchanged leaves LastReload as it was.
func (s *Server) reload(reason string, record bool) (res ReloadResult) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	res = ReloadResult{At: start, Reason: reason}
	defer func() {
		res.Duration = time.Since(start)
		label := s.prevRevision
		if cur := s.current.Load(); cur != nil {
			res.Git = cur.Git
			if res.OK {
				label = revisionLabel(cur)
			}
		}
		if record || !res.OK || res.Changed {
			stored := res
			s.last.Store(&stored)
		}
		s.metrics.Reloaded(res.OK, res.Changed, label, s.prevRevision, start)
		if res.OK {
			s.prevRevision = label
			// Message types learnt by server reflection are asked for
			// again after every reload, changed or not: the refresh
			// endpoint and SIGHUP pick up a redeployed gRPC server.
			s.rpc.Refresh()
		}
	}()
	repo, diags, err := config.Load(s.opts.Dir)
	if err != nil {
		res.Error = err.Error()
		s.log.Error("reload failed: repository unreadable", "reason", reason, "error", err)
		return res
	}
	if diags.HasErrors() {
		res.Errors = diags.Errors()
		s.log.Error("reload refused: the repository is invalid; the previous configuration keeps serving",
			"reason", reason, "errors", len(res.Errors), "first", res.Errors[0].String())
		for _, d := range res.Errors {
			s.log.Warn("invalid config", "at", d.String())
		}
		return res
	}
	cur := s.current.Load()
	gitRev := s.gitRevision()
	if cur != nil && cur.Revision == repo.Hash && sameGit(cur.Git, gitRev) {
		res.OK, res.Revision = true, cur.Revision
		s.log.Debug("reload skipped: content unchanged", "reason", reason)
		return res
	}
	st, err := s.storesFor(repo.Settings, repo.Dir)
	if err != nil {
		res.Error = err.Error()
		s.log.Error("reload refused: redis settings; the previous configuration keeps serving", "reason", reason, "error", err)
		return res
	}
	env := s.envFor(repo.Settings)
	hk := hooks.New(hooks.Options{Services: s.services(), Client: env.Client, Settings: repo.Settings.Hooks, Metrics: s.metrics})
	snap, err := snapshot.Build(repo, snapshot.Deps{Env: env, Nonces: st.nonces, Limits: st.limits, StoreBackend: st.backend, Git: gitRev, Hooks: hk})
	if err != nil {
		res.Error = err.Error()
		s.log.Error("reload refused: compile failed; the previous configuration keeps serving", "reason", reason, "error", err)
		return res
	}
	s.current.Store(snap)
	if s.acc != nil {
		al := snap.Settings.Storage.AccessLog
		s.acc.SetRetention(al.RetentionDays, al.MaxRecords)
	}
	res.OK, res.Changed, res.Revision = true, true, snap.Revision
	s.log.Info("configuration loaded", "reason", reason, "revision", revisionLabel(snap),
		"apis", len(repo.APIs), "credentials", len(repo.Credentials), "policies", len(repo.Policies),
		"warnings", len(diags), "took", time.Since(start).Round(time.Microsecond))
	return res
}

// revisionLabel names what a Snapshot serves: the git commit (with -dirty
// when config files differ from it), or the content hash outside git.
func revisionLabel(snap *snapshot.Snapshot) string {
	if snap == nil {
		return ""
	}
	if snap.Git != nil && snap.Git.Hash != "" {
		if snap.Git.Dirty {
			return snap.Git.Short + "-dirty"
		}
		return snap.Git.Short
	}
	return "content:" + short(snap.Revision)
}

func sameGit(a, b *gitops.Revision) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Hash == b.Hash && a.Dirty == b.Dirty && a.Branch == b.Branch
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

type envKey struct {
	pool        bool
	maxIdle     int
	timeout     time.Duration
	maxResponse int64
}

// envFor returns the flow environment for settings: the same one (and so
// the same connection pool) while the webClient settings do not change.
func (s *Server) envFor(st *config.Settings) *flow.Env {
	wc := st.Gateway.WebClient
	key := envKey{*wc.ConnectionPoolEnabled, wc.MaxIdleConnsPerHost, wc.Timeout.D(), wc.MaxResponseBytes}
	s.envMu.Lock()
	defer s.envMu.Unlock()
	if s.env != nil && s.envKey == key {
		return s.env
	}
	old := s.env
	tr := newTransport(key)
	s.env = &flow.Env{Client: &http.Client{Transport: tr, CheckRedirect: noRedirect}, DefaultTimeout: key.timeout, MaxResponseBytes: key.maxResponse, RPC: s.rpc, Services: s.services()}
	s.envKey = key
	if key.pool {
		s.log.Info("upstream connection pool enabled", "maxIdleConnsPerHost", key.maxIdle)
	} else {
		s.log.Info("upstream connection pool disabled: every upstream call opens a new connection (gateway.webClient.connectionPoolEnabled: false)")
	}
	if old != nil {
		// In-flight requests of the old Snapshot may still use it; idle
		// connections are closed once they had time to finish.
		time.AfterFunc(time.Minute, old.Client.CloseIdleConnections)
	}
	return s.env
}

func newTransport(k envKey) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // upstreams are addressed directly, never through the environment's proxy
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * k.maxIdle,
		MaxIdleConnsPerHost:   k.maxIdle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     !k.pool,
		ForceAttemptHTTP2:     true,
	}
}

// noRedirect hands 3xx answers to the flow instead of following them.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Run serves the portal and the admin listener until ctx ends, then shuts
// down gracefully: readiness turns false, in-flight requests finish within
// DrainTimeout.
func (s *Server) Run(ctx context.Context) error {
	if err := s.checkAdminBind(); err != nil {
		return err
	}
	portalLn, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("portal listener: %w", err)
	}
	adminLn, err := net.Listen("tcp", s.opts.AdminListen)
	if err != nil {
		portalLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	return s.Serve(ctx, portalLn, adminLn)
}

// Serve is Run on listeners the caller opened (tests use port 0).
func (s *Server) Serve(ctx context.Context, portalLn, adminLn net.Listener) error {
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
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var wg sync.WaitGroup
	if !s.opts.NoWatch {
		w, err := newWatcher(s.opts.Dir, s.opts.Debounce, s.log)
		if err != nil {
			s.log.Warn("file watching unavailable; reload with SIGHUP or the refresh endpoint", "error", err)
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(watchCtx, func() { s.Reload("file change") })
			}()
			// A change made between New and now raised no event.
			s.reload("watch start", false)
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
	errc := make(chan error, 2)
	go func() { errc <- serveErr(portalSrv.Serve(portalLn)) }()
	go func() { errc <- serveErr(adminSrv.Serve(adminLn)) }()
	s.ready.Store(true)
	s.log.Info("databus serving", "portal", portalLn.Addr().String(), "admin", adminLn.Addr().String(),
		"basePaths", s.Current().BasePaths)

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
	wg.Wait()
	// Nothing of the server outlives Serve: drop the upstream keep-alive
	// connections (a later Serve dials again).
	s.envMu.Lock()
	if s.env != nil {
		s.env.Client.CloseIdleConnections()
	}
	s.envMu.Unlock()
	s.rpc.CloseConns()
	s.log.Info("stopped")
	return runErr
}

// Close releases what the server holds beyond Serve: it flushes the access
// log, closes the bbolt file, the Redis client and the gRPC connections.
// Call it after Serve.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.closeStorage()
		s.closeStores()
		s.rpc.Close()
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

// checkAdminBind refuses an admin listener reachable from other hosts when
// no admin token protects it.
func (s *Server) checkAdminBind() error {
	if len(s.Current().Settings.Admin.Tokens) > 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(s.opts.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener %q: %w", s.opts.AdminListen, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	s.log.Warn("refusing a non-loopback admin listener without admin.tokens", "adminListen", s.opts.AdminListen)
	return fmt.Errorf("admin listener %s: without admin.tokens in databus.yaml the admin listener binds to loopback only (e.g. --admin-listen 127.0.0.1:8081)", s.opts.AdminListen)
}
