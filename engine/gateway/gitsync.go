package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
	"github.com/databus-gateway/databus/engine/gitops"
	"github.com/databus-gateway/databus/engine/revision"
)

// SyncResult is the outcome of one git-sync attempt, kept for the admin view.
type SyncResult = gitops.SyncResult

// gitRevision reads the revision of the checkout; nil when it is not a git
// work tree.
func (s *Server) gitRevision() *revision.Revision {
	if s.git == nil {
		return nil
	}
	rev, err := s.git.Revision()
	if err != nil {
		s.log.Warn("reading the git revision failed", "error", err)
		return nil
	}
	return &rev
}

// syncOnce fetches the followed branch and fast-forwards the checkout to
// it when the gate accepts the new revision (gitops.Repo.Sync).
func (s *Server) syncOnce(ctx context.Context) SyncResult {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	settings := s.Current().Settings.GitSync
	var res SyncResult
	if s.git == nil {
		res = SyncResult{At: time.Now(), Remote: settings.Remote, Branch: settings.Branch,
			Error: errors.New("git sync needs the config repository to be a git checkout").Error()}
	} else {
		res = s.git.Sync(ctx, settings.Remote, settings.Branch, s.check)
	}
	r := res
	s.lastSync.Store(&r)
	result := "up_to_date"
	switch {
	case res.Error != "" && len(res.Errors) > 0:
		result = "refused"
	case res.Error != "":
		result = "failed"
	case res.Moved:
		result = "moved"
	}
	s.metrics.GitSyncs.WithLabelValues(result).Inc()
	s.kickFleet()
	if res.Error != "" {
		s.metrics.GitSyncSuccess.Set(0)
		// Once per remote revision and reason, not every interval: the
		// state stays in /readyz and the metrics.
		if key := res.RemoteHead + "\x00" + res.Error; key != s.syncLogged {
			s.syncLogged = key
			s.log.Error("git sync: staying on the current revision", "from", short(res.From), "remote", short(res.RemoteHead), "error", res.Error)
		} else {
			s.log.Debug("git sync: still staying on the current revision", "remote", short(res.RemoteHead))
		}
		return res
	}
	s.metrics.GitSyncSuccess.Set(1)
	if s.syncLogged != "" {
		s.syncLogged = ""
		if !res.Moved {
			s.log.Info("git sync: in step with the remote again", "at", short(res.To))
		}
	}
	if res.Moved {
		s.log.Info("git sync: fast-forwarded", "from", short(res.From), "to", short(res.To))
	}
	return res
}

// check is the gate's dry build of a revision's tree, with what this
// gateway cannot change while it runs.
func (s *Server) check(ctx context.Context, dir string) (config.Diagnostics, error) {
	r := gate.Build(ctx, dir, gate.Options{Mode: gate.Dry, Running: s.running, AdminListen: s.opts.AdminListen, Cache: &s.cache})
	return r.Diagnostics, r.Err
}

// LastSync returns the latest git-sync attempt, or nil.
func (s *Server) LastSync() *SyncResult { return s.lastSync.Load() }

// syncInterval is the git-sync interval: the flag, else gitSync.interval.
func (s *Server) syncInterval() time.Duration {
	if s.opts.GitSyncInterval > 0 {
		return s.opts.GitSyncInterval
	}
	return s.Current().Settings.GitSync.Interval.D()
}

// runSync fetches on the interval until ctx ends.
func (s *Server) runSync(ctx context.Context) {
	g := s.Current().Settings.GitSync
	branch := g.Branch
	if branch == "" {
		branch = "(the checked-out branch)"
	}
	s.log.Info("git sync on: fetching the remote and fast-forwarding to revisions that validate", "remote", g.Remote, "branch", branch, "interval", s.syncInterval())
	for {
		interval := s.syncInterval()
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r := s.syncOnce(ctx); r.Moved {
			s.Reload(ctx, "git sync "+short(r.To))
		}
	}
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// gitDir is the checkout's .git folder when it is one (not a worktree's
// .git file), for the watcher; "" otherwise.
func (s *Server) gitDir() string {
	if s.git == nil {
		return ""
	}
	d := filepath.Join(s.git.Root(), ".git")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}
